"""Exact inversion by table (pets.dp.inversion): thresholds, buckets, ties, odd scales, laws.

Thresholds are checked against 100-digit decimal arithmetic; bucket tables
against a direct count of thresholds; ties (a 64-bit prefix equal to a
threshold, probability 2^-64) are forced through crafted random streams and
settled by further bits; every lane is forced through the full comparison to
check that path's law; odd scales (prime numerators, s != 1, tiny and huge
ratios) are chi-squared against the exact pmf.
"""

from __future__ import annotations

import math
from decimal import Decimal, getcontext
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pets.dp import fast, inversion
from pets.dp.inversion import Level, LevelTable
from pets.dp.randomness import SeededRandom
from tests.unit.dp.byte_source import scripted_stream as _stream

N = 100_000
REJECT_BELOW = 1e-6
getcontext().prec = 100


def _exact_tail(level: Level, k: int) -> Decimal:
    x = Decimal(level.x.numerator) / Decimal(level.x.denominator)
    if level.n is None:
        return (-x * k).exp()
    return ((-x * k).exp() - (-x * level.n).exp()) / (1 - (-x * level.n).exp())


LEVELS = [
    Level(Fraction(1, 7), 256),
    Level(Fraction(1, 10**9), 256),
    Level(Fraction(2**40, 10**9), 128),  # a top digit level: r^n near exp(-1)
    Level(Fraction(1, 2**61) * 256, 256),  # a tiny ratio: 1 - r^n near 2^-53
    Level(Fraction(3)),
    Level(Fraction(1, 2)),
    Level(Fraction(100)),  # every threshold is 0
]


@pytest.mark.parametrize("level", LEVELS, ids=str)
def test_thresholds_are_floors_of_the_exact_tail(level: Level) -> None:
    table = inversion.thresholds(level)
    if level.n is not None:
        assert len(table) == level.n - 1
    else:
        assert table[-1] == 0 and all(t > 0 for t in table[:-1])
    for k, t in enumerate(table, start=1):
        assert t == int(_exact_tail(level, k) * 2**64), k  # floor (the value is positive)
    assert table == sorted(table, reverse=True)


@pytest.mark.parametrize("level", LEVELS, ids=str)
def test_bucket_table_agrees_with_a_direct_count(level: Level) -> None:
    tab = LevelTable(level)
    starts = [h << 48 for h in range(1 << 16)]
    marked = 0
    for h, start in enumerate(starts):
        end = start + (1 << 48) - 1
        inside = [t for t in tab.thresholds if start <= t <= end]
        if inside:
            assert tab.table[h] == inversion.STRADDLE
            marked += 1
        else:
            count = sum(1 for t in tab.thresholds if t > end)
            assert tab.table[h] == count == sum(1 for t in tab.thresholds if t > start)
    assert marked == tab.marked
    if level.n is not None:
        assert marked <= level.n - 1  # at most one marked bucket per threshold


@pytest.mark.parametrize("level", LEVELS, ids=str)
def test_marked_buckets_count_thresholds_above_the_full_word(level: Level) -> None:
    """One threshold in the bucket (base + (w < T)) or several (binary search): both give
    #{k : T_k > w} for the full 64-bit prefix w; the words avoid the thresholds (no tie)."""
    tab = LevelTable(level)
    marked = np.flatnonzero(tab.table == inversion.STRADDLE)[:300].astype(np.uint16)
    rest = np.random.default_rng(7).integers(0, 1 << 48, size=marked.size, dtype=np.uint64)
    words = (marked.astype(np.uint64) << np.uint64(48)) | rest
    assert not set(words.tolist()) & set(tab.thresholds)
    stream = _stream((rest << np.uint64(16)).astype("<u8").tobytes())
    got = tab.outcomes_of(stream, marked)
    want = [sum(1 for t in tab.thresholds if t > w) for w in words.tolist()]
    assert got.tolist() == want
    if sum(1 for t in tab.thresholds if t < 1 << 48) > 1:
        # e.g. a geometric's bucket 0 holds its small thresholds: marked, not single
        assert tab.table[0] == inversion.STRADDLE and tab.slot[0] == 0


def test_tail_bounds_enclose_the_exact_tail() -> None:
    for level in LEVELS:
        for k in (1, 2, 5, 300):
            for bits in (64, 200):
                lo, hi = level.tail_bounds(k, bits)
                exact = (
                    _exact_tail(level, k) * 2**bits
                    if level.n is None or k < level.n
                    else Decimal(0)
                )
                assert lo <= exact <= hi and hi - lo <= 2


