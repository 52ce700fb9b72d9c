"""Exact inversion by table: geometric laws and the discrete Laplace for long noise vectors.

The discrete Laplace of scale ``b = t/s`` has pmf ∝ ``q^|z|`` with
``q = exp(-s/t)``. Canonne, Kamath and Steinke (2020, arXiv:2004.00010, §5.2,
Algorithm 2) draw it as a magnitude ``M`` with the geometric law
``P(M = m) = (1 - q)·q^m``, a fair sign, and the rejection of "minus zero"
(the sign and ``M = 0`` together), which makes the law exactly ∝ ``q^|z|``.
This module draws the same ``M``, the same sign and the same rejection, with
a different (and, for long vectors, much cheaper) exact way of drawing ``M``:

**Mixed-radix digits of a geometric are independent.** For integers
``d_0, …, d_{L-1} >= 1`` write ``m = D_0 + 2^{e_1}·D_1 + … + 2^{e_L}·A`` with
digits ``D_j`` in ``[0, 2^{d_j})``, ``e_j = d_0 + … + d_{j-1}``. The map
``m -> (D_0, …, D_{L-1}, A)`` is a bijection of the naturals with
``[0, 2^{d_0}) × … × N``, and ``q^m = Π_j (q^{2^{e_j}})^{D_j} · (q^{2^{e_L}})^A``
is a product, so under ``P(M = m) ∝ q^m`` the digits are independent, ``D_j``
a geometric of ratio ``r_j = q^{2^{e_j}}`` truncated to ``[0, 2^{d_j})`` and
``A`` an (untruncated) geometric of ratio ``q^{2^{e_L}}``. The digit widths
are chosen so that ``q^{2^{e_L}} <= exp(-1)``: every level is then a law with
at most a few hundred outcomes of non-negligible probability, whatever ``b``.
(The same factorisation, for the base-2 digits, is Devroye 1986, *Non-Uniform
Random Variate Generation*, §X.4; CKS20's own split ``M = t·V + U`` is the
two-level case with a rejection step for ``U``.)

**Each level by exact inversion.** A level is a law on ``{0, 1, …}`` given by
its tail probabilities ``G_k = P(D >= k)``, decreasing, with ``G_0 = 1``:
``r^k`` for the geometric, ``(r^k - r^n)/(1 - r^n)`` for the one truncated to
``[0, n)``. For ``F`` uniform in ``[0, 1)``, ``D = #{k >= 1 : F < G_k}`` has
exactly this law (``P(D >= k) = P(F < G_k) = G_k``; inversion, Devroye §II.2).
``F`` is drawn lazily as binary digits. Each ``G_k`` with ``0 < k < n`` is
irrational (it would otherwise make ``exp(-x)``, ``x = s·2^e/t`` a non-zero
rational, algebraic, against the Lindemann–Weierstrass theorem), so its
threshold ``T_k = floor(2^64·G_k)`` is well defined and, for the 64-bit prefix
``w`` of ``F``: ``w < T_k`` implies ``F < G_k``, ``w > T_k`` implies
``F > G_k``, and only ``w = T_k`` (probability 2^-64) leaves the comparison
open; it is then settled by drawing further digits of ``F`` and comparing
them with ever tighter integer bounds of ``G_k`` (:func:`_bounds`), as
:class:`pets.dp.exact_exp.LazyUniform` does for ``exp(-x)``. Every threshold
is computed with integers only: ``exp(-x)`` bounded by exact rational Taylor
bounds (:func:`pets.dp.exact_exp.exp_neg_bounds`), powers multiplied out with
floors (lower bounds) and ceilings (upper bounds), and the precision doubled
until the floor is certain. **No floating point decides anything.**

**The bucket table.** Only the first 16 bits of ``F`` are drawn at first. A
table indexed by them (65,536 buckets) holds the outcome of every bucket that
no threshold falls into (then every ``F`` in the bucket has that outcome);
a bucket holding a threshold is marked (:data:`STRADDLE`), and only its lanes
draw 48 more bits of ``F`` (which are independent of the first 16) and
compare the full 64-bit prefix with the bucket's threshold (the count above
the bucket, plus one if ``w < T``), or by binary search when the bucket holds
several, ties going to the exact path above. With at most 2^8 outcomes per digit level, at
most 2^8 of 65,536 buckets are marked (0.4% of lanes per level).

Randomness is consumed in this order (known-answer tests pin it): the 16-bit
prefixes, chunk by chunk of :data:`CHUNK` lanes and level by level within a
chunk (``D_0`` … ``D_{L-1}``, then ``A``); then, for the lanes that hit a
marked bucket, level by level from ``A`` down, one 64-bit word per such lane
in lane order (its 48 further bits) and the further digits of any tie; then
one sign bit per lane; lanes rejected as minus zero are drawn again
afterwards, the same way.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from pets.dp.exact_exp import LazyUniform, exp_neg_bounds
from pets.dp.randomness import RandomBytes, uint16s, uint64s

PREFIX_BITS = 16
"""Bits of ``F`` drawn for every lane and level: the bucket index."""
_REST_BITS = 64 - PREFIX_BITS
STRADDLE = 0x8000
"""Marks a bucket that holds a threshold in the uint16 bucket table (outcomes are below it)."""
MAX_DIGIT_BITS = 8
"""Outcomes per digit level: at most 2^8, so at most 0.4% of a level's buckets are marked."""
MAGNITUDE_LIMIT = 1 << 62
"""Magnitudes are int64: a scale whose table bound reaches this is not drawn here."""
_GUARD_BITS = 32
CHUNK = 1 << 17
"""Lanes drawn together (1 MB int64 temporaries)."""


