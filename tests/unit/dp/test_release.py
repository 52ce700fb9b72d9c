"""Noisy decoding with intervals (pets.dp.release), and the differencing attack of issue 11."""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction

import numpy as np
import pytest

from pets.dp import (
    DEFAULT_BUDGET_RHO,
    PrivacyBudgetExceededError,
    PrivacyFilter,
    SeededRandom,
    add_to_ring_share,
    decode_noisy,
    differencing_floor,
    noise_plan,
)
from pets.dp.tails import gaussian_half_width, laplace_half_width
from pets.encoding import to_ring
from pets.errors import InvalidInputError, OverflowDetectedError
from pets.query import Column, Dataset, Schema, compile, evaluate, parse_csv, parse_query

HOSPITALS = Dataset(
    "hospitals",
    (
        Column("age", "int", 0, 110),
        Column("sex", "category", domain=("F", "M")),
        Column("cost", "float", 0, 5000, 10),
    ),
    50,
)
SCHEMA = Schema((HOSPITALS,))
CSV = "age,sex,cost\n70,F,1200.5\n99,M,604.4\n30,F,80\n66,M,2500\n12,F,10.25\n"


def _noisy_total(text: str, rng: SeededRandom, servers: int = 2):  # type: ignore[no-untyped-def]
    plan = compile(parse_query(text), SCHEMA)
    exact = evaluate(plan, parse_csv(CSV, plan.dataset))
    noise = noise_plan(plan)
    total = to_ring(exact)
    for _ in range(servers):
        total = add_to_ring_share(total, noise.sample(rng))
    return plan, noise, exact, total


@pytest.mark.parametrize(
    "text",
    [
        "count(*) from hospitals group by sex dp epsilon 1",
        "sum(cost) from hospitals where age >= 65 dp rho 0.5",
        "mean(cost) from hospitals dp epsilon 1",
        "variance(cost) from hospitals clip [0, 3000] dp rho 2",
        "histogram(age) from hospitals bins [0, 18, 65, 110] dp epsilon 1 unit holder",
        "vector_sum(cost, age) from hospitals dp rho 1",
    ],
)
def test_decode_noisy_gives_exact_plus_noise(text: str) -> None:
    plan, noise, _, total = _noisy_total(text, SeededRandom(text))
    release = decode_noisy(plan, noise, total, 1, 2)
    obj = release.to_json_obj()
    assert obj["dp"]["servers"] == 2 and obj["dp"]["mechanism"] == noise.mechanism.value
    assert len(obj["intervals"]) == len(obj["rows"]) == len(plan.groups)
    signed = total.view(np.int64).reshape(len(plan.groups), plan.width)
    for g, (row, ivs) in enumerate(zip(release.result.rows, release.intervals, strict=True)):
        for iv in ivs.values():
            for lo, hi in iv if isinstance(iv, list) else [iv]:
                assert lo <= hi
        if plan.query.aggregate.value == "histogram":
            assert [row[label] for label in plan.bin_labels] == signed[g].tolist()
        else:  # the released count is the exact count plus the noise, unclamped
            assert row["count"] == signed[g][0]
        if row.get("mean") is not None:
            lo, hi = ivs["mean"]
            assert 0 <= lo <= hi <= 5000


def test_a_vector_dataset_has_interval_arrays_that_become_json_lists() -> None:
    """10^5 elements: lo/hi stay read-only numpy arrays (no 2·10^5 Python floats until
    JSON is asked for), and both JSON forms hold plain lists."""
    length = 100_000
    series = Dataset("series", (), 1, kind="vector", length=length, lo=-5, hi=5, scale=10)
    plan = compile(parse_query("vector_sum() from series dp epsilon 1"), Schema((series,)))
    noise = noise_plan(plan)
    total = add_to_ring_share(np.zeros(length, dtype=np.uint64), noise.sample(SeededRandom("v")))
    release = decode_noisy(plan, noise, total, 1, 1)
    (ivs,) = release.intervals
    assert ivs["vector"]._arrays is None  # not made until read (16 MB per 10^6 elements)
    assert set(ivs["vector"]) == {"lo", "hi"} and len(ivs["vector"]) == 2
    assert "lo" in ivs["vector"] and "mid" not in ivs["vector"]
    assert ivs["vector"]._arrays is None  # neither listing nor membership makes them
    lo, hi = ivs["vector"]["lo"], ivs["vector"]["hi"]
    assert ivs["vector"]["lo"] is lo  # made once, kept
    w = ivs["vector"].half_width / 10  # scale 10
    np.testing.assert_allclose(hi - lo, 2 * w)
    assert isinstance(lo, np.ndarray) and not lo.flags.writeable and lo.shape == (length,)
    values = np.asarray(release.result.rows[0]["vector"])
    assert (lo < values).all() and (values < hi).all()
    result = dataclasses.replace(release.result, dp=release.dp, intervals=tuple(release.intervals))
    for obj in (release.to_json_obj(), result.to_json_obj()):
        vector = json.loads(json.dumps(obj))["intervals"][0]["vector"]
        assert vector["lo"] == lo.tolist() and vector["hi"] == hi.tolist()


