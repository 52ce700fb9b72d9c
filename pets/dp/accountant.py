"""Privacy accounting in zero-concentrated DP (zCDP).

Every release is charged in ρ-zCDP (Bun and Steinke 2016, *Concentrated
Differential Privacy*, arXiv:1605.02065):

* a discrete Gaussian of variance parameter σ² on a statistic of L2
  sensitivity Δ is ``Δ²/(2σ²)``-zCDP (Canonne, Kamath, Steinke 2020,
  arXiv:2004.00010, privacy of the discrete Gaussian);
* an ε-DP release (discrete Laplace of scale Δ/ε) is ``ε²/2``-zCDP
  (Bun–Steinke 2016, Proposition 1.4);
* sequential composition adds ρ (Bun–Steinke 2016, Lemma 1.7).

All of these are exact :class:`~fractions.Fraction` arithmetic: whether a
budget is spent is never decided by a rounding error.

For reporting, ρ-zCDP is converted to (ε, δ)-DP with the tight conversion of
CKS20 §2.3, the one OpenDP's ``make_zCDP_to_approxDP``
uses: for every α > 1, ρ-zCDP implies (ε, δ)-DP with

    ε = αρ + (log(1/δ) + (α-1)·log(1-1/α) - log(α)) / (α-1)

(rewritten: ``αρ + (log(1/δ) - log(α-1) + α·log(1-1/α))/(α-1)``). The optimal α solves
``(α-1)²ρ + log α = log(1/δ)`` (the derivative vanishes there), found by
bisection. Any α gives a valid bound, so a float error in α only costs
tightness; the result is rounded up by a relative 1e-12 to cover the error of
evaluating the formula. The figure is a report, never used for admission.
"""

from __future__ import annotations

import math
from fractions import Fraction

from pets.dp.rational import Rational, exact, positive
from pets.errors import InvalidInputError


def rho_of_pure_dp(epsilon: Rational) -> Fraction:
    """ρ-zCDP implied by ε-DP: ``ε²/2`` (exact)."""
    eps = positive(epsilon, "epsilon")
    return eps * eps / 2


def rho_of_gaussian(sensitivity_l2_squared: Rational, sigma2: Rational) -> Fraction:
    """ρ of a discrete Gaussian σ² on a statistic with squared L2 sensitivity Δ² (exact)."""
    d2 = exact(sensitivity_l2_squared, "squared L2 sensitivity")
    if d2 < 0:
        raise InvalidInputError("squared L2 sensitivity must be non-negative")
    return d2 / (2 * positive(sigma2, "sigma^2"))


def epsilon_of_laplace(sensitivity_l1: Rational, scale: Rational) -> Fraction:
    """ε of a discrete Laplace of ``scale`` on a statistic of L1 sensitivity Δ: ``Δ/scale``."""
    d1 = exact(sensitivity_l1, "L1 sensitivity")
    if d1 < 0:
        raise InvalidInputError("L1 sensitivity must be non-negative")
    return d1 / positive(scale, "Laplace scale")


def compose(*rhos: Rational) -> Fraction:
    """Sequential composition in zCDP: the sum of the ρ's (exact)."""
    total = Fraction(0)
    for r in rhos:
        value = exact(r, "rho")
        if value < 0:
            raise InvalidInputError("rho must be non-negative")
        total += value
    return total


def epsilon_of_zcdp(rho: Rational, delta: float) -> float:
    """The ε of the (ε, δ)-DP guarantee implied by ρ-zCDP (CKS20 §2.3; as OpenDP)."""
    r = exact(rho, "rho")
    if r < 0:
        raise InvalidInputError("rho must be non-negative")
    if not 0 < delta < 1 or not math.isfinite(delta):
        raise InvalidInputError(f"delta must lie in (0, 1), got {delta!r}")
    if r == 0:
        return 0.0
    rho_f = float(r)
    log_inv_delta = -math.log(delta)
    lo, hi = 1.0, 1.0 + math.sqrt(log_inv_delta / rho_f) + 1.0
    for _ in range(200):  # (α-1)²ρ + log α is increasing: bisect its crossing
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        if (mid - 1) ** 2 * rho_f + math.log(mid) < log_inv_delta:
            lo = mid
        else:
            hi = mid
    best = math.inf
    for alpha in (lo, hi):
        if alpha > 1:
            eps = alpha * rho_f + (
                log_inv_delta - math.log(alpha - 1) + alpha * math.log1p(-1 / alpha)
            ) / (alpha - 1)
            best = min(best, eps)
    return max(0.0, best) * (1 + 1e-12)


def describe_rho(rho: Fraction, delta: float | None = None) -> str:
    """``"ρ=1/32 (ε≈0.688 at δ=0.001)"``, for messages and reports."""
    text = f"ρ={rho} (≈{float(rho):.6g})"
    if delta is not None and rho > 0:
        text += f", ε≈{epsilon_of_zcdp(rho, delta):.4g} at δ={delta:g}"
    return text


def differencing_floor(sensitivity: float, budget_rho: Rational) -> float:
    """Smallest standard deviation to which averaging releases within a budget pins one unit.

    Every release of this package puts noise of variance at least
    ``Δ²/(2ρ_i)`` on each slot a unit touches, ``ρ_i`` being what the release
    is charged: Gaussian ``σ² = kΔ²/(2ρ) ≥ Δ²/(2ρ)``; Laplace of scale
    ``b = kΔ/ε`` has variance ``2p/(1-p)² ≥ b² ≥ Δ²/ε² = Δ²/(2ρ)`` (``p = e^{-1/b}``,
    true for ``b ≥ 0.4``, i.e. any ε ≤ 2.5Δ; the default budget admits ε ≤ 1
    per release). Any unbiased linear combination of independent releases —
    averaging differences of repeated query pairs included, even by an analyst
    who knows every other row exactly — then has variance at least
    ``Δ²/(2·Σρ_i) ≥ Δ²/(2·budget)``: the returned ``Δ/√(2·budget)``, in the
    units of ``sensitivity``. (The Cramér–Rao bound of the continuous
    analogues gives the same floor for any unbiased estimator.) It holds
    under the honest-server assumption: only one server's noise is counted.
    """
    rho = positive(budget_rho, "budget rho")
    if not sensitivity >= 0:
        raise InvalidInputError("sensitivity must be non-negative")
    return sensitivity / math.sqrt(2 * float(rho))
