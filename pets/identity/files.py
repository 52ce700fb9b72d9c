"""The certificate directory: where :mod:`pets.identity.certificates` material lives on disk.

A deployment keeps its TLS material in one directory::

    DIR/ca.pem               the CA certificate (every party needs it)
    DIR/ca-key.pem           the CA private key (0600; only needed to issue)
    DIR/<name>.pem           a party's certificate
    DIR/<name>-key.pem       a party's private key (0600)

This is the only module of the identity feature that touches files; the
crypto is in :mod:`pets.identity.certificates`. Files are written by
:func:`pets.runtime.atomicfile.write_atomic` (temporary file + rename, private
keys created with mode 0600 from the start, so a key is never briefly
readable by others). Existing files are never
overwritten unless asked. Problems are reported as
:class:`~pets.errors.ConfigError` naming the file and the command that
creates it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from pets.errors import AuthenticationError, ConfigError, InvalidInputError
from pets.identity.certificates import (
    CA,
    DEFAULT_CA_NAME,
    DEFAULT_CA_VALID_DAYS,
    DEFAULT_VALID_DAYS,
    Role,
    check_key_pair,
    create_ca,
    issue,
    load_ca,
    peer_identity,
    validate_name,
    verify_identity,
)
from pets.runtime.atomicfile import PUBLIC_MODE, SECRET_MODE, write_atomic

__all__ = [
    "CA_CERT_FILE",
    "CA_KEY_FILE",
    "cert_path",
    "init_ca",
    "issue_to_dir",
    "key_path",
    "load_ca_from_dir",
    "load_own_identity",
    "load_tls_material",
]

CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
KEY_MODE = SECRET_MODE
CERT_MODE = PUBLIC_MODE
DIR_MODE = 0o700


def cert_path(directory: str | os.PathLike[str], name: str) -> Path:
    """Path of party ``name``'s certificate in ``directory``."""
    return Path(directory) / f"{_file_name(name)}.pem"


def key_path(directory: str | os.PathLike[str], name: str) -> Path:
    """Path of party ``name``'s private key in ``directory``."""
    return Path(directory) / f"{_file_name(name)}-key.pem"


def _file_name(name: str) -> str:
    """Validate a party name for use as a file stem in the certificate directory.

    Besides the identity rules, ``ca`` and names ending in ``-key`` are
    refused: their files would collide with the CA's or another party's key.
    """
    try:
        validate_name(name)
    except InvalidInputError as exc:
        raise ConfigError(str(exc)) from None
    if name == "ca" or name.endswith("-key"):
        raise ConfigError(
            f"party name {name!r} is reserved in a certificate directory "
            "(it would collide with the CA files or another party's key file)"
        )
    return name


def _read(path: Path, hint: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"missing {path}; create it with `{hint}`") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


def _init_hint(directory: Path) -> str:
    return f"pets certs init --dir {directory}"


def _issue_hint(directory: Path, name: str) -> str:
    return f"pets certs issue --dir {directory} --role ROLE --name {name}"


def init_ca(
    directory: str | os.PathLike[str],
    *,
    name: str = DEFAULT_CA_NAME,
    valid_days: int = DEFAULT_CA_VALID_DAYS,
    overwrite: bool = False,
) -> tuple[Path, Path]:
    """Create a new CA in ``directory`` (made 0700 if missing).

    Returns the paths written: ``(ca.pem, ca-key.pem)``. Refuses to replace an
    existing CA unless ``overwrite``: every certificate issued from it
    would stop working.
    """
    d = Path(directory)
    d.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    cert_file, key_file = d / CA_CERT_FILE, d / CA_KEY_FILE
    if not overwrite:
        for p in (cert_file, key_file):
            if p.exists():
                raise ConfigError(
                    f"{p} already exists; refusing to replace the CA "
                    "(certificates issued from it would stop working)"
                )
    try:
        ca = create_ca(name, valid_days=valid_days)
    except InvalidInputError as exc:
        raise ConfigError(str(exc)) from None
    write_atomic(key_file, ca.key_pem, mode=KEY_MODE, overwrite=overwrite)
    write_atomic(cert_file, ca.cert_pem, mode=CERT_MODE, overwrite=overwrite)
    return cert_file, key_file


