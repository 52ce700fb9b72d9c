"""A server's DP policy (pets.dp.policy): require DP, per-query caps, budget of new filters."""

from __future__ import annotations

from fractions import Fraction

import pytest

from pets.dp import DEFAULT_BUDGET_RHO, DpPolicy
from pets.errors import ConfigError, PermissionDeniedError
from pets.query import Column, Dataset, compile, parse_query

DATA = Dataset("d", (Column("x", "float", 0, 10, 1),), 10)


def _plan(text: str):  # type: ignore[no-untyped-def]
    return compile(parse_query(text), DATA)


def test_default_policy_allows_both() -> None:
    policy = DpPolicy()
    assert policy.admit(_plan("count(*) from d")) is None
    noise = policy.admit(_plan("count(*) from d dp epsilon 1"))
    assert noise is not None and noise.rho == Fraction(1, 2)
    f = policy.new_filter("alice", "d")
    assert f.budget_rho == DEFAULT_BUDGET_RHO and f.spent_rho == 0


def test_required_dp_and_caps() -> None:
    policy = DpPolicy.from_dict(
        {"require": True, "max_epsilon": 1, "max_rho": "0.1", "budget_rho": 2, "delta": 1e-9}
    )
    with pytest.raises(PermissionDeniedError, match="only differentially private"):
        policy.admit(_plan("sum(x) from d"))
    with pytest.raises(PermissionDeniedError, match="epsilon 2 exceeds"):
        policy.admit(_plan("sum(x) from d dp epsilon 2"))
    with pytest.raises(PermissionDeniedError, match="rho=1/2"):
        policy.admit(_plan("sum(x) from d dp epsilon 1"))  # ε = 1 costs ρ = 1/2 > 0.1
    assert policy.admit(_plan("sum(x) from d dp rho 0.1")) is not None
    assert policy.new_filter("a", "d").budget_rho == 2


@pytest.mark.parametrize(
    "table",
    [
        {"require": "yes"},
        {"max_rho": 0},
        {"max_epsilon": "x"},
        {"budget_rho": -1},
        {"delta": 1.5},
        {"delta": True},
        {"unknown": 1},
    ],
)
def test_bad_configuration(table: dict) -> None:
    with pytest.raises(ConfigError):
        DpPolicy.from_dict(table)
