"""Randomness sources for the prover.

Every function that draws secret randomness takes an ``rng`` argument with a
``randbelow(n) -> int`` method and defaults to the :mod:`secrets` module
itself (which has exactly that function). Tests and known-answer vectors pass
a :class:`DeterministicRng` instead, so proofs are reproducible byte for byte
on both group backends. Never use :class:`DeterministicRng` for real proofs.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Protocol


class RandomSource(Protocol):
    """Anything with ``randbelow(n)`` returning a uniform integer in [0, n)."""

    def randbelow(self, exclusive_upper_bound: int, /) -> int: ...


#: The default source: the operating system CSPRNG via :mod:`secrets`.
DEFAULT_RNG: RandomSource = secrets


class DeterministicRng:
    """Reproducible source for tests and vectors: SHA-256 in counter mode.

    Draws 64 bytes per call (rejection is unnecessary: 512-bit values reduced
    mod a <= 256-bit bound have negligible bias). Not for production use.
    """

    def __init__(self, seed: bytes | str = b"pets-test") -> None:
        self._seed = seed.encode() if isinstance(seed, str) else bytes(seed)
        self._counter = 0

    def randbelow(self, exclusive_upper_bound: int, /) -> int:
        if exclusive_upper_bound <= 0:
            raise ValueError("upper bound must be positive")
        block = b""
        for half in (b"\x00", b"\x01"):
            block += hashlib.sha256(self._seed + self._counter.to_bytes(8, "big") + half).digest()
        self._counter += 1
        return int.from_bytes(block, "big") % exclusive_upper_bound


def random_scalar(rng: RandomSource, order: int) -> int:
    """A uniform non-zero scalar in [1, order)."""
    return 1 + rng.randbelow(order - 1)