def test_intervals_cover_at_least_95_percent() -> None:
    """Coverage over 400 seeded releases (two servers): sound bounds over-cover."""
    for text in ("count(*) from hospitals dp epsilon 1", "sum(cost) from hospitals dp rho 1"):
        hits = 0
        for i in range(400):
            plan, noise, exact, total = _noisy_total(text, SeededRandom(f"cover {i} {text}"))
            release = decode_noisy(plan, noise, total, 1, 2)
            field = "count" if text.startswith("count") else "sum"
            lo, hi = release.intervals[0][field]
            truth = exact[0] if field == "count" else exact[1] / 10
            hits += lo <= truth <= hi
        assert hits >= 0.92 * 400  # expected >= 0.95; P(< 0.92) is below 1e-4


def test_negative_count_is_reported_not_clamped() -> None:
    plan = compile(parse_query("mean(cost) from hospitals dp epsilon 1"), SCHEMA)
    noise = noise_plan(plan)
    total = to_ring(np.array([-3, 150], dtype=np.int64))
    release = decode_noisy(plan, noise, total, 1, 2)
    row = release.result.rows[0]
    assert row["count"] == -3 and row["mean"] is None
    assert any("negative (-3)" in n for n in release.notes)
    assert release.intervals[0]["mean"] == (0.0, 5000.0)


def test_wrapped_or_out_of_range_totals_are_refused() -> None:
    plan = compile(parse_query("count(*) from hospitals dp epsilon 1"), SCHEMA)
    noise = noise_plan(plan)
    with pytest.raises(OverflowDetectedError, match="outside"):
        decode_noisy(plan, noise, to_ring(np.array([10_000], dtype=np.int64)), 1, 2)
    with pytest.raises(InvalidInputError):
        decode_noisy(plan, noise, to_ring(np.array([1, 2], dtype=np.int64)), 1, 2)
    with pytest.raises(InvalidInputError):
        decode_noisy(plan, noise, to_ring(np.array([1], dtype=np.int64)), 0, 2)


def test_tail_bounds() -> None:
    """Laplace K=1 is the exact quantile; the others are sound Chernoff bounds."""
    # P(|Z| >= 3) = 2e^-3/(1+e^-1) = 0.073 > 0.05 >= P(|Z| >= 4) = 0.027: w = 3
    assert laplace_half_width(Fraction(1), 1, 0.05) == 3
    assert gaussian_half_width(Fraction(100), 1, 0.05) == 20  # 2σ; sub-Gaussian alone: 27
    assert gaussian_half_width(Fraction(10**8), 2, 0.05) == 27719  # normal: 1.95996·σ√2 = 27718.1
    w1, w2 = (
        laplace_half_width(Fraction(1000), 1, 0.05),
        laplace_half_width(Fraction(1000), 2, 0.05),
    )
    assert w1 < w2 < 2 * w1
    assert laplace_half_width(Fraction(0), 2, 0.05) == 0 == gaussian_half_width(Fraction(0), 2, 0.1)


# -- the differencing attack of issue 11 ------------------------------------------

ATTACK = (
    "sum(cost) from hospitals where age >= 65 {dp}",
    "sum(cost) from hospitals where age >= 65 and age != 99 {dp}",
)


