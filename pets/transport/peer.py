"""The caller of a gRPC call, from the TLS handshake recorded in its auth context.

Servers identify a party by the certificate it presented in the mutual-TLS
handshake, never by a request field (docs/ARCHITECTURE.md, "Roles and trust").
Parsing X.509 on every call would cost more than a small contribution, so the
parsed identity is cached by certificate bytes (certificates are immutable).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

from pets.errors import AuthenticationError
from pets.identity.certificates import Peer, peer_identity

__all__ = ["peer_from_auth_context"]


def _first(values: Iterable[bytes] | bytes | str | None) -> bytes | None:
    """First value of one auth-context property (grpc gives lists of bytes)."""
    if values is None:
        return None
    if isinstance(values, str):
        return values.encode()
    if isinstance(values, bytes):
        return values
    for v in values:
        return v.encode() if isinstance(v, str) else v
    return None


def peer_from_auth_context(auth_context: Mapping[str, Iterable[bytes]]) -> Peer:
    """Identify the client of a gRPC call from ``context.auth_context()``.

    grpc (1.85, checked against a real mutual-TLS server) gives a dict of
    property name to a list of bytes. Over TLS with a verified client
    certificate it holds::

        transport_security_type        [b"ssl"]
        x509_pem_cert                  [leaf certificate, PEM]
        x509_common_name               [b"hospital-a"]
        x509_subject                   [b"CN=hospital-a,OU=holder,O=pets"]
        x509_subject_alternative_name  [every SAN: b"pets://holder/hospital-a", ...]
        peer_uri / peer_dns / peer_ip  [SANs of that type]
        security_level                 [b"TSI_PRIVACY_AND_INTEGRITY"]
        ssl_session_reused, ssl_requested_server_name, ssl_tls_version,
        ssl_negotiated_key_exchange_group

    Without a client certificate (only possible when the server does not
    require one) only the ``transport_security_type``, ``security_level`` and
    ``ssl_*`` keys remain. Over an insecure port it is
    ``{"transport_security_type": [b"insecure"], "security_level":
    [b"TSI_SECURITY_NONE"]}``.

    The role and name are read from ``x509_pem_cert`` (the whole certificate,
    parsed here) rather than from grpc's flattened properties. Raises
    AuthenticationError when the transport is not TLS or no client
    certificate was presented.
    """
    security = _first(auth_context.get("transport_security_type"))
    if security != b"ssl":
        raise AuthenticationError("connection is not authenticated with TLS")
    pem = _first(auth_context.get("x509_pem_cert"))
    if not pem:
        raise AuthenticationError("no client certificate presented")
    return _cached_peer_identity(bytes(pem))


# Certificates are immutable bytes, so cache the parsed identity by value.
@functools.lru_cache(maxsize=4096)
def _cached_peer_identity(pem: bytes) -> Peer:
    return peer_identity(pem)
