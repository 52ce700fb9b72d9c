"""zCDP accountant (pets.dp.accountant) pinned against OpenDP's figures."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pets.dp.accountant import (
    compose,
    describe_rho,
    epsilon_of_laplace,
    epsilon_of_zcdp,
    rho_of_gaussian,
    rho_of_pure_dp,
)
from pets.errors import InvalidInputError


def test_issue_figure_gaussian_scale_4() -> None:
    """A discrete Gaussian of scale 4, sensitivity 1: ρ = 1/32, ε ≈ 0.688 at δ = 1e-3."""
    rho = rho_of_gaussian(1, 16)
    assert rho == Fraction(1, 32)
    assert epsilon_of_zcdp(rho, 1e-3) == pytest.approx(0.6880024554878085, rel=1e-9)


@pytest.mark.parametrize(
    ("rho", "delta"),
    [
        (Fraction(1, 32), 1e-3),
        (Fraction(1, 2), 1e-5),
        (Fraction(1), 1e-6),
        (Fraction(1, 100), 1e-9),
        (Fraction(2), 1e-3),
        (Fraction(1, 10**4), 1e-6),
        (Fraction(50), 1e-10),
    ],
)
def test_epsilon_matches_opendp(rho: Fraction, delta: float) -> None:
    dp = pytest.importorskip("opendp.prelude")
    dp.enable_features("contrib")
    space = dp.atom_domain(T=float, nan=False), dp.absolute_distance(T=float)
    sigma = 1 / math.sqrt(2 * float(rho))
    m = dp.m.make_gaussian(*space, scale=sigma)
    their_rho = m.map(1.0)
    theirs = dp.c.make_zCDP_to_approxDP(m).map(1.0).epsilon(delta)
    ours = epsilon_of_zcdp(their_rho, delta)
    assert ours == pytest.approx(theirs, rel=1e-9)
    assert ours >= theirs * (1 - 1e-12)  # never less private than OpenDP says


def test_pure_dp_to_zcdp_matches_opendp() -> None:
    dp = pytest.importorskip("opendp.prelude")
    dp.enable_features("contrib")
    space = dp.atom_domain(T=int), dp.absolute_distance(T=int)
    m = dp.m.make_laplace(*space, scale=2.0)
    assert m.map(1) == float(epsilon_of_laplace(1, 2)) == 0.5
    assert dp.c.make_pureDP_to_zCDP(m).map(1) == float(rho_of_pure_dp(Fraction(1, 2)))


def test_exact_arithmetic() -> None:
    assert rho_of_pure_dp("0.1") == Fraction(1, 200)
    assert rho_of_pure_dp(0.1) == Fraction(1, 200)  # a float is read as the decimal it prints
    assert compose("0.1", Fraction(1, 3), 1) == Fraction(43, 30)
    assert compose() == 0
    assert epsilon_of_zcdp(0, 1e-6) == 0.0
    assert "ε≈0.688" in describe_rho(Fraction(1, 32), 1e-3)


@given(st.fractions(min_value=Fraction(1, 10**6), max_value=100), st.floats(1e-12, 0.5))
def test_epsilon_is_a_valid_bound_at_any_alpha(rho: Fraction, delta: float) -> None:
    """The reported ε is the bound at the best α: no other α on a grid gives less."""
    eps = epsilon_of_zcdp(rho, delta)
    r = float(rho)
    for alpha in (1.001, 1.5, 2, 5, 20, 100, 1e4):
        other = alpha * r + (
            math.log(1 / delta) - math.log(alpha - 1) + alpha * math.log1p(-1 / alpha)
        ) / (alpha - 1)
        assert eps <= max(other, 0) * (1 + 1e-9) + 1e-12
    assert eps >= 0


@pytest.mark.parametrize("bad", [(-1, 1e-6), (1, 0.0), (1, 1.0), (1, float("nan"))])
def test_bad_inputs(bad: tuple[float, float]) -> None:
    with pytest.raises(InvalidInputError):
        epsilon_of_zcdp(*bad)


def test_bad_costs() -> None:
    for call in (
        lambda: rho_of_pure_dp(0),
        lambda: rho_of_gaussian(-1, 1),
        lambda: rho_of_gaussian(1, 0),
        lambda: compose(-1),
        lambda: epsilon_of_laplace(-1, 1),
        lambda: rho_of_pure_dp("abc"),
    ):
        with pytest.raises(InvalidInputError):
            call()
