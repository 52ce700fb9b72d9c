"""Wire-level helpers shared by servers and clients: chunking and vectors.

Large payloads (masked vectors, ciphertexts, aggregate shares) travel as
streams of chunks of about 1 MB so that no single gRPC message is huge and a
receiver can validate lengths as data arrives. Ring vectors are serialised
as little-endian ``uint64`` regardless of the host's byte order.

The chunk messages (``pets.v1.ContributionChunk``, ``AggregateChunk``) have
a zero-copy codec here: protobuf's Python runtime copies a ``bytes`` field
when it builds or parses a message and again when the field is read, which
for 1 MB chunks costs more than everything else the leader does with them.
The codec writes and reads the same protobuf wire format (field 1 the
header, field 2 the data, both length-delimited) and falls back to the
protobuf parser for any message it does not recognise, so it accepts
exactly what protobuf accepts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np
from google.protobuf.message import Message

from pets.errors import InvalidInputError
from pets.v1 import aggregation_pb2 as pb

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
        return arr.data.cast("B")
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


class RingAdder:
    """Add a stream of little-endian ``uint64`` bytes into ``total`` (mod 2^64) as it
    arrives, so a receiver never holds the stream itself.

    The stream must carry exactly ``len(total)`` values; chunk boundaries
    need not fall between values (a split value is carried to the next chunk).
    """

    def __init__(self, total: np.ndarray) -> None:
        self._total = total
        self._at = 0  # values added so far
        self._carry = b""

    def add(self, data: bytes | memoryview) -> None:
        if self._carry:
            data = self._carry + bytes(data)
        size = RING_DTYPE.itemsize
        whole = len(data) // size
        end = self._at + whole
        if end > len(self._total) or (end == len(self._total) and len(data) % size):
            raise InvalidInputError(
                f"stream sent more than the announced {len(self._total) * size} bytes"
            )
        if whole:
            part = self._total[self._at : end]
            np.add(part, np.frombuffer(data, dtype=RING_DTYPE, count=whole), out=part)
        self._at = end
        self._carry = bytes(data[whole * size :])

    def finish(self) -> None:
        if self._at != len(self._total) or self._carry:
            got = self._at * RING_DTYPE.itemsize + len(self._carry)
            raise InvalidInputError(
                f"stream ended after {got} of {len(self._total) * RING_DTYPE.itemsize} bytes"
            )


# Protobuf tags of the chunk messages' fields: (field number << 3) | LEN wire type.
# ContributionChunk and AggregateChunk share the layout: 1 = header, 2 = data.
_HEADER_TAG = b"\x0a"
_DATA_TAG = b"\x12"


def _encode_varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field_record(tag: bytes, data: bytes) -> bytes:
    """One length-delimited protobuf field: its tag, the varint length, ``data``. A
    repeated message field encodes as its elements' records one after another, so
    already encoded messages join into a message without being parsed again."""
    return tag + _encode_varint(len(data)) + data


def _decode_varint(buf: bytes | memoryview, at: int) -> tuple[int, int]:
    """``(value, next offset)``; ValueError when truncated or over 64 bits."""
    value = shift = 0
    while True:
        if at >= len(buf) or shift > 63:
            raise ValueError("bad varint")
        byte = buf[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def encode_chunk(header: Message | None, data: bytes | memoryview) -> bytes:
    """``Chunk(header=header, data=data).SerializeToString()`` for the chunk messages
    (``ContributionChunk``, ``AggregateChunk``), with one copy of ``data`` instead
    of three."""
    parts: list[bytes | memoryview] = []
    if header is not None:
        h = header.SerializeToString()
        parts += [_HEADER_TAG, _encode_varint(len(h)), h]
    if len(data):
        parts += [_DATA_TAG, _encode_varint(len(data)), data]
    return b"".join(parts)


class ChunkView:
    """A parsed chunk message whose ``data`` is a view of the received bytes."""

    __slots__ = ("data", "header")

    def __init__(self, header: Message | None, data: bytes | memoryview) -> None:
        self.header = header
        self.data = data

    def HasField(self, name: str) -> bool:
        if name != "header":
            raise ValueError(f"a chunk has no message field {name!r}")
        return self.header is not None


def _decode_chunk(raw: bytes, header_type: type[Message], chunk_type: type[Message]) -> ChunkView:
    """``chunk_type.FromString(raw)`` without copying the data bytes.

    Recognises the layout every encoder produces (the header field, then the
    data field, each at most once); anything else (other order, repeated or
    unknown fields) goes to the protobuf parser, which also raises on
    malformed input.
    """
    view = memoryview(raw)
    header: Message | None = None
    data: bytes | memoryview = b""
    at = 0
    try:
        if at < len(raw) and raw[at] == _HEADER_TAG[0]:
            n, start = _decode_varint(raw, at + 1)
            if start + n > len(raw):
                raise ValueError("header runs past the message")
            header = header_type.FromString(bytes(view[start : start + n]))
            at = start + n
        if at < len(raw) and raw[at] == _DATA_TAG[0]:
            n, start = _decode_varint(raw, at + 1)
            if start + n != len(raw):
                raise ValueError("data does not end the message")
            data = view[start:]
            at = len(raw)
        if at != len(raw):
            raise ValueError("unexpected field")
    except ValueError:
        msg = chunk_type.FromString(raw)
        return ChunkView(msg.header if msg.HasField("header") else None, msg.data)  # type: ignore[attr-defined]
    return ChunkView(header, data)


def decode_contribution_chunk(raw: bytes) -> ChunkView:
    """``pb.ContributionChunk.FromString(raw)``, data not copied (see :func:`_decode_chunk`)."""
    return _decode_chunk(raw, pb.ContributionHeader, pb.ContributionChunk)


def decode_aggregate_chunk(raw: bytes) -> ChunkView:
    """``pb.AggregateChunk.FromString(raw)``, data not copied (see :func:`_decode_chunk`)."""
    return _decode_chunk(raw, pb.AggregateHeader, pb.AggregateChunk)
