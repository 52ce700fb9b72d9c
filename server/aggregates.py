"""Running aggregates kept by the leader: a ring sum or a ciphertext product.

Both kinds have the same small interface so the leader's contribution path
does not care which protocol a query uses: ``validate`` a payload (before
anything is recorded), ``add`` it, and ``to_bytes``/``from_bytes`` for the
durable copy in SQLite. Memory is one aggregate per query, independent of
the number of holders.
"""

from __future__ import annotations

import sys
from typing import Protocol as TypingProtocol

import numpy as np

from pets import sharing
from pets.errors import InvalidInputError
from pets.transport import wire


class RunningAggregate(TypingProtocol):
    payload_bytes: int
    count: int  # contributions folded in

    def validate(self, payload: bytes | bytearray | list[bytes]) -> object: ...

    def add(self, parsed: object) -> None: ...

    def to_bytes(self) -> bytes: ...


class AdditiveAggregate:
    """The leader's sum of masked ``uint64`` vectors (mod 2^64)."""

    def __init__(
        self, length: int, data: bytes | None = None, *, max_contributions: int | None = None
    ) -> None:
        self.length = length
        self.max_contributions = max_contributions
        self.payload_bytes = length * wire.RING_DTYPE.itemsize
        self.count = 0
        if data is None:
            self.total = np.zeros(length, dtype=np.uint64)
        else:
            self.total = wire.vector_from_bytes(data, length).copy()

    def validate(self, payload: bytes | bytearray | list[bytes]) -> list[np.ndarray]:
        """The payload as ``uint64`` views, one per received chunk (no copy).

        Chunks whose sizes are not whole values (legal, if odd, on the wire)
        are joined first.
        """
        parts = payload if isinstance(payload, list) else [payload]
        if sum(len(p) for p in parts) != self.payload_bytes:
            raise InvalidInputError(
                f"vector payload has {sum(len(p) for p in parts)} bytes, expected "
                f"{self.payload_bytes} ({self.length} values of 8 bytes)"
            )
        if any(len(p) % wire.RING_DTYPE.itemsize for p in parts):
            parts = [b"".join(parts)]
        return [np.frombuffer(p, dtype=wire.RING_DTYPE) for p in parts]

    def add(self, parsed: object) -> None:
        assert isinstance(parsed, list)
        if self.max_contributions is not None and self.count >= self.max_contributions:
            raise InvalidInputError(
                f"query already has {self.count} contributions, the most whose sum provably "
                "fits the 64-bit ring"
            )
        at = 0
        for part in parsed:
            end = at + part.shape[0]
            sharing.aggregate(self.total[at:end], part)
            at = end
        self.count += 1

    def to_bytes(self) -> bytes | memoryview:
        """The running sum as little-endian bytes; on a little-endian host a
        zero-copy view (valid until the next ``add``: the leader writes it
        before folding in anything else)."""
        if sys.byteorder == "little":
            return memoryview(self.total).cast("B")
        return wire.vector_to_bytes(self.total)
