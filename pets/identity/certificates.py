"""Party identities: a small private CA and the certificates it issues.

The aggregation servers use mutual TLS, and a party's *role* and *name* come
from the certificate it presented in the handshake, never from a request
field. This module creates the CA, issues certificates that carry the role and
name, and reads them back from a peer certificate (a gRPC call's
``auth_context()`` is read by :mod:`pets.transport.peer`).

It is pure: it takes and returns PEM bytes and never touches files, sockets or
the clock below its public API (``now=`` is injectable, so expiry is
testable). Reading and writing a certificate directory is
:mod:`pets.identity.files`.

Certificate profile
-------------------
Every key is **ECDSA P-256** signed with SHA-256: gRPC's TLS stack
(BoringSSL) does not reliably accept Ed25519 certificates.

* CA: subject ``O=pets, CN=<name>``; ``basicConstraints`` critical
  ``CA=true, pathlen=0``; ``keyUsage`` critical ``keyCertSign, cRLSign``.
* Party: subject ``O=pets, OU=<role>, CN=<name>``; ``basicConstraints``
  critical ``CA=false``; ``keyUsage`` critical ``digitalSignature``; and a
  subject alternative name URI::

      pets://<role>/<name>

  ``<role>`` is one of :class:`Role` (lower case) and ``<name>`` matches
  :data:`NAME_PATTERN` (``[A-Za-z0-9._-]{1,64}``, but not ``.`` or ``..``).
  The URI is the **only** thing :func:`peer_identity` reads; CN and OU are
  there for humans and ``openssl x509 -text``. A certificate must carry
  exactly one ``pets://`` URI.
* Server roles (leader, helper) get ``extendedKeyUsage`` ``serverAuth,
  clientAuth`` (the leader is also a client of the helpers) and DNS/IP SANs
  for the hosts they serve on. Client roles (holder, analyst) get
  ``clientAuth`` only and no host SANs.
"""

from __future__ import annotations

import datetime as _dt
import functools
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from pets.errors import AuthenticationError, CertificateValidityError, InvalidInputError

__all__ = [
    "CA",
    "DEFAULT_CA_NAME",
    "DEFAULT_CA_VALID_DAYS",
    "DEFAULT_SERVER_HOSTS",
    "DEFAULT_VALID_DAYS",
    "NAME_PATTERN",
    "URI_SCHEME",
    "Identity",
    "Peer",
    "Role",
    "check_key_pair",
    "create_ca",
    "identity_uri",
    "issue",
    "load_ca",
    "parse_identity_uri",
    "peer_identity",
    "server_dns_name",
    "validate_name",
    "verify_identity",
    "verify_identity_cached",
]


class Role(StrEnum):
    """The role a party plays; see docs/ARCHITECTURE.md, "Roles and trust"."""

    LEADER = "leader"
    HELPER = "helper"
    HOLDER = "holder"
    ANALYST = "analyst"

    @property
    def is_server(self) -> bool:
        """True for the aggregation servers (which need serverAuth and host SANs)."""
        return self in (Role.LEADER, Role.HELPER)


#: Allowed party names: short, and safe in a URI path and a file name.
NAME_PATTERN = r"[A-Za-z0-9._-]{1,64}"
_NAME_RE = re.compile(NAME_PATTERN)
#: Scheme of the SAN URI that carries ``pets://<role>/<name>``.
URI_SCHEME = "pets"
_URI_RE = re.compile(r"pets://([a-z]+)/(" + NAME_PATTERN + r")")

DEFAULT_CA_NAME = "pets project CA"
DEFAULT_CA_VALID_DAYS = 3650
DEFAULT_VALID_DAYS = 365
#: Hosts put in a server certificate when none are given: local development.
DEFAULT_SERVER_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
#: ``notBefore`` is back-dated this much so a peer whose clock is slightly
#: behind still accepts a freshly issued certificate.
CLOCK_SKEW = _dt.timedelta(minutes=5)

_DNS_LABEL_RE = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


@dataclass(frozen=True)
class CA:
    """A certificate authority: its certificate and (unencrypted PKCS#8) key, PEM."""

    cert_pem: bytes
    key_pem: bytes

    def __repr__(self) -> str:  # never print the key
        return f"CA(subject={_load_cert(self.cert_pem).subject.rfc4514_string()!r})"