@pytest.mark.parametrize("dp", ["dp epsilon 0.25", "dp rho 0.01"])
def test_repeated_differencing_is_refused_before_the_floor(dp: str) -> None:
    """Re-run the pair until the filter refuses; the average never narrows below the floor.

    Floor (pets.dp.accountant.differencing_floor): Δ/√(2·budget) with Δ = 5000
    (cost clipped to [0, 5000]) and the default budget ρ = 1/2: 5000 in cost
    units, i.e. a 95% half-width of at least ~9800 around the target's 604.4.
    """
    budget = PrivacyFilter("mallory", "hospitals", DEFAULT_BUDGET_RHO)
    rng = SeededRandom(f"attack {dp}")
    diffs = []
    sum_variance = 0.0
    while True:
        answers = []
        try:
            for template in ATTACK:
                plan, noise, _, total = _noisy_total(template.format(dp=dp), rng, servers=1)
                budget.try_spend(noise.rho)
                answers.append(decode_noisy(plan, noise, total, 1, 1).result.rows[0]["sum"])
                field = noise.fields[1]
                sum_variance = field.stddev(noise.mechanism) ** 2 / field.scale**2
        except PrivacyBudgetExceededError as exc:
            assert exc.remaining_rho < noise.rho
            break
        if len(answers) == 2:
            diffs.append(answers[0] - answers[1])
    pairs = len(diffs)
    assert pairs >= 1 and budget.spent_rho <= DEFAULT_BUDGET_RHO
    std_of_average = (2 * sum_variance / pairs) ** 0.5
    floor = differencing_floor(5000, DEFAULT_BUDGET_RHO)
    assert floor == 5000.0
    assert std_of_average >= floor
    # and the realised average is nowhere near pinning 604.4 to the cent
    assert abs(float(np.mean(diffs)) - 604.4) > 1.0


def test_laplace_variance_is_at_least_b_squared() -> None:
    """The premise of the floor for Laplace: 2p/(1-p)² >= b² for b >= 0.4."""
    import math

    for b in (0.4, 0.5, 1, 2.5, 10, 1e4):
        p = math.exp(-1 / b)
        assert 2 * p / (1 - p) ** 2 >= b * b


@pytest.mark.parametrize("sigma2", [1, 4, 30, 400])
@pytest.mark.parametrize("servers", [1, 2, 3])
def test_gaussian_half_width_is_sound_against_the_exact_pmf(sigma2: int, servers: int) -> None:
    """P(|sum of K draws| > w) computed from the exact pmf (numpy convolution) is <= alpha."""
    reach = int(40 * sigma2**0.5) + 5
    z = np.arange(-reach, reach + 1)
    pmf = np.exp(-(z * z) / (2 * sigma2))
    pmf /= pmf.sum()
    total = pmf
    for _ in range(servers - 1):
        total = np.convolve(total, pmf)
    support = np.arange(total.size) - (total.size // 2)
    for alpha in (0.05, 0.01, 1e-6):
        w = gaussian_half_width(Fraction(sigma2), servers, alpha)
        assert total[np.abs(support) > w].sum() <= alpha


@pytest.mark.parametrize("scale", [Fraction(1, 2), Fraction(3), Fraction(40)])
@pytest.mark.parametrize("servers", [1, 2, 3])
def test_laplace_half_width_is_sound_against_the_exact_pmf(scale: Fraction, servers: int) -> None:
    p = float(np.exp(-1 / float(scale)))
    reach = int(80 * float(scale)) + 10
    z = np.arange(-reach, reach + 1)
    pmf = (1 - p) / (1 + p) * p ** np.abs(z)
    total = pmf
    for _ in range(servers - 1):
        total = np.convolve(total, pmf)
    support = np.arange(total.size) - (total.size // 2)
    for alpha in (0.05, 0.01, 1e-6):
        w = laplace_half_width(scale, servers, alpha)
        assert total[np.abs(support) > w].sum() <= alpha
        if servers <= 2 and w > 0:  # exact: one less would not do
            assert total[np.abs(support) > w - 1].sum() > alpha


def test_dp_and_exact_results_are_built_by_one_function() -> None:
    """Labels, term error and magnitude of a DP result come from the exact decoder's builder."""
    import importlib

    release = importlib.import_module("pets.dp.release")
    decode = importlib.import_module("pets.query.decode")
    assert release.result_for is decode.result_for
    assert not hasattr(release, "_result") and not hasattr(decode, "_result")