def test_a_tie_is_settled_by_further_bits() -> None:
    """w = T_k: F = (T_k + R)/2^64 is below G_k for R = 0, above it for R just under 1."""
    level = Level(Fraction(1, 7), 256)
    tab = LevelTable(level)
    k = 100
    t = tab.thresholds[k - 1]
    frac = _exact_tail(level, k) * 2**64 - t  # in (0, 1)
    assert 0 < frac < 1 - Decimal(2) ** -60
    prefix = np.array([t >> 48], dtype=np.uint16)
    word = ((t & ((1 << 48) - 1)) << 16).to_bytes(8, "little")  # the next 48 bits of F
    below = tab.outcomes_of(_stream(word, bytes(8)), prefix)
    above = tab.outcomes_of(_stream(word, b"\xff" * 8), prefix)
    assert below.tolist() == [k] and above.tolist() == [k - 1]
    # Not a tie: one more or one less in the last bit decides without further bits.
    for delta, want in ((1, k - 1), (-1, k)):
        w = t + delta
        rest = ((w & ((1 << 48) - 1)) << 16).to_bytes(8, "little")
        got = tab.outcomes_of(_stream(rest), np.array([w >> 48], dtype=np.uint16))
        assert got.tolist() == [want]


def test_a_geometric_prefix_of_zero_reads_the_tail_beyond_the_table() -> None:
    """w = 0 ties with every zero threshold: F's further bits decide how far it goes."""
    level = Level(Fraction(1, 2))  # G_k = exp(-k/2); T_k = 0 from k = 89 on
    tab = LevelTable(level)
    assert tab.thresholds[-1] == 0 and len(tab.thresholds) == 89
    # F = 2^-128·(1 + 0.000…): the 64 further bits are 1, the 64 after them 0. The outcome
    # is the largest k with exp(-k/2) > F: floor(2·128·ln 2) = 177 (exp(-88.5)·2^128 ≈ 1.25
    # needs the third word to be compared; exp(-89)·2^128 ≈ 0.76 does not).
    got = tab.outcome_of_word(_stream((1).to_bytes(8, "big"), bytes(8)), 0)
    assert got == math.floor(2 * 128 * math.log(2))


def test_a_tie_through_the_whole_sampler() -> None:
    """A one-lane draw fed by hand: prefixes, the marked level in full, then the sign."""
    plan = inversion.laplace_plan(7, 3)  # q = exp(-3/7): one 2-bit digit level, then A
    assert plan is not None and plan.widths == (2,)
    digit, top = plan.tables
    t = digit.thresholds[0]  # a tie with T_1 of the digit level
    a_prefix = 0xFFFF  # F >= 0.99998: A = 0
    assert int(top.table[a_prefix]) == 0
    stream = _stream(
        (t >> 48).to_bytes(2, "little"),  # D_0's prefix: the marked bucket holding T_1
        a_prefix.to_bytes(2, "little"),  # A's prefix
        ((t & ((1 << 48) - 1)) << 16).to_bytes(8, "little"),  # D_0's next 48 bits: w = T_1
        bytes(8),  # R = 0: F < G_1, so D_0 >= 1; far above G_2
        b"\x00",  # sign bit 0: plus
    )
    assert inversion.discrete_laplace(plan, stream, 1).tolist() == [1]


@pytest.mark.parametrize(
    ("t", "s"),
    [(1, 1), (1, 3), (13, 11), (1_000_003, 7), (2**31 - 1, 1), (10**9, 1), (2**40 + 15, 3)],
)
def test_laplace_matches_the_pmf_at_odd_scales(t: int, s: int, stats: dict) -> None:
    plan = inversion.laplace_plan(t, s)
    assert plan is not None
    x = inversion.discrete_laplace(plan, SeededRandom(f"inversion {t}/{s}"), N)
    assert x.dtype == np.int64 and x.shape == (N,)
    b = t / s
    if b < 10**4:
        assert stats["chi_square_p"](x, stats["laplace_pmf"](b)) > REJECT_BELOW
    else:  # too wide for one bin per integer: the exact tail law at quantile edges
        q = math.exp(-1 / b)
        edges = [1] + [int(b * f) for f in (0.1, 0.25, 0.5, 1, 2, 4)]
        tail = [2 * q**z / (1 + q) for z in edges] + [0.0]
        expected = np.array([1 - tail[0]] + [tail[i] - tail[i + 1] for i in range(len(edges))])
        observed = np.bincount(np.searchsorted(edges, np.abs(x), side="right"), minlength=8)
        keep = expected * N > 5
        stat = float((((observed - expected * N) ** 2)[keep] / (expected * N)[keep]).sum())
        assert stat < 45  # df = 7: p ≈ 1e-7 at 45


