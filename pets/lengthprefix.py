"""The one length-prefix encoding: each item behind its 4-byte big-endian length.

Every message the project signs, MACs or hashes from several parts (holder
seed derivation, sealed-seed contexts and signatures, helper key messages,
Paillier query specs, contribution digests) and the announced helper keys
join their parts this way, so that no two different part lists encode to the
same bytes (the same injective framing as TLS 1.3's ``opaque<0..2^32-1>``
vectors, RFC 8446 section 3.4). Changing it changes every signature and
digest: the known-answer vectors in ``tests/vectors`` pin it. A format
whose items may pass 4 GiB (the linkage DLEQ seed hashes whole batches)
uses the same framing with 8-byte lengths (``width=8``).
"""

from __future__ import annotations

from collections.abc import Iterable

from pets.errors import InvalidInputError

__all__ = ["LENGTH_BYTES", "encode", "join", "split"]

LENGTH_BYTES = 4


def _check_width(width: int) -> None:
    if not 1 <= width <= 8:
        raise InvalidInputError(f"a length prefix width must be 1 to 8 bytes, got {width}")


def encode(data: bytes | bytearray | memoryview, width: int = LENGTH_BYTES) -> bytes:
    """``data`` behind its big-endian length, ``width`` bytes (4 unless a format says 8)."""
    _check_width(width)
    if len(data) >> (8 * width):
        raise InvalidInputError(f"item too long for a {width}-byte length prefix")
    return len(data).to_bytes(width, "big") + bytes(data)


def join(parts: Iterable[bytes | bytearray | memoryview], width: int = LENGTH_BYTES) -> bytes:
    """The concatenation of every part's :func:`encode`."""
    return b"".join(encode(p, width) for p in parts)


def split(data: bytes | bytearray | memoryview, width: int = LENGTH_BYTES) -> list[bytes]:
    """The parts of a :func:`join` (the inverse); raises InvalidInputError if malformed."""
    _check_width(width)
    parts: list[bytes] = []
    view, at = memoryview(data), 0
    while at < len(view):
        if at + width > len(view):
            raise InvalidInputError("truncated length prefix")
        n = int.from_bytes(view[at : at + width], "big")
        at += width
        if at + n > len(view):
            raise InvalidInputError("length prefix runs past the end of the data")
        parts.append(bytes(view[at : at + n]))
        at += n
    return parts
