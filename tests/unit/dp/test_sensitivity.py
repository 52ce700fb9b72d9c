"""Sensitivity and per-slot noise of compiled plans (pets.dp.sensitivity), derived by hand.

Dataset: cost in [0, 5000] at scale 10 (fixed point [0, 50000]), age in
[0, 110], max_rows 1000; a vector dataset of length 3 in [-5, 5] at scale 10.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from pets.dp import Mechanism, SeededRandom, Unit, noise_plan
from pets.dp.fast import laplace_scale_for
from pets.dp.sensitivity import gaussian_sigma2
from pets.errors import QueryError
from pets.query import Column, Dataset, compile, parse_query
from pets.query.model import DpRequest
from pets.query.schema import Schema

HOSPITALS = Dataset(
    "hospitals",
    (
        Column("age", "int", 0, 110),
        Column("sex", "category", domain=("F", "M")),
        Column("cost", "float", 0, 5000, 10),
    ),
    1000,
)
SERIES = Dataset("series", (), 1, kind="vector", length=3, lo=-5, hi=5, scale=10)
SCHEMA = Schema((HOSPITALS, SERIES))


def _noise(text: str):  # type: ignore[no-untyped-def]
    return noise_plan(compile(parse_query(text), SCHEMA))


# (query, mechanism, touched, multiplier, [(Δ_f, param_f)]): b for Laplace, σ² for Gaussian
CASES = [
    ("count(*) from hospitals group by sex dp epsilon 1", "L", 1, 1, [(1, 1)]),
    ("count(*) from hospitals group by sex dp epsilon 1 unit holder", "L", 1, 1000, [(1000, 1000)]),
    ("sum(cost) from hospitals dp epsilon 0.5", "L", 2, 1, [(1, 4), (50000, 200000)]),
    ("mean(cost) from hospitals dp rho 0.5", "G", 2, 1, [(1, 2), (50000, 5 * 10**9)]),
    (
        "variance(cost) from hospitals clip [0, 100] dp rho 1",
        "G",
        3,
        1,
        [(1, Fraction(3, 2)), (1000, Fraction(3 * 10**6, 2)), (10**6, Fraction(3 * 10**12, 2))],
    ),
    (
        "histogram(age) from hospitals bins [0, 18, 65, 110] dp rho 1",
        "G",
        1,
        1,
        [(1, Fraction(1, 2))] * 3,
    ),
    (
        "histogram(sex) from hospitals dp epsilon 2 unit holder",
        "L",
        1,
        1000,
        [(1000, 500)] * 2,
    ),
    (
        "vector_sum(cost, age) from hospitals dp rho 2",
        "G",
        3,
        1,
        [(1, Fraction(3, 4)), (50000, Fraction(3 * 50000**2, 4)), (110, Fraction(3 * 110**2, 4))],
    ),
    ("vector_sum(*) from series dp rho 1", "G", 3, 1, [(50, 3750)]),
    ("vector_sum(*) from series dp rho 1 unit holder", "G", 3, 1, [(50, 3750)]),
    ("sum(cost) from hospitals clip [0, 0] dp epsilon 1", "L", 1, 1, [(1, 1), (0, 0)]),
]


@pytest.mark.parametrize(
    ("text", "mech", "touched", "mult", "fields"), CASES, ids=[c[0] for c in CASES]
)
def test_sensitivity_by_hand(text: str, mech: str, touched: int, mult: int, fields: list) -> None:
    n = _noise(text)
    assert n.mechanism == (Mechanism.LAPLACE if mech == "L" else Mechanism.GAUSSIAN)
    assert (n.touched, n.multiplier) == (touched, mult)
    # σ² from 2^20 on is rounded up to a value the fast sampler represents (below: exact).
    want = [Fraction(p) if mech == "L" else gaussian_sigma2(Fraction(p)) for _, p in fields]
    assert [(f.sensitivity, f.param) for f in n.fields] == list(
        zip([d for d, _ in fields], want, strict=True)
    )


@pytest.mark.parametrize("sigma2", [Fraction(1, 3), Fraction(10**6), Fraction(2**20 - 1)])
def test_small_sigma2_is_used_exactly(sigma2: Fraction) -> None:
    assert gaussian_sigma2(sigma2) == sigma2


@pytest.mark.parametrize(
    "sigma2", [Fraction(2**20), Fraction(5 * 10**9), Fraction(3 * 10**12, 2), Fraction(10**18, 7)]
)
def test_large_sigma2_is_rounded_up_a_little_to_a_representable_value(sigma2: Fraction) -> None:
    used = gaussian_sigma2(sigma2)
    assert sigma2 <= used < sigma2 + math.isqrt(math.ceil(sigma2)) + 2
    assert laplace_scale_for(used) is not None
    assert gaussian_sigma2(used) == used  # already representable: unchanged


def test_charged_rho_is_the_requested_one_and_bounds_the_true_rho() -> None:
    n = _noise("mean(cost) from hospitals dp rho 0.5")
    assert n.rho == Fraction(1, 2)
    for f in n.fields:  # ρ = k·Δ²/(2σ²) per field, with the σ² actually used
        assert n.touched * Fraction(f.sensitivity**2) / (2 * f.param) <= n.rho


def test_charged_rho_and_unit() -> None:
    assert _noise("count(*) from hospitals dp epsilon 0.5").rho == Fraction(1, 8)
    n = _noise("count(*) from hospitals dp rho 0.05 unit holder")
    assert n.rho == Fraction(1, 20) and n.unit == Unit.HOLDER and n.epsilon is None
    d = n.to_dict()
    assert d["mechanism"] == "discrete_gaussian" and d["unit"] == "holder" and d["rho"] == "1/20"


def test_request_overrides_and_missing_request() -> None:
    plan = compile(parse_query("count(*) from hospitals"), SCHEMA)
    with pytest.raises(QueryError, match="no differential privacy"):
        noise_plan(plan)
    assert noise_plan(plan, DpRequest(epsilon=1.0)).fields[0].param == 1


def test_sample_layout_follows_the_fields() -> None:
    """Group-major layout: field f of group g is slot g*width + f; Δ=0 slots get no noise."""
    n = _noise("sum(cost) from hospitals clip [0, 0] dp epsilon 1")
    z = n.sample(SeededRandom("layout"))
    assert z.shape == (2,) and z[1] == 0
    n = _noise("variance(cost) from hospitals group by sex dp rho 1")
    params = n.slot_params()
    assert len(params) == n.length == 6 and params[0] == params[3] and params[2] == params[5]
    assert n.field_of_slot(4).label == "sum(cost)"
    draws = np.stack([n.sample(SeededRandom(f"l{i}")) for i in range(300)])
    spread = draws.std(axis=0)
    assert spread[0] < 10 < spread[1] < 10**6 < spread[2]  # count, sum, sum_sq scales


def test_tail_bound_grows_with_servers_and_confidence() -> None:
    n = _noise("sum(cost) from hospitals dp rho 0.5")
    w1, w2 = n.tail_bound(1), n.tail_bound(2)
    assert 0 < w1 < w2 and n.tail_bound(1, log2_failure=10) < w1
    sigma = 50000 * 2**0.5  # the sum field dominates: σ² = 2·50000²
    assert 9 * sigma < w1 < 10 * sigma  # sqrt(2·ln(2^65)) ≈ 9.5
