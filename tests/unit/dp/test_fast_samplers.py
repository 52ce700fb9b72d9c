"""The fast exact samplers (pets.dp.fast), pinned to the exact pmfs, the reference
samplers (pets.dp.samplers), OpenDP, and known answers.

Chi-square tests draw a fixed number of samples from seeded streams
(:class:`SeededRandom`), so they are reproducible; each rejects at p < 1e-6.
Exact checks: the inversion thresholds against 60-digit decimal arithmetic,
and ties (a uniform word equal to a threshold, probability 2^-64) forced with
crafted random streams and settled by the further bits.
"""

from __future__ import annotations

import math
from decimal import Decimal, getcontext
from fractions import Fraction

import numpy as np
import pytest

from pets.dp import fast, samplers
from pets.dp.exact_exp import LazyUniform, exp_neg_bounds, geometric_exp_tail, thresholds
from pets.dp.randomness import KeyedStream, SeededRandom
from pets.dp.sensitivity import gaussian_sigma2
from pets.errors import InvalidInputError
from tests.unit.dp.byte_source import scripted_stream as _stream

N = 100_000
REJECT_BELOW = 1e-6


# -- against the exact pmf -----------------------------------------------------------


@pytest.mark.parametrize("scale", [Fraction(1, 3), Fraction(1), Fraction(7, 3), Fraction(25)])
def test_fast_laplace_matches_pmf(scale: Fraction, stats: dict) -> None:
    x = fast.discrete_laplace(scale, N, SeededRandom(f"fast laplace {scale}"))
    assert x.dtype == np.int64 and x.shape == (N,)
    assert stats["chi_square_p"](x, stats["laplace_pmf"](float(scale))) > REJECT_BELOW


@pytest.mark.parametrize("sigma2", [2, 6, 12, 110, 10**6])
def test_fast_gaussian_matches_pmf(sigma2: int, stats: dict) -> None:
    assert fast.laplace_scale_for(Fraction(sigma2)) is not None  # the fast path is taken
    x = fast.discrete_gaussian(sigma2, N, SeededRandom(f"fast gaussian {sigma2}"))
    assert x.dtype == np.int64 and x.shape == (N,)
    assert stats["chi_square_p"](x, stats["gaussian_pmf"](float(sigma2))) > REJECT_BELOW