@dataclass(frozen=True)
class Identity:
    """A party's certificate, private key and the chain up to (and including) the CA.

    ``chain`` holds the issuing certificates, leaf excluded, so
    ``chain[-1]`` is the CA root a peer needs to trust.
    """

    cert_pem: bytes
    key_pem: bytes
    chain: tuple[bytes, ...]

    @property
    def peer(self) -> Peer:
        """The role and name this identity's certificate carries."""
        return peer_identity(self.cert_pem)

    def __repr__(self) -> str:  # never print the key
        return f"Identity({self.peer!r})"


@dataclass(frozen=True)
class Peer:
    """Who is on the other end of a connection, as its certificate says."""

    role: Role
    name: str

    @property
    def uri(self) -> str:
        """The ``pets://<role>/<name>`` URI for this peer."""
        return identity_uri(self.role, self.name)

    def __str__(self) -> str:
        return self.uri


# --------------------------------------------------------------------------- names


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid party name, else raise InvalidInputError.

    Names appear in a URI path and in file names, so they are restricted to
    ``[A-Za-z0-9._-]{1,64}``; ``.`` and ``..`` are refused as well.
    """
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or name in (".", ".."):
        raise InvalidInputError(f"invalid party name {name!r}: must match {NAME_PATTERN}")
    return name


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise InvalidInputError(f"unknown role {role!r}: expected one of {choices}") from None


def identity_uri(role: Role | str, name: str) -> str:
    """Build the SAN URI ``pets://<role>/<name>``, validating both parts."""
    return f"{URI_SCHEME}://{_role(role).value}/{validate_name(name)}"


def parse_identity_uri(uri: str) -> Peer:
    """Parse ``pets://<role>/<name>`` into a :class:`Peer`.

    Raises AuthenticationError (not InvalidInputError) because the only
    caller that sees an untrusted URI is the authentication path.
    """
    m = _URI_RE.fullmatch(uri)
    if m is None or m.group(2) in (".", ".."):
        raise AuthenticationError("malformed pets identity URI in certificate")
    try:
        role = Role(m.group(1))
    except ValueError:
        raise AuthenticationError("unknown role in pets identity URI") from None
    return Peer(role=role, name=m.group(2))


# --------------------------------------------------------------------------- issuing


def _utcnow(now: _dt.datetime | None) -> _dt.datetime:
    if now is None:
        return _dt.datetime.now(_dt.UTC)
    if now.tzinfo is None:
        raise InvalidInputError("now must be timezone-aware (e.g. datetime.now(UTC))")
    return now.astimezone(_dt.UTC)


def _check_days(valid_days: int) -> None:
    if not isinstance(valid_days, int) or isinstance(valid_days, bool) or valid_days < 1:
        raise InvalidInputError(f"valid_days must be a positive integer, got {valid_days!r}")


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_cert(pem_or_der: bytes) -> x509.Certificate:
    try:
        if pem_or_der.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(pem_or_der)
        return x509.load_der_x509_certificate(pem_or_der)
    except (ValueError, TypeError):
        raise InvalidInputError("not a valid X.509 certificate (PEM or DER)") from None


