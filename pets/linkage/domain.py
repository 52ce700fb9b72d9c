"""Linkage domains: the identifier space two datasets link on, and its tags.

A *domain* (e.g. ``jp-resident-id``) is shared by every dataset whose rows can
be linked: they must hash the same person to the same curve point, so the
domain fixes the identifier normalisation (:mod:`pets.linkage.normalise`) and
the RFC 9380 domain separation tag (section 3.1: application, version, suite)::

    DST = "PETS-V01-LINKAGE-" || domain name || "-" || "secp256k1_XMD:SHA-256_SSWU_RO_"

Different domains therefore never collide, even for equal identifier strings.

Pseudonyms (issue 16, step 4)::

    ps = SHA-256("pets/linkage/v1/pseudonym" || u8 len(DST) || DST
                 || u16 len(query) || query || point)[:16]

where ``point`` is the 33-byte SEC 1 compressed encoding of k·H(id) and
``query`` the UTF-8 query id. 16 bytes = 128 bits: over all holders' rows of
one query, N in total, the probability that two different people share a
pseudonym is at most N^2 / 2^129 (birthday bound), below 2^-87 for N = 2·10^6.
Pseudonyms are unlinkable across queries because k is derived per query
(:mod:`pets.linkage.keys`); hashing the query id in as well keeps them
separate even if a server were to reuse a key share.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from pets.errors import InvalidInputError, SchemaError
from pets.linkage.normalise import DEFAULT_NORMALISATION, check_normalisation
from pets.zk.curve import POINT_BYTES
from pets.zk.hash_to_curve import SUITE_ID

DST_PREFIX = b"PETS-V01-LINKAGE-"
PSEUDONYM_LABEL = b"pets/linkage/v1/pseudonym"
#: Bytes in a pseudonym (see the collision bound in the module docstring).
PSEUDONYM_BYTES = 16
MAX_QUERY_ID_BYTES = 1024

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def as_bytes(value: object, what: str) -> bytes:
    """``value`` as bytes if it is bytes-like, else :class:`~pets.errors.InvalidInputError`."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise InvalidInputError(f"{what} must be bytes")


def query_bytes(query_id: str | bytes) -> bytes:
    """The query id as bytes (UTF-8 for text), bounded so length prefixes fit."""
    data = (
        query_id.encode("utf-8") if isinstance(query_id, str) else as_bytes(query_id, "a query id")
    )
    if not data or len(data) > MAX_QUERY_ID_BYTES:
        raise SchemaError(f"a query id must be 1 to {MAX_QUERY_ID_BYTES} bytes")
    return data


@dataclass(frozen=True)
class LinkageDomain:
    """An identifier space: its name (lower-case ``[a-z0-9._-]``, <= 64) and normalisation."""

    name: str
    normalisation: tuple[str, ...] = DEFAULT_NORMALISATION
    dst: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise SchemaError(
                "a linkage domain name is 1 to 64 characters of a-z, 0-9, '.', '_', '-' "
                "starting with a letter or digit"
            )
        object.__setattr__(self, "normalisation", check_normalisation(self.normalisation))
        dst = DST_PREFIX + self.name.encode("ascii") + b"-" + SUITE_ID
        object.__setattr__(self, "dst", dst)

    def pseudonym_prefix(self, query_id: str | bytes) -> hashlib._Hash:
        """SHA-256 state after everything but the point (copy it per record)."""
        q = query_bytes(query_id)
        h = hashlib.sha256(PSEUDONYM_LABEL)
        h.update(bytes([len(self.dst)]) + self.dst + len(q).to_bytes(2, "big") + q)
        return h

    def pseudonym(self, query_id: str | bytes, point: bytes) -> bytes:
        """``ps = H(DST || query || point)[:16]`` for one 33-byte encoded point."""
        point = as_bytes(point, "a point")
        if len(point) != POINT_BYTES:
            raise InvalidInputError("a point is 33 bytes")
        h = self.pseudonym_prefix(query_id)
        h.update(point)
        return h.digest()[:PSEUDONYM_BYTES]