def test_lanes_far_out_are_decided_with_python_integers(
    stats: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """||Y| - c| >= 2^32 takes the object-arithmetic path (practically never at real
    scales); lowered to 4 here, so most lanes take it, and the law is unchanged."""
    monkeypatch.setattr(fast, "_SMALL_GAMMA_DIFF", 4)
    x = fast.discrete_gaussian(110, 20_000, SeededRandom("far lanes"))
    assert stats["chi_square_p"](x, stats["gaussian_pmf"](110.0)) > REJECT_BELOW


def test_the_tests_have_power(stats: dict) -> None:
    """5% off in scale is rejected (so passing means something)."""
    x = fast.discrete_gaussian(110, N, SeededRandom("power"))
    assert stats["chi_square_p"](x, stats["gaussian_pmf"](110 * 1.1)) < REJECT_BELOW
    y = fast.discrete_laplace(25, N, SeededRandom("power"))
    assert stats["chi_square_p"](y, stats["laplace_pmf"](25 * 1.05)) < REJECT_BELOW
    ref = samplers.discrete_laplace(25 * Fraction(105, 100), N, SeededRandom("power ref"))
    assert stats["two_sample_p"](y, ref) < REJECT_BELOW


# -- against the reference samplers (same law) ----------------------------------------


@pytest.mark.parametrize("scale", [Fraction(7, 3), Fraction(5 * 10**6), Fraction(10**9)])
def test_fast_laplace_matches_the_reference(scale: Fraction, stats: dict) -> None:
    ours = fast.discrete_laplace(scale, 60_000, SeededRandom(f"pin fast {scale}"))
    ref = samplers.discrete_laplace(scale, 60_000, SeededRandom(f"pin ref {scale}"))
    assert stats["two_sample_p"](ours, ref) > REJECT_BELOW


@pytest.mark.parametrize("sigma2", [Fraction(110), gaussian_sigma2(Fraction(25 * 10**8))])
def test_fast_gaussian_matches_the_reference(sigma2: Fraction, stats: dict) -> None:
    ours = fast.discrete_gaussian(sigma2, 40_000, SeededRandom(f"pin fast {sigma2}"))
    ref = samplers.discrete_gaussian(sigma2, 40_000, SeededRandom(f"pin ref {sigma2}"))
    assert stats["two_sample_p"](ours, ref) > REJECT_BELOW
    assert abs(ours.var() / float(sigma2) - 1) < 0.05


def test_large_laplace_scale_has_the_exact_tail_law(stats: dict) -> None:
    """b = 10^9 (the benchmark's vectors): P(|Z| >= z) = 2p^z/(1+p), p = exp(-1/b), z >= 1."""
    b = 10**9
    x = np.abs(fast.discrete_laplace(b, N, SeededRandom("tail")))
    edges = [1, b // 4, b // 2, b, 2 * b, 4 * b]
    p = math.exp(-1 / b)
    tail = [2 * p**z / (1 + p) for z in edges] + [0.0]
    expected = np.array([1 - tail[0]] + [tail[i] - tail[i + 1] for i in range(len(edges))]) * N
    observed = np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1)
    keep = expected > 5
    stat = float((((observed - expected) ** 2)[keep] / expected[keep]).sum())
    assert stat < 40  # df = 6: p ≈ 2e-7 at 40


# -- against OpenDP ------------------------------------------------------------------


def _opendp(kind: str, scale: float, n: int) -> np.ndarray:
    dp = pytest.importorskip("opendp.prelude")
    dp.enable_features("contrib")
    metric = dp.l1_distance(T=int) if kind == "laplace" else dp.l2_distance(T=int)
    space = dp.vector_domain(dp.atom_domain(T=int)), metric
    make = dp.m.make_laplace if kind == "laplace" else dp.m.make_gaussian
    return np.array(make(*space, scale=scale)([0] * n), dtype=np.int64)


@pytest.mark.parametrize(("kind", "scale"), [("laplace", 1000.0), ("gaussian", 1000.0)])
def test_fast_samplers_match_opendp(kind: str, scale: float, stats: dict) -> None:
    theirs = _opendp(kind, scale, 40_000)
    rng = SeededRandom(f"opendp {kind}")
    ours = (
        fast.discrete_laplace(Fraction(scale), 40_000, rng)
        if kind == "laplace"
        else fast.discrete_gaussian(Fraction(scale) ** 2, 40_000, rng)
    )
    if kind == "gaussian":
        assert fast.laplace_scale_for(Fraction(scale) ** 2) is not None  # 10^6 = 1000·1000
    assert stats["two_sample_p"](ours, theirs) > REJECT_BELOW


# -- exact pieces ----------------------------------------------------------------------


def test_thresholds_are_floor_of_exp_minus_n_times_2_64() -> None:
    getcontext().prec = 80
    table = thresholds()
    assert int(table[0]) == (1 << 64) - 1
    for n in range(1, table.size):
        exact = Decimal(-n).exp() * (1 << 64)
        assert int(table[n]) == int(exact), n  # floor (exact is positive)
    assert int(table[44]) == 1 and int(table[45]) == 0


@pytest.mark.parametrize("x", [Fraction(0), Fraction(1, 3), Fraction(1), Fraction(7, 2), 44])
def test_exp_bounds_enclose_the_value(x: Fraction | int) -> None:
    getcontext().prec = 120
    for bits in (10, 64, 200):
        lo, hi = exp_neg_bounds(Fraction(x), bits)
        value = Decimal(-x.numerator) / x.denominator if isinstance(x, Fraction) else Decimal(-x)
        scaled = value.exp() * (Decimal(2) ** bits)
        assert lo <= scaled <= hi and hi - lo <= 2


def test_a_tie_with_a_threshold_is_settled_by_further_bits() -> None:
    """w = T_1 exactly: F = (T_1 + R)/2^64 < exp(-1) iff R < frac(exp(-1)·2^64) ≈ 0.76."""
    t1 = int(thresholds()[1])
    below = LazyUniform(_stream(bytes(8)), t1)  # R = 0: below exp(-1)
    assert below.below_exp_neg(Fraction(1)) is True
    above = LazyUniform(_stream(b"\xff" * 8), t1)  # R just under 1: above
    assert above.below_exp_neg(Fraction(1)) is False
    # The geometric draw: V >= 1 iff F < exp(-1); F is far above exp(-2) either way.
    assert geometric_exp_tail(_stream(bytes(8)), t1) == 1
    assert geometric_exp_tail(_stream(b"\xff" * 8), t1) == 0


def test_vectorised_geometric_resolves_ties_and_zero() -> None:
    """32-bit prefixes: F < exp(-v) iff w < floor(exp(-v)·2^32), except on a tie."""
    t1, t3 = (int(thresholds()[v]) >> 32 for v in (1, 3))
    words = np.array([t1, t3, 0, (1 << 32) - 1, t1 + 1], dtype=np.uint32).tobytes()
    # then further bits for each tie, in order: t1 (R = 0: V = 1), t3 (R just under 1:
    # V = 2), 0 (F just under 2^-32: below exp(-22) = 1.19·2^-32, above exp(-23) = 0.44·2^-32).
    rng = _stream(words, bytes(8), b"\xff" * 8, b"\xff" * 64)
    assert fast._geometric_exp(rng, 5).tolist() == [1, 2, 22, 0, 0]


def test_bernoulli_exp_of_integers_frequencies() -> None:
    n = 200_000
    rng = SeededRandom("bern int")
    for k in (0, 1, 2, 5):
        hits = fast._below_exp_neg_int(rng, np.full(n, k, dtype=np.int64)).mean()
        p = math.exp(-k)
        assert abs(hits - p) <= 6 * math.sqrt(p * (1 - p) / n) + 1e-12
    assert not fast._below_exp_neg_int(rng, np.full(1000, 100, dtype=np.int64)).any()


BIG_DEN = (1 << 63) + 7  # den·K >= 2^64 from K = 2: Bernoulli(γ) and Bernoulli(1/K) apart


@pytest.mark.parametrize(("num", "den"), [(1, 3), (2, 3), (999, 1000), (BIG_DEN // 3, BIG_DEN)])
def test_algorithm_1_frequencies(num: int, den: int) -> None:
    n = 200_000
    got = fast._accept_exp_fraction(
        SeededRandom(f"alg1 {num}/{den}"), np.full(n, num, dtype=np.uint64), den
    ).mean()
    p = math.exp(-num / den)
    assert abs(got - p) < 6 * math.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("bound", [3, 10, (1 << 32) - 1, (1 << 32) + 1, (1 << 64) - 1])
def test_uniform_integers_reject_the_biased_tail(bound: int) -> None:
    width = 4 if bound <= 1 << 32 else 8
    span = 1 << (8 * width)
    limit = span - span % bound
    rng = _stream((limit).to_bytes(width, "little"), (7).to_bytes(width, "little"))
    assert int(fast._below_const(rng, bound, 1)[0]) == 7 % bound


# -- known answers, representability, API --------------------------------------------


def test_known_answers_with_fixed_keys() -> None:
    """Pins how the fast samplers consume a keyed stream (change only with a reason).

    Regenerated when the discrete Laplace moved to exact inversion by table
    (pets.dp.inversion) and the Gaussian's fractional acceptance to a table of
    exp(-j/2^16) (candidates in batches sized for what is missing, at most 2^17):
    they read the stream differently; the law tests above are what pin correctness.
    """
    lap = fast.discrete_laplace(Fraction(7, 3), 8, SeededRandom("kat laplace"))
    assert lap.tolist() == [3, -1, 5, -6, -3, 0, 4, 6]
    big = fast.discrete_laplace(10**9, 8, SeededRandom("kat laplace big"))
    assert big.tolist() == [
        -497367575, -2077964145, 338649458, -872911735,
        598256868, -617459575, -1234685931, 2329370692,
    ]  # fmt: skip
    gauss = fast.discrete_gaussian(110, 8, SeededRandom("kat gaussian"))
    assert gauss.tolist() == [6, 3, 13, -9, -16, 8, 6, -2]
    s2 = fast.representable_sigma2(Fraction(5 * 10**9))
    big_g = fast.discrete_gaussian(s2, 8, SeededRandom("kat gaussian big"))
    assert big_g.tolist() == [137463, -135831, -46225, -71896, -43045, -5430, -69876, 89594]


@pytest.mark.parametrize("sigma2", [Fraction(1), Fraction(7, 3), Fraction(2**20 + 3), 10**15 + 1])
def test_representable_sigma2_rounds_up_by_less_than_sigma_plus_2(sigma2: Fraction | int) -> None:
    s = Fraction(sigma2)
    used = fast.representable_sigma2(s)
    t = fast.laplace_scale_for(used)
    assert t is not None and used.denominator == 1 and used.numerator % t == 0
    assert s <= used < s + math.isqrt(math.ceil(s)) + 2
    assert fast.representable_sigma2(used) == used


def test_unrepresentable_sigma2_falls_back_to_the_reference() -> None:
    """σ² = 7/3 is not an integer: the reference sampler draws it (same seeded stream)."""
    a = fast.discrete_gaussian(Fraction(7, 3), 20, SeededRandom("fallback"))
    b = samplers.discrete_gaussian(Fraction(7, 3), 20, SeededRandom("fallback"))
    assert a.tolist() == b.tolist()


def test_fresh_keys_and_bad_input() -> None:
    assert fast.discrete_laplace(10**6, 50).tolist() != fast.discrete_laplace(10**6, 50).tolist()
    assert KeyedStream()(16) != KeyedStream()(16)
    assert fast.discrete_gaussian(110, 0).shape == (0,)
    assert fast.discrete_laplace(10**9, 0).shape == fast.discrete_laplace(1, 0).shape == (0,)
    for bad in (0, -1, "x", float("nan"), True):
        with pytest.raises(InvalidInputError):
            fast.discrete_laplace(bad, 3)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError):
            fast.discrete_gaussian(bad, 3)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        fast.discrete_laplace(1, -1)


# -- Bernoulli(exp(-num/den)) by table (the Gaussian's fractional acceptance) --------


def test_fraction_thresholds_are_exact_floors() -> None:
    getcontext().prec = 80
    table = fast._fraction_thresholds()
    assert table.size == 1 << 16 and int(table[0]) == (1 << 64) - 1
    for j in (1, 2, 777, 32768, 65535):
        exact = (Decimal(-j) / (1 << 16)).exp() * (1 << 64)
        assert int(table[j]) == int(exact), j


@pytest.mark.parametrize(
    ("num", "den"), [(1, 3), (2, 3), (999, 1000), ((1 << 47) - 5, 1 << 47), (12345, (1 << 48) - 59)]
)
def test_fractional_acceptance_by_table_frequencies(num: int, den: int) -> None:
    n = 200_000
    got = fast._accept_exp_fraction_by_table(
        SeededRandom(f"table {num}/{den}"), np.full(n, num, dtype=np.uint64), den
    ).mean()
    p = math.exp(-num / den)
    assert abs(got - p) < 6 * math.sqrt(p * (1 - p) / n)


def test_fractional_acceptance_ties_and_unsure_lanes_are_exact() -> None:
    """num/den = j/2^16 + ε: a word equal to floor(2^64·exp(-j/2^16)) and a 32-bit word in
    the top 2^-16 (where exp(-ε) is not certainly above F) both go to further bits."""
    den = 3 << 16
    num = 5  # num·2^16/den = 5/3: j = 1, ε = (2/3)/2^16
    t1 = int(fast._fraction_thresholds()[1])
    sure_u = (0).to_bytes(4, "little")
    # A tie with T_1, then R = 0 (F < exp(-2^-16)): accepted; R just under 1: refused.
    tie_below = _stream(t1.to_bytes(8, "little"), bytes(8), sure_u)
    tie_above = _stream(t1.to_bytes(8, "little"), b"\xff" * 8, sure_u)
    one = np.array([num], dtype=np.uint64)
    assert fast._accept_exp_fraction_by_table(tie_below, one, den).tolist() == [True]
    assert fast._accept_exp_fraction_by_table(tie_above, one, den).tolist() == [False]
    # An unsure ε lane: u = 2^32 - 1, F = (u + R)/2^32 against exp(-ε) ≈ 1 - 1.02e-5:
    # F >= 1 - 2^-32 > exp(-ε): refused; u = 2^32 - 2^16 (F ≈ 1 - 1.53e-5): accepted.
    pass_first = (0).to_bytes(8, "little")  # w = 0 < T_1
    top = _stream(pass_first, ((1 << 32) - 1).to_bytes(4, "little"), bytes(8))
    low = _stream(pass_first, ((1 << 32) - (1 << 16)).to_bytes(4, "little"), bytes(8))
    assert fast._accept_exp_fraction_by_table(top, one, den).tolist() == [False]
    assert fast._accept_exp_fraction_by_table(low, one, den).tolist() == [True]