def _load_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise InvalidInputError("not a valid unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InvalidInputError("private key must be ECDSA P-256")
    return key


def _same_public_key(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> bool:
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert.public_key().public_bytes(*fmt) == key.public_key().public_bytes(*fmt)


def create_ca(
    name: str = DEFAULT_CA_NAME,
    *,
    valid_days: int = DEFAULT_CA_VALID_DAYS,
    now: _dt.datetime | None = None,
) -> CA:
    """Create a self-signed ECDSA P-256 CA for one pets deployment.

    ``name`` is free text (it only goes into the subject CN). ``now``
    (timezone-aware) is the issuing time; tests inject it to make expired
    CAs.
    """
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        raise InvalidInputError("CA name must be non-empty text of at most 64 characters")
    _check_days(valid_days)
    t = _utcnow(now)
    key = _new_key()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pets"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(t - CLOCK_SKEW)
        .not_valid_after(t + _dt.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return CA(cert_pem=cert.public_bytes(serialization.Encoding.PEM), key_pem=_key_pem(key))


def load_ca(cert_pem: bytes, key_pem: bytes) -> CA:
    """Rebuild a :class:`CA` from PEM, checking it is a CA and the key matches.

    Used by the file layer, so a wrong or swapped file fails here with a
    clear message rather than later as an opaque TLS error.
    """
    cert = _load_cert(cert_pem)
    key = _load_key(key_pem)
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        bc = None
    if bc is None or not bc.ca:
        raise InvalidInputError("certificate is not a CA certificate (basicConstraints CA=false)")
    if not _same_public_key(cert, key):
        raise InvalidInputError("CA private key does not match the CA certificate")
    return CA(cert_pem=cert.public_bytes(serialization.Encoding.PEM), key_pem=key_pem)


def check_key_pair(cert_pem: bytes, key_pem: bytes) -> None:
    """Raise InvalidInputError unless ``key_pem`` is the private key of ``cert_pem``.

    A swapped or stale key file otherwise only shows up as a TLS handshake
    failure with no hint of the cause.
    """
    if not _same_public_key(_load_cert(cert_pem), _load_key(key_pem)):
        raise InvalidInputError("private key does not match the certificate")


def _host_san(host: str) -> x509.GeneralName:
    """One host as an IP or DNS SAN; DNS names are checked label by label."""
    if not isinstance(host, str) or not host:
        raise InvalidInputError("host must be a non-empty string")
    try:
        return x509.IPAddress(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    if len(host) > 253 or not all(_DNS_LABEL_RE.fullmatch(label) for label in labels):
        raise InvalidInputError(f"invalid host {host!r}: not an IP address or DNS name")
    return x509.DNSName(host.rstrip(".").lower())


SERVER_DNS_SUFFIX = "pets"


def server_dns_name(role: Role | str, name: str) -> str:
    """The DNS name ``<name>.<role>.pets`` in every leader or helper certificate.

    Clients pin it (``grpc.ssl_target_name_override``) so the TLS handshake
    proves they reach *that* server in *that* role, not merely some server of
    the project: a holder handing seed 1 to helper-1 cannot be redirected to
    helper-2 or the leader. Server names must therefore be DNS labels.
    """
    role = _role(role)
    if not role.is_server:
        raise InvalidInputError(f"role {role.value} has no server name")
    if not _DNS_LABEL_RE.fullmatch(name):
        raise InvalidInputError(
            f"server name {name!r} must be a DNS label (letters, digits, inner hyphens)"
        )
    return f"{name}.{role.value}.{SERVER_DNS_SUFFIX}".lower()


def issue(
    ca: CA,
    role: Role | str,
    name: str,
    *,
    hosts: Sequence[str] | None = None,
    valid_days: int = DEFAULT_VALID_DAYS,
    now: _dt.datetime | None = None,
) -> Identity:
    """Issue a fresh ECDSA P-256 key and certificate for party ``name`` in ``role``.

    ``hosts`` are the DNS names / IP addresses a server role is reached at;
    ``None`` means :data:`DEFAULT_SERVER_HOSTS` for server roles and none for
    client roles. Giving hosts to a client role is an error (it serves
    nothing, and host SANs would let it pose as a server). The certificate
    never outlives the CA; issuing from a CA that is not valid at ``now`` is
    refused.
    """
    role = _role(role)
    uri = identity_uri(role, name)
    _check_days(valid_days)
    t = _utcnow(now)
    ca_cert = _load_cert(ca.cert_pem)
    ca_key = _load_key(ca.key_pem)
    if not (ca_cert.not_valid_before_utc <= t <= ca_cert.not_valid_after_utc):
        raise InvalidInputError("the CA certificate is not valid at the issuing time")

    if hosts is None:
        hosts = DEFAULT_SERVER_HOSTS if role.is_server else ()
    if isinstance(hosts, str):
        raise InvalidInputError("hosts must be a sequence of host names, not one string")
    if hosts and not role.is_server:
        raise InvalidInputError(f"role {role.value} is a client role and takes no hosts")
    host_sans = list(dict.fromkeys(_host_san(h) for h in hosts))
    if role.is_server:
        pinned = x509.DNSName(server_dns_name(role, name))
        host_sans = [pinned, *(h for h in host_sans if h != pinned)]

    key = _new_key()
    not_after = min(t + _dt.timedelta(days=valid_days), ca_cert.not_valid_after_utc)
    ekus = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if role.is_server:
        ekus.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pets"),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role.value),
                    x509.NameAttribute(NameOID.COMMON_NAME, name),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(max(t - CLOCK_SKEW, ca_cert.not_valid_before_utc))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri), *host_sans]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return Identity(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=_key_pem(key),
        chain=(ca_cert.public_bytes(serialization.Encoding.PEM),),
    )


# --------------------------------------------------------------------------- reading


def _peer_from_cert(cert: x509.Certificate) -> Peer:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise AuthenticationError("certificate has no subject alternative names") from None
    except ValueError:
        raise AuthenticationError("certificate has malformed extensions") from None
    uris = [
        u for u in san.get_values_for_type(x509.UniformResourceIdentifier) if u.startswith("pets:")
    ]
    if not uris:
        raise AuthenticationError("certificate carries no pets identity URI")
    if len(uris) > 1:
        raise AuthenticationError("certificate carries more than one pets identity URI")
    return parse_identity_uri(uris[0])


def peer_identity(cert_pem_or_der: bytes) -> Peer:
    """Read the role and name from a certificate's ``pets://`` SAN URI.

    This does **not** check the signature, chain or validity period: call it
    on a certificate the TLS handshake has already verified against the CA
    (or use :func:`verify_identity`). Raises AuthenticationError when the
    certificate is unreadable or the URI is absent, duplicated or malformed.
    """
    try:
        cert = _load_cert(cert_pem_or_der)
    except InvalidInputError:
        raise AuthenticationError("peer certificate is not a valid X.509 certificate") from None
    return _peer_from_cert(cert)


def verify_identity(ca_pem: bytes, cert_pem: bytes, *, now: _dt.datetime | None = None) -> Peer:
    """Verify ``cert_pem`` against the CA at ``now`` and return the peer it names.

    Checks what a TLS handshake checks (signature chain to this CA, validity
    period, clientAuth usage), for use outside a handshake: when loading a
    certificate directory, or in tests with an injected clock. Raises
    AuthenticationError on any failure.
    """
    t = _utcnow(now)
    try:
        root = _load_cert(ca_pem)
        leaf = _load_cert(cert_pem)
    except InvalidInputError as exc:
        raise AuthenticationError(str(exc)) from None
    verifier = PolicyBuilder().store(Store([root])).time(t).build_client_verifier()
    try:
        verifier.verify(leaf, [])
    except (VerificationError, InvalidSignature, ValueError) as exc:
        raise AuthenticationError(f"certificate does not verify against the CA: {exc}") from None
    return _peer_from_cert(leaf)


@functools.lru_cache(maxsize=4096)
def _verified_once(ca_pem: bytes, cert_pem: bytes) -> tuple[Peer, _dt.datetime, _dt.datetime]:
    """The peer a certificate names and the window in which both it and the CA are
    valid, once its chain verified."""
    try:
        leaf, root = _load_cert(cert_pem), _load_cert(ca_pem)
    except InvalidInputError as exc:
        raise AuthenticationError(str(exc)) from None
    start = max(leaf.not_valid_before_utc, root.not_valid_before_utc)
    end = min(leaf.not_valid_after_utc, root.not_valid_after_utc)
    # The chain is checked at a moment both are valid; the caller checks its own time.
    return verify_identity(ca_pem, cert_pem, now=start), start, end


def verify_identity_cached(
    ca_pem: bytes,
    cert_pem: bytes,
    *,
    now: _dt.datetime | None = None,
    during: tuple[_dt.datetime, _dt.datetime] | None = None,
) -> Peer:
    """:func:`verify_identity`, with the chain check remembered per (CA, certificate).

    For servers that check the same holders' certificates on every query: the
    signature chain of immutable certificate bytes is verified once, the
    validity period on every call: at ``now``, or, with ``during=(start,
    end)``, at some moment of that span (a certificate that was valid when
    its holder contributed stays good for that query). Failures are not cached.
    """
    peer, not_before, not_after = _verified_once(bytes(ca_pem), bytes(cert_pem))
    start, end = during if during is not None else (_utcnow(now), _utcnow(now))
    if not_after < start or end < not_before:
        raise CertificateValidityError("certificate is outside its validity period")
    return peer
