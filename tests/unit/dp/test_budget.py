"""The privacy filter (pets.dp.budget): refusals change nothing, state persists exactly."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pets.dp import DEFAULT_BUDGET_RHO, PrivacyBudgetExceededError, PrivacyFilter
from pets.errors import InvalidInputError, PermissionDeniedError


def _filter(budget: str = "1/2") -> PrivacyFilter:
    return PrivacyFilter("alice", "hospitals", budget_rho=Fraction(budget))


def test_spend_until_refused() -> None:
    f = _filter()
    f.try_spend("0.2")
    f.try_spend(Fraction(1, 5))
    assert f.spent_rho == Fraction(2, 5) and f.releases == 2
    assert f.remaining_rho == Fraction(1, 10)
    before = f.to_json()
    with pytest.raises(PrivacyBudgetExceededError) as info:
        f.try_spend("0.2")
    assert f.to_json() == before  # a refusal spends nothing
    err = info.value
    assert isinstance(err, PermissionDeniedError)
    assert err.remaining_rho == Fraction(1, 10) and err.requested_rho == Fraction(1, 5)
    assert "ρ=1/10" in str(err) and "nothing was spent" in str(err)
    f.try_spend("0.1")  # exactly the rest is allowed
    assert f.remaining_rho == 0


def test_after_spending_is_pure() -> None:
    f = _filter()
    g = f.after_spending("0.25")
    assert f.spent_rho == 0 and g.spent_rho == Fraction(1, 4)
    assert f.can_spend("0.5") and not f.can_spend("0.51")


def test_json_round_trip_is_exact_and_strict() -> None:
    f = _filter("1/3")
    f.try_spend(Fraction(1, 7))
    g = PrivacyFilter.from_json(f.to_json())
    assert g == f and g.spent_rho == Fraction(1, 7)
    for bad in ["[]", "{", '{"analyst": "a"}', f.to_json().replace('"1/7"', "0.14")]:
        with pytest.raises(InvalidInputError):
            PrivacyFilter.from_json(bad)


def test_grant_and_summary() -> None:
    f = _filter("0")
    assert not f.can_spend("0.01")
    f.grant(DEFAULT_BUDGET_RHO)
    f.try_spend("0.01")
    s = f.summary()
    assert s["remaining_rho"] == "49/100" and s["budget_epsilon"] > s["remaining_epsilon"] > 0


@pytest.mark.parametrize("cost", [0, -1, "x", None, True])
def test_bad_costs_are_rejected_without_spending(cost: object) -> None:
    f = _filter()
    with pytest.raises(InvalidInputError):
        f.try_spend(cost)  # type: ignore[arg-type]
    assert f.spent_rho == 0 and f.releases == 0


def test_bad_construction() -> None:
    with pytest.raises(InvalidInputError):
        PrivacyFilter("", "d", Fraction(1))
    with pytest.raises(InvalidInputError):
        PrivacyFilter("a", "d", Fraction(-1))
    with pytest.raises(InvalidInputError):
        PrivacyFilter("a", "d", Fraction(1), delta=1.0)


@given(st.lists(st.fractions(min_value=Fraction(1, 1000), max_value=Fraction(1, 5)), max_size=40))
def test_never_overspends(costs: list[Fraction]) -> None:
    f = _filter()
    admitted = Fraction(0)
    for c in costs:
        try:
            f.try_spend(c)
            admitted += c
        except PrivacyBudgetExceededError:
            pass
        assert f.spent_rho == admitted <= f.budget_rho
