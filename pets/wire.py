"""Wire-level helpers shared by servers and clients: chunking and vectors.

Large payloads (masked vectors, ciphertexts, aggregate shares) travel as
streams of chunks of about 1 MB so that no single gRPC message is huge and a
receiver can validate lengths as data arrives. Ring vectors are serialised
as little-endian ``uint64`` regardless of the host's byte order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np

from pets.errors import InvalidInputError

CHUNK_BYTES = 1 << 20
# --insecure mode only: the metadata header in which a client *claims* "role/name".
INSECURE_IDENTITY_HEADER = "x-pets-identity"
# gRPC message limit used by servers and clients: one chunk plus headers.
MAX_MESSAGE_BYTES = CHUNK_BYTES + (64 << 10)
RING_DTYPE = np.dtype("<u8")


def chunks(payload: bytes | memoryview, size: int = CHUNK_BYTES) -> Iterator[memoryview]:
    """Split ``payload`` into consecutive views of at most ``size`` bytes."""
    view = memoryview(payload).cast("B")
    if len(view) == 0:
        yield view
        return
    for start in range(0, len(view), size):
        yield view[start : start + size]


def vector_to_bytes(vector: np.ndarray) -> bytes:
    """A ring vector as little-endian ``uint64`` bytes."""
    arr = np.asarray(vector)
    if arr.dtype.kind != "u" or arr.itemsize != 8:
        raise InvalidInputError(f"ring vectors must be uint64, got {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=RING_DTYPE).tobytes()


def vector_view(vector: np.ndarray) -> memoryview | bytes:
    """A ring vector's little-endian bytes without copying where the host allows."""
    arr = np.asarray(vector)
    if arr.dtype == RING_DTYPE and arr.flags.c_contiguous:
        return memoryview(arr).cast("B")
    return vector_to_bytes(arr)


def vector_from_bytes(data: bytes | bytearray | memoryview, length: int) -> np.ndarray:
    """Read exactly ``length`` little-endian ``uint64`` values (a read-only view)."""
    if len(data) != length * RING_DTYPE.itemsize:
        raise InvalidInputError(
            f"vector payload has {len(data)} bytes, expected {length * RING_DTYPE.itemsize} "
            f"({length} values of 8 bytes)"
        )
    return np.frombuffer(data, dtype=RING_DTYPE).astype(np.uint64, copy=False)


def digest(payload: bytes | bytearray | memoryview) -> bytes:
    """SHA-256 of a payload (Paillier contributions are identified by it)."""
    return hashlib.sha256(payload).digest()


class ChunkAssembler:
    """Collect a stream of chunks into one preallocated buffer of known size.

    Rejects a stream that sends more bytes than announced (as soon as it
    happens) or fewer (at :meth:`finish`), so a malformed or truncated stream
    never yields a payload. With ``sha256=True`` it also hashes the bytes as
    they arrive (while they are hot in cache).
    """

    def __init__(self, expected_bytes: int, *, sha256: bool = False) -> None:
        """``expected_bytes`` must already be checked against the receiver's limits."""
        if expected_bytes < 0:
            raise InvalidInputError("payload size must not be negative")
        self._buf = bytearray(expected_bytes)
        self._filled = 0
        self._sha256 = hashlib.sha256() if sha256 else None

    def add(self, data: bytes) -> None:
        end = self._filled + len(data)
        if end > len(self._buf):
            raise InvalidInputError(
                f"stream sent more than the announced {len(self._buf)} payload bytes"
            )
        self._buf[self._filled : end] = data
        if self._sha256 is not None:
            self._sha256.update(data)
        self._filled = end

    def digest(self) -> bytes:
        """SHA-256 of the bytes received so far (of the payload, after :meth:`finish`)."""
        if self._sha256 is None:
            raise InvalidInputError("this assembler was made without sha256=True")
        return self._sha256.digest()

    def finish(self) -> bytearray:
        if self._filled != len(self._buf):
            raise InvalidInputError(
                f"stream ended after {self._filled} of {len(self._buf)} announced payload bytes"
            )
        return self._buf


class ChunkCollector:
    """Like :class:`ChunkAssembler`, but keeps the chunks as received: no copy.

    For a receiver that only reads the payload once, chunk by chunk (the
    leader adding a masked vector into its running sum): the same length
    checks, without assembling one contiguous buffer.
    """

    def __init__(self, expected_bytes: int) -> None:
        if expected_bytes < 0:
            raise InvalidInputError("payload size must not be negative")
        self._expected = expected_bytes
        self._parts: list[bytes] = []
        self._filled = 0

    def add(self, data: bytes) -> None:
        end = self._filled + len(data)
        if end > self._expected:
            raise InvalidInputError(
                f"stream sent more than the announced {self._expected} payload bytes"
            )
        if data:
            self._parts.append(data)
        self._filled = end

    def finish(self) -> list[bytes]:
        if self._filled != self._expected:
            raise InvalidInputError(
                f"stream ended after {self._filled} of {self._expected} announced payload bytes"
            )
        return self._parts


def length_prefixed(data: bytes) -> bytes:
    """``data`` behind its 4-byte big-endian length."""
    return len(data).to_bytes(4, "big") + data


def split_length_prefixed(data: bytes) -> list[bytes]:
    """The parts of a concatenation of :func:`length_prefixed` items."""
    parts, view, at = [], memoryview(data), 0
    while at < len(view):
        if at + 4 > len(view):
            raise InvalidInputError("truncated length prefix")
        n = int.from_bytes(view[at : at + 4], "big")
        if at + 4 + n > len(view):
            raise InvalidInputError("length prefix runs past the end of the data")
        parts.append(bytes(view[at + 4 : at + 4 + n]))
        at += 4 + n
    return parts
