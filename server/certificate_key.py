"""The server's certificate key as a signing key.

A server signs statements with the private key of its own `pets certs`
certificate (mutual TLS), so that whoever relays them cannot change them: the
helper its seal-key statement (:mod:`pets.server.helper.seal_key`), both
servers their linkage key shares (:mod:`pets.server.linkage_keys`). Those
certificates carry ECDSA P-256 keys; another key type is a configuration
mistake, reported as :class:`pets.errors.ConfigError`.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from pets.errors import ConfigError
from pets.runtime.tomlconfig import TlsFiles


def certificate_signing_key(tls: TlsFiles) -> ec.EllipticCurvePrivateKey:
    """The ECDSA private key of ``tls.cert`` (read from ``tls.key``)."""
    key = load_pem_private_key(tls.key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{tls.key} is not the ECDSA key of a `pets certs` certificate")
    return key