def load_ca_from_dir(directory: str | os.PathLike[str]) -> CA:
    """Load the CA certificate and key from ``directory`` (for issuing)."""
    d = Path(directory)
    cert = _read(d / CA_CERT_FILE, _init_hint(d))
    key = _read(d / CA_KEY_FILE, _init_hint(d))
    try:
        return load_ca(cert, key)
    except InvalidInputError as exc:
        raise ConfigError(f"bad CA in {d}: {exc}") from None


def issue_to_dir(
    directory: str | os.PathLike[str],
    role: Role | str,
    name: str,
    hosts: Sequence[str] | None = None,
    *,
    valid_days: int = DEFAULT_VALID_DAYS,
    overwrite: bool = False,
) -> tuple[Path, Path]:
    """Issue a certificate for ``name`` in ``role`` from the CA in ``directory``.

    ``hosts`` as in :func:`pets.identity.certificates.issue` (``None``: localhost defaults
    for server roles). Returns the paths written: ``(<name>.pem,
    <name>-key.pem)``. Refuses to overwrite an existing identity unless
    ``overwrite``.
    """
    d = Path(directory)
    cert_file, key_file = cert_path(d, name), key_path(d, name)
    if not overwrite:
        for p in (cert_file, key_file):
            if p.exists():
                raise ConfigError(f"{p} already exists; refusing to overwrite it")
    ca = load_ca_from_dir(d)
    try:
        ident = issue(ca, role, name, hosts=hosts, valid_days=valid_days)
    except InvalidInputError as exc:
        raise ConfigError(str(exc)) from None
    write_atomic(key_file, ident.key_pem, mode=KEY_MODE, overwrite=overwrite)
    write_atomic(cert_file, ident.cert_pem, mode=CERT_MODE, overwrite=overwrite)
    return cert_file, key_file


def load_tls_material(directory: str | os.PathLike[str], name: str) -> tuple[bytes, bytes, bytes]:
    """Return ``(ca_pem, cert_pem, key_pem)`` for party ``name``, ready for grpc credentials.

    Checks, before any socket is opened, that the certificate chains to
    this directory's CA, is currently valid, and matches the key, so a
    misconfiguration surfaces as a ConfigError naming the file instead of
    an opaque handshake failure. The CA key is not needed (nor read).
    """
    d = Path(directory)
    ca_pem = _read(d / CA_CERT_FILE, _init_hint(d))
    cert_file, key_file = cert_path(d, name), key_path(d, name)
    cert_pem = _read(cert_file, _issue_hint(d, name))
    key_pem = _read(key_file, _issue_hint(d, name))
    _check_material(ca_pem, cert_pem, key_pem, cert_file, key_file)
    return ca_pem, cert_pem, key_pem


def _check_material(
    ca_pem: bytes, cert_pem: bytes, key_pem: bytes, cert_file: Path, key_file: Path
) -> None:
    try:
        verify_identity(ca_pem, cert_pem)
    except AuthenticationError as exc:
        raise ConfigError(f"{cert_file} is not usable: {exc}") from None
    try:
        check_key_pair(cert_pem, key_pem)
    except InvalidInputError as exc:
        raise ConfigError(f"{key_file}: {exc}") from None


def load_own_identity(
    ca: Path, cert: Path, key: Path, *, role: Role | str, name: str
) -> tuple[bytes, bytes, bytes]:
    """Read a party's configured ``[tls]`` files and check they are its own.

    The certificate must chain to the CA, the key must be the certificate's,
    and the certificate's ``pets://<role>/<name>`` must be the configured
    ``role`` and ``name``. Done at start-up, so a swapped key or another
    party's certificate is a :class:`~pets.errors.ConfigError` naming the
    files, not a handshake failure or a server refusal retried forever.
    Returns ``(ca_pem, cert_pem, key_pem)``.
    """
    hint = f"pets certs issue --role {role} --name {name}"
    ca_pem = _read(Path(ca), "pets certs init")
    cert_pem = _read(Path(cert), hint)
    key_pem = _read(Path(key), hint)
    _check_material(ca_pem, cert_pem, key_pem, Path(cert), Path(key))
    peer = peer_identity(cert_pem)
    if peer.role != Role(role) or peer.name != name:
        raise ConfigError(
            f"{cert} is the certificate of {peer.role} {peer.name!r}, but this party is "
            f"configured as {Role(role)} {name!r}; use its own certificate (`{hint}`)"
        )
    return ca_pem, cert_pem, key_pem
