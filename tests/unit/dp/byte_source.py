"""A scripted random source for the DP sampler tests: forced ties, known words."""

from __future__ import annotations

from collections.abc import Callable


def scripted_stream(*chunks: bytes) -> Callable[[int], bytes]:
    """A random source that serves these bytes in order (any read size)."""
    data = bytearray(b"".join(chunks))

    def read(n: int) -> bytes:
        assert len(data) >= n, "the test stream ran out"
        out = bytes(data[:n])
        del data[:n]
        return out

    return read
