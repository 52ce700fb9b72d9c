"""exp(-x) to any precision with integers only, and exact comparisons of a uniform with it.

The fast samplers (:mod:`pets.dp.fast`) decide ``Bernoulli(exp(-n))`` for an
integer ``n`` (and the geometric law ``P(V >= v) = exp(-v)``) by comparing one
uniform 64-bit word ``w`` with the threshold ``T_n = floor(exp(-n)·2^64)``:
``w < T_n`` means the uniform real ``F = 0.w…`` is below ``exp(-n)``, ``w > T_n``
that it is not, both exactly. Only ``w = T_n`` (probability 2^-64) leaves the
answer open; it is then settled by drawing further bits of ``F`` and comparing
them with further bits of ``exp(-n)`` (:class:`LazyUniform`), so the decision
is exact, not an approximation that is wrong with probability 2^-64.

``exp(-x)`` for a rational ``x >= 0`` is bounded by exact rational arithmetic
(:mod:`fractions`), with no floating point: ``e^x`` lies between the partial
sum ``S_n`` of its Taylor series and ``S_n + 2·x^(n+1)/(n+1)!`` once
``n + 2 > 2x`` (the tail is then dominated by a geometric series of ratio at
most 1/2), so ``exp(-x)`` lies between their reciprocals. This is the classic
approach of exact samplers (von Neumann 1951; Canonne, Kamath and Steinke
2020, §5, avoid the bounds by their Algorithm 1 instead, which
:mod:`pets.dp.samplers` implements and the fast path uses for fractional γ).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from fractions import Fraction

import numpy as np

from pets.dp.randomness import RandomBytes
from pets.errors import InvalidInputError

WORD_BITS = 64
THRESHOLD_COUNT = 64
"""``T_n`` is tabulated for ``n = 0 .. 63`` (``T_n = 0`` from ``n = 45`` on)."""


def exp_neg_bounds(x: Fraction, bits: int) -> tuple[int, int]:
    """Integers ``lo <= exp(-x)·2^bits <= hi`` with ``hi - lo <= 2`` (``x >= 0`` rational)."""
    if x < 0:
        raise InvalidInputError("exp_neg_bounds needs x >= 0")
    if bits < 0:
        raise InvalidInputError("exp_neg_bounds needs bits >= 0")
    if x >= bits:  # exp(-x)·2^bits <= (2/e)^bits < 1: cheap, and exact enough
        return 0, 1
    scale = 1 << bits
    total = Fraction(0)
    term = Fraction(1)
    k = 0
    while True:
        total += term
        k += 1
        term = term * x / k  # x^k / k!
        if k + 1 > 2 * x:
            low, high = total, total + 2 * term  # e^x in [low, high]
            lo = (scale * high.denominator) // high.numerator  # floor(2^bits / high)
            hi = -((-scale * low.denominator) // low.numerator)  # ceil(2^bits / low)
            if hi - lo <= 2:
                return lo, hi


@functools.cache
def thresholds() -> np.ndarray:
    """``T_n = floor(exp(-n)·2^64)`` for ``n = 0 .. 63`` (uint64; ``T_0`` is 2^64 - 1).

    ``T_0`` stands for 2^64, which uint64 cannot hold: ``F < exp(0) = 1``
    always, and ``w <= 2^64 - 1`` always, so callers never compare with it.
    """
    out = np.zeros(THRESHOLD_COUNT, dtype=np.uint64)
    out[0] = np.uint64((1 << 64) - 1)
    for n in range(1, THRESHOLD_COUNT):
        out[n] = np.uint64(_floor_exp_neg(Fraction(n), WORD_BITS))
    return out


def _floor_exp_neg(x: Fraction, bits: int) -> int:
    """``floor(exp(-x)·2^bits)`` exactly (exp(-x)·2^bits is irrational for rational x > 0)."""
    extra = 8
    while True:
        lo, hi = exp_neg_bounds(x, bits + extra)
        if lo >> extra == hi >> extra:
            return lo >> extra
        extra += 16


class LazyUniform:
    """A uniform real ``F`` in [0, 1) whose binary digits are drawn only when needed.

    It starts from a known prefix ``w`` of ``bits`` bits (``F = (w + R)/2^bits``,
    ``R`` uniform and still undrawn), so a word already compared in a
    vectorised pass keeps its meaning when a tie is settled here.
    """

    def __init__(self, rng: RandomBytes, prefix: int, bits: int = WORD_BITS) -> None:
        self._rng = rng
        self.prefix = prefix
        self.bits = bits

    def extend(self) -> None:
        """Draw the next 64 digits of ``F`` (the prefix gets 64 bits longer)."""
        more = int.from_bytes(self._rng(WORD_BITS // 8), "big")
        self.prefix = (self.prefix << WORD_BITS) | more
        self.bits += WORD_BITS

    def below(self, bounds: Callable[[int], tuple[int, int]]) -> bool:
        """Whether ``F < G``, exactly, for ``lo <= G·2^bits <= hi = bounds(bits)`` (draws
        more digits of ``F`` while undecided; ``G`` irrational or 0, so this ends with
        probability 1)."""
        while True:
            lo, hi = bounds(self.bits)
            # F lies in [prefix, prefix + 1) / 2^bits; G in [lo, hi] / 2^bits.
            if self.prefix + 1 <= lo:
                return True
            if self.prefix >= hi:
                return False
            self.extend()

    def below_exp_neg(self, x: Fraction) -> bool:
        """Whether ``F < exp(-x)``, exactly (draws more digits of ``F`` while undecided)."""
        return self.below(functools.partial(exp_neg_bounds, x))


def geometric_exp_tail(rng: RandomBytes, word: int, bits: int = WORD_BITS) -> int:
    """``V = max{v >= 0 : F < exp(-v)}`` for the uniform ``F`` with ``bits``-bit prefix ``word``.

    This is a ``Geometric`` draw with ``P(V >= v) = exp(-v)``; the vectorised
    pass reads it off the thresholds and calls this only on a tie.
    """
    f = LazyUniform(rng, word, bits)
    v = 0
    while f.below_exp_neg(Fraction(v + 1)):
        v += 1
    return v
