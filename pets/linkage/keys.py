"""Per-query key shares of the linkage PRF, derived from each server's long-term secret.

The pseudonym key of a query is k = k_L · k_H mod n (secp256k1's order); the
leader holds only k_L, the helper only k_H, and k exists nowhere. Each share is

    okm = HKDF-SHA256(IKM = server secret, salt = "pets/linkage/v1/key-share",
                      info = u8 len(role) || role || u8 len(domain) || domain
                             || u16 len(query) || query, L = 48)          (RFC 5869)
    k_X = (OS2IP(okm) mod (n - 1)) + 1

48 bytes reduced modulo a 256-bit number leaves a statistical distance below
2^-128 from uniform on [1, n), the hash-to-field argument of RFC 9380
section 5 (and of RFC 9497's DeriveKeyPair); adding one makes the share
non-zero by construction. Binding the role keeps the two shares independent
even if an operator gave both servers the same secret; binding the query gives
per-query keys, so pseudonyms are unlinkable across queries.

In verified mode a server announces ``k_X · G`` (33 bytes) signed with its
certificate key (:func:`announcement_message` is what it signs) and proves each
evaluation against it with :mod:`pets.linkage.dleq`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from coincurve import PublicKey
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pets.errors import InvalidInputError
from pets.linkage.domain import LinkageDomain, as_bytes, query_bytes
from pets.zk.curve import N

ROLES = ("leader", "helper")
KEY_SALT = b"pets/linkage/v1/key-share"
ANNOUNCEMENT_LABEL = b"pets/linkage/v1/key-announcement"
MIN_SECRET_BYTES = 32
_OKM_BYTES = 48


@dataclass(frozen=True)
class KeyShare:
    """One server's key share for one query. ``repr`` never shows the scalar."""

    role: str
    scalar: int = field(repr=False)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise InvalidInputError(f"a key share role is one of {ROLES}")
        if not 0 < self.scalar < N:
            raise InvalidInputError("a key share must be a scalar in [1, n)")

    @property
    def scalar_bytes(self) -> bytes:
        return self.scalar.to_bytes(32, "big")

    @property
    def public_key(self) -> bytes:
        """``k_X · G``, 33-byte SEC 1 compressed: what verified mode announces."""
        return PublicKey.from_valid_secret(self.scalar_bytes).format(compressed=True)


def _info(role: str, domain: LinkageDomain, query: bytes) -> bytes:
    r = role.encode("ascii")
    d = domain.name.encode("ascii")
    return bytes([len(r)]) + r + bytes([len(d)]) + d + len(query).to_bytes(2, "big") + query


def derive_key_share(
    server_secret: bytes, role: str, domain: LinkageDomain, query_id: str | bytes
) -> KeyShare:
    """The key share of ``role`` for one query (see the module docstring)."""
    if role not in ROLES:
        raise InvalidInputError(f"a key share role is one of {ROLES}")
    secret = as_bytes(server_secret, "a server's linkage secret")
    if len(secret) < MIN_SECRET_BYTES:
        raise InvalidInputError(f"a server's linkage secret must be >= {MIN_SECRET_BYTES} bytes")
    okm = HKDF(
        algorithm=hashes.SHA256(),
        length=_OKM_BYTES,
        salt=KEY_SALT,
        info=_info(role, domain, query_bytes(query_id)),
    ).derive(secret)
    return KeyShare(role, int.from_bytes(okm, "big") % (N - 1) + 1)


def announcement_message(
    role: str, domain: LinkageDomain, query_id: str | bytes, public_key: bytes
) -> bytes:
    """The bytes a server signs to announce its public key share for one query."""
    if role not in ROLES:
        raise InvalidInputError(f"a key share role is one of {ROLES}")
    info = _info(role, domain, query_bytes(query_id))
    return ANNOUNCEMENT_LABEL + info + as_bytes(public_key, "a public key")