def test_every_lane_through_the_full_comparison(stats: dict) -> None:
    """Every bucket marked: each lane draws its 48 further bits; the law is unchanged."""
    plan = inversion.laplace_plan(25, 1)
    assert plan is not None
    forced = []
    for tab in plan.tables:
        copy = LevelTable(tab.level)
        copy.table = np.full_like(tab.table, inversion.STRADDLE)
        forced.append(copy)
    all_marked = inversion.LaplacePlan(plan.widths, tuple(forced))
    x = inversion.discrete_laplace(all_marked, SeededRandom("all marked"), 40_000)
    assert stats["chi_square_p"](x, stats["laplace_pmf"](25.0)) > REJECT_BELOW


def test_plans_and_limits() -> None:
    plan = inversion.laplace_plan(10**9, 1)
    assert plan is not None and sum(plan.widths) == 30  # 2^30·1 >= 10^9 > 2^29
    assert max(plan.widths) <= inversion.MAX_DIGIT_BITS
    assert inversion.laplace_plan(1, 10**6) is not None  # b = 10^-6: A alone, almost always 0
    assert inversion.laplace_plan(2**60, 1) is None  # magnitudes could pass 2^62
    # fast.discrete_laplace then falls back to CKS20 Algorithm 2 (same law).
    assert fast.discrete_laplace(2**60, 5, SeededRandom("huge")).dtype == np.int64


@settings(max_examples=40, deadline=None)
@given(
    num=st.integers(min_value=1, max_value=10**12),
    den=st.integers(min_value=1, max_value=10**6),
    bits=st.integers(min_value=1, max_value=8),
)
def test_thresholds_are_certain_floors(num: int, den: int, bits: int) -> None:
    """For any ratio: T_k <= G_k·2^64 < T_k + 1 by exact bounds at 128 bits, non-increasing."""
    level = Level(Fraction(num, den) / 2**20, 1 << bits)
    table = inversion.thresholds(level)
    assert table == sorted(table, reverse=True) and all(0 <= t < 2**64 for t in table)
    for k in {1, len(table) // 2 + 1, len(table)}:
        lo, hi = level.tail_bounds(k, 128)
        assert table[k - 1] << 64 <= hi and lo < (table[k - 1] + 1) << 64


@settings(max_examples=30, deadline=None)
@given(t=st.integers(min_value=1, max_value=2**48), s=st.integers(min_value=1, max_value=2**20))
def test_plans_reach_a_top_ratio_of_at_most_exp_minus_one(t: int, s: int) -> None:
    plan = inversion.laplace_plan(t, s)
    assert plan is not None
    total = sum(plan.widths)
    assert (s << total) >= t and (total == 0 or (s << (total - 1)) < t)
    assert all(1 <= d <= inversion.MAX_DIGIT_BITS for d in plan.widths)
    assert all(tab.marked <= 2 ** plan.widths[j] for j, tab in enumerate(plan.tables[:-1]))


@pytest.mark.parametrize("t", [3 << 29, 3 << 30, (1 << 32) - 5, 3 << 31])
def test_mean_magnitude_across_the_32_bit_digit_boundary(t: int) -> None:
    """Scales whose digits below the top geometric take 31, 32 and 33 bits: E|Z| =
    2q/(1 - q^2), q = exp(-1/t). With 32 bits the low digits used to be read as a
    signed int32, wiping the top digit whenever bit 31 was set (mean ~0.64 t)."""
    plan = inversion.laplace_plan(t, 1)
    assert plan is not None
    n = 40_000
    z = inversion.discrete_laplace(plan, SeededRandom(f"mean {t}"), n)
    assert (z >= -(1 << 62)).all()
    q = math.exp(-1 / t)
    expected = 2 * q / (1 - q * q)
    mean = float(np.abs(z.astype(np.float64)).mean())
    # |Z| is about exponential with mean t: standard error t / sqrt(n); allow 6.
    assert abs(mean - expected) < 6 * t / math.sqrt(n)


def test_the_32_bit_boundary_is_covered() -> None:
    plan = inversion.laplace_plan(3 << 30, 1)
    assert plan is not None and sum(plan.widths) == 32
