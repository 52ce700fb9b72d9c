"""The one length-prefix encoding: each item behind its 4-byte big-endian length.

Every message the project signs, MACs or hashes from several parts (holder
seed derivation, sealed-seed contexts and signatures, helper key messages,
Paillier query specs, contribution digests) and the announced helper keys
join their parts this way, so that no two different part lists encode to the
same bytes (the same injective framing as TLS 1.3's ``opaque<0..2^32-1>``
vectors, RFC 8446 section 3.4). Changing it changes every signature and
digest: the known-answer vectors in ``tests/vectors`` pin it.
"""

from __future__ import annotations

from collections.abc import Iterable

from pets.errors import InvalidInputError

__all__ = ["LENGTH_BYTES", "encode", "join", "split"]

LENGTH_BYTES = 4
_MAX = (1 << (8 * LENGTH_BYTES)) - 1


def encode(data: bytes | bytearray | memoryview) -> bytes:
    """``data`` behind its 4-byte big-endian length."""
    if len(data) > _MAX:
        raise InvalidInputError("item too long for a 4-byte length prefix")
    return len(data).to_bytes(LENGTH_BYTES, "big") + bytes(data)


def join(parts: Iterable[bytes | bytearray | memoryview]) -> bytes:
    """The concatenation of every part's :func:`encode`."""
    return b"".join(encode(p) for p in parts)


def split(data: bytes | bytearray | memoryview) -> list[bytes]:
    """The parts of a :func:`join` (the inverse); raises InvalidInputError if malformed."""
    parts: list[bytes] = []
    view, at = memoryview(data), 0
    while at < len(view):
        if at + LENGTH_BYTES > len(view):
            raise InvalidInputError("truncated length prefix")
        n = int.from_bytes(view[at : at + LENGTH_BYTES], "big")
        at += LENGTH_BYTES
        if at + n > len(view):
            raise InvalidInputError("length prefix runs past the end of the data")
        parts.append(bytes(view[at : at + n]))
        at += n
    return parts