# -- exact tail probabilities ---------------------------------------------------------


@dataclass(frozen=True)
class Level:
    """A law on ``{0, 1, …}`` with ``P(D >= k) = G_k``: a geometric of ratio ``exp(-x)``,
    truncated to ``[0, n)`` when ``n`` is given."""

    x: Fraction
    n: int | None = None

    def tail_bounds(self, k: int, bits: int) -> tuple[int, int]:
        """Integers ``lo <= G_k·2^bits <= hi`` with ``hi - lo <= 2`` (any precision)."""
        return _bounds(self, k, bits)


def _bounds(level: Level, k: int, bits: int) -> tuple[int, int]:
    if k <= 0:
        return 1 << bits, 1 << bits
    if level.n is not None and k >= level.n:
        return 0, 0
    extra = _GUARD_BITS
    while True:
        prec = bits + extra
        lo_k, hi_k = exp_neg_bounds(level.x * k, prec)
        if level.n is None:
            lo, hi = lo_k >> extra, -((-hi_k) >> extra)
        else:
            lo_n, hi_n = exp_neg_bounds(level.x * level.n, prec)
            one = 1 << prec
            # G_k = (r^k - r^n)/(1 - r^n): smallest numerator over largest denominator.
            lo = (max(lo_k - hi_n, 0) << bits) // (one - lo_n)
            hi = -((-(hi_k - lo_n) << bits) // (one - hi_n))
        if hi - lo <= 2:
            return lo, hi
        extra *= 2


def thresholds(level: Level) -> list[int]:
    """``T_k = floor(2^64·G_k)`` for ``k = 1 ..``: up to ``n - 1`` for a truncated level,
    up to and including the first ``T_k = 0`` for a geometric (all later ones are 0).

    ``r^k`` is bounded by multiplying bounds of ``r = exp(-x)`` at ``prec`` bits
    (floors for the lower bound, ceilings for the upper one); when a floor is
    not certain at that precision, the precision doubles.
    """
    prec = 128 + _GUARD_BITS
    while True:
        out = _thresholds_at(level, prec)
        if out is not None:
            return out
        prec *= 2


def _thresholds_at(level: Level, prec: int) -> list[int] | None:
    lo1, hi1 = exp_neg_bounds(level.x, prec)
    one = 1 << prec
    lo, hi = [one], [one]

    def power() -> None:
        lo.append((lo[-1] * lo1) >> prec)
        hi.append(-((-hi[-1] * hi1) >> prec))

    out: list[int] = []
    if level.n is None:
        while not out or out[-1]:
            power()
            t_lo, t_hi = lo[-1] >> (prec - 64), hi[-1] >> (prec - 64)
            if t_lo != t_hi:
                return None
            out.append(t_lo)
        return out
    for _ in range(level.n):
        power()
    lo_n, hi_n = lo[-1], hi[-1]
    for k in range(1, level.n):  # G_k = (r^k - r^n)/(1 - r^n), bounded by its extremes
        t_lo = (max(lo[k] - hi_n, 0) << 64) // (one - lo_n)
        t_hi = ((hi[k] - lo_n) << 64) // max(one - hi_n, 1)
        if t_lo != t_hi:
            return None
        out.append(t_lo)
    return out


def power_thresholds(x: Fraction, count: int) -> list[int]:
    """``floor(2^64·exp(-k·x))`` for ``k = 0 .. count - 1`` (``k = 0`` gives ``2^64 - 1``:
    ``F < 1`` always holds, and a word equal to it goes to the exact path, which says so)."""
    prec = 128 + _GUARD_BITS
    while True:
        lo1, hi1 = exp_neg_bounds(x, prec)
        lo, hi = 1 << prec, 1 << prec
        out = [(1 << 64) - 1]
        for _ in range(count - 1):
            lo, hi = (lo * lo1) >> prec, -((-hi * hi1) >> prec)
            t_lo, t_hi = lo >> (prec - 64), hi >> (prec - 64)
            if t_lo != t_hi:
                break
            out.append(t_lo)
        else:
            return out
        prec *= 2


# -- one level's table ------------------------------------------------------------------


class LevelTable:
    """A level's thresholds and 16-bit bucket table (see the module docstring)."""

    def __init__(self, level: Level) -> None:
        self.level = level
        self.thresholds = thresholds(level)
        # Ascending, for binary search: #{k : T_k > w} = size - searchsorted(right).
        self.ascending = np.array(self.thresholds[::-1], dtype=np.uint64)
        self.outcomes = len(self.thresholds)
        if self.outcomes >= STRADDLE:
            raise ValueError("a level table holds fewer than 2^15 outcomes")
        starts = np.arange(1 << PREFIX_BITS, dtype=np.uint64) << np.uint64(_REST_BITS)
        ends = starts + np.uint64((1 << _REST_BITS) - 1)
        first = np.searchsorted(self.ascending, starts, side="left")
        last = np.searchsorted(self.ascending, ends, side="right")
        table = (self.outcomes - last).astype(np.uint16)
        table[first != last] = STRADDLE  # a threshold lies in [start, end]: compare further
        self.table = table
        self.marked = int(np.count_nonzero(first != last))
        # A marked bucket with one threshold T (the usual case): the outcome is the count
        # above the bucket plus (w < T). Compact (about 385 KB a table, cached per
        # scale): counts as int16 (outcomes < 2^15), and the single thresholds in a
        # short array indexed through ``slot`` (slot 0, threshold 0: the bucket holds
        # none or several; for a marked bucket, several).
        self.base = (self.outcomes - last).astype(np.int16)
        one = np.flatnonzero((last - first) == 1)
        self.slot = np.zeros(1 << PREFIX_BITS, dtype=np.uint16)
        self.slot[one] = np.arange(1, one.size + 1, dtype=np.uint16)
        self.single_thresholds = np.zeros(one.size + 1, dtype=np.uint64)
        self.single_thresholds[1:] = self.ascending[first[one]]

    def outcomes_of(self, rng: RandomBytes, prefixes: np.ndarray) -> np.ndarray:
        """Exact outcomes (int64) for lanes whose 16-bit prefixes fell in marked buckets.

        Draws the next 48 bits of each lane's ``F`` (one 64-bit word each, in
        lane order), counts the thresholds above the 64-bit prefix ``w`` by
        binary search, and settles a lane whose ``w`` equals a threshold (for a
        geometric this includes ``w = 0`` and the zero thresholds beyond the
        table) by further bits of ``F`` against exact bounds of ``G_k``.
        """
        rest = uint64s(rng, prefixes.size) >> np.uint64(PREFIX_BITS)
        w = (prefixes.astype(np.uint64) << np.uint64(_REST_BITS)) | rest
        slots = self.slot[prefixes]
        threshold = self.single_thresholds[slots]
        out = self.base[prefixes].astype(np.int64) + (w < threshold)
        tied = w == threshold
        several = np.flatnonzero(slots == 0)  # marked, without a single threshold
        if several.size:  # several thresholds in the bucket: binary search
            ws = w[several]
            right = np.searchsorted(self.ascending, ws, side="right")
            out[several] = self.outcomes - right
            tied[several] = np.searchsorted(self.ascending, ws, side="left") != right
        for i in np.flatnonzero(tied).tolist():  # w equals a threshold
            out[i] = self.outcome_of_word(rng, int(w[i]))
        return out

    def outcome_of_word(self, rng: RandomBytes, w: int) -> int:
        """The exact outcome for the 64-bit prefix ``w`` of ``F`` (further bits on a tie)."""
        above = sum(1 for t in self.thresholds if t > w)  # F < G_k for these k, exactly
        f = LazyUniform(rng, w)
        count = above
        while f.below(functools.partial(self.level.tail_bounds, count + 1)):
            count += 1
            if count >= MAGNITUDE_LIMIT:  # pragma: no cover - probability below 2^-(2^40)
                raise OverflowError("a geometric draw does not fit in 64 bits")
        return count


@functools.lru_cache(maxsize=128)
def level_table(level: Level) -> LevelTable:
    """The (cached) table of a level: computed once per noise scale."""
    return LevelTable(level)


# -- the discrete Laplace ------------------------------------------------------------------


@dataclass(frozen=True)
class LaplacePlan:
    """The levels of ``M`` for the discrete Laplace of scale ``t/s``: digit widths and tables."""

    widths: tuple[int, ...]
    tables: tuple[LevelTable, ...]  # digit levels, then the geometric A on top


@functools.lru_cache(maxsize=32)
def laplace_plan(t: int, s: int) -> LaplacePlan | None:
    """The level plan for scale ``t/s``, or None if its magnitudes may not fit int64.

    ``e_L`` is the smallest exponent with ``2^{e_L}·s >= t`` (so the top ratio
    ``exp(-2^{e_L}·s/t)`` is at most ``exp(-1)``), split into digit levels of
    at most :data:`MAX_DIGIT_BITS` bits, as even as possible.
    """
    total = 0
    while (s << total) < t:
        total += 1
    levels = -(-total // MAX_DIGIT_BITS)
    widths = tuple(total // levels + (1 if j < total % levels else 0) for j in range(levels))
    x = Fraction(s, t)
    tables = []
    shift = 0
    for d in widths:
        tables.append(level_table(Level(x * (1 << shift), 1 << d)))
        shift += d
    top = level_table(Level(x * (1 << shift)))
    if (top.outcomes + 1) << total >= MAGNITUDE_LIMIT:
        return None
    return LaplacePlan(widths, (*tables, top))


def _magnitudes(
    plan: LaplacePlan, rng: RandomBytes, out: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fill ``out`` with draws of ``M`` from the 16-bit prefixes alone; return the lanes
    that hit a marked bucket (their ``out`` is not yet valid) and those lanes' prefixes."""
    levels = len(plan.tables)
    total = sum(plan.widths)
    bad_lanes: list[np.ndarray] = []
    bad_prefixes: list[np.ndarray] = []
    for start in range(0, out.size, CHUNK):
        n = min(CHUNK, out.size - start)
        prefixes = uint16s(rng, n * levels).reshape(levels, n)
        digits = [np.take(table.table, h) for table, h in zip(plan.tables, prefixes, strict=True)]
        marked = digits[-1].copy()
        for digit in digits[:-1]:
            marked |= digit
        # The digits below A in 32 bits while they fit in 31 (cheaper passes; the int32
        # view below must not sign-extend a set bit 31 over A), then A on top.
        low: np.ndarray = np.zeros(n, dtype=np.uint32 if total < 32 else np.uint64)
        for d, digit in zip(plan.widths[::-1], digits[-2::-1], strict=True):
            np.left_shift(low, d, out=low, casting="unsafe")
            np.bitwise_or(low, digit, out=low)
        m = out[start : start + n]
        m[:] = digits[-1]
        m <<= total
        m |= low.view(np.int32 if total < 32 else np.int64)
        bad = np.flatnonzero(marked >= STRADDLE)
        bad_lanes.append(bad + start)
        bad_prefixes.append(prefixes[:, bad])
    return np.concatenate(bad_lanes), np.concatenate(bad_prefixes, axis=1)


def _exact_lanes(plan: LaplacePlan, rng: RandomBytes, prefixes: np.ndarray) -> np.ndarray:
    """``M`` for lanes with a marked bucket: each marked level compared in full, level by
    level from ``A`` down, lanes in order."""
    value = np.zeros(prefixes.shape[1], dtype=np.int64)
    for j in range(len(plan.tables) - 1, -1, -1):
        table, h = plan.tables[j], prefixes[j]
        out = np.take(table.table, h).astype(np.int64)
        fix = np.flatnonzero(out & STRADDLE)
        if fix.size:
            out[fix] = table.outcomes_of(rng, h[fix])
        if j == len(plan.tables) - 1:
            if out.size and int(out.max()) >= MAGNITUDE_LIMIT >> sum(plan.widths):
                raise OverflowError("a discrete Laplace magnitude does not fit in 64 bits")
            value = out
        else:
            value <<= plan.widths[j]
            value += out
    return value


def _sign_factors(rng: RandomBytes, n: int) -> np.ndarray:
    """``n`` fair signs as int8 +1 / -1, eight per random byte (bit 1 is minus)."""
    raw = np.frombuffer(rng((n + 7) // 8), dtype=np.uint8)
    bits = np.unpackbits(raw, count=n).view(np.int8)
    bits *= np.int8(-2)
    bits += np.int8(1)
    return bits


def discrete_laplace(plan: LaplacePlan, rng: RandomBytes, n: int) -> np.ndarray:
    """``n`` i.i.d. discrete Laplace draws (int64) of the plan's scale, exact.

    ``Z = M`` or ``-M`` by a fair sign; a lane with the minus sign and
    ``M = 0`` is rejected and drawn again (CKS20 Algorithm 2, step 6). The
    prefixes are drawn in chunks of :data:`CHUNK` lanes (small temporaries
    stay in the cache and the allocator's free lists: 10^6 lanes at once cost
    about twice as much), the marked lanes then compared in full all together.
    """
    out = np.empty(n, dtype=np.int64)
    if n == 0:
        return out
    bad, prefixes = _magnitudes(plan, rng, out)
    if bad.size:  # about 0.4% of lanes per digit level
        out[bad] = _exact_lanes(plan, rng, prefixes)
    signs = _sign_factors(rng, n)
    rejected = np.flatnonzero(out == 0)
    rejected = rejected[signs[rejected] < 0]
    np.multiply(out, signs, out=out, casting="unsafe")
    if rejected.size:
        out[rejected] = discrete_laplace(plan, rng, int(rejected.size))
    return out
