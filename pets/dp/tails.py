"""Sound tail bounds for the summed noise of several servers.

The analyst's answer carries the noise of ``K`` servers, each an independent
draw of the same law. :func:`half_width` gives an integer ``w`` with
``P(|Z_1 + ... + Z_K| > w) <= alpha``; the interval ``noisy ± w`` then covers
the exact value with probability at least ``1 - alpha``. The bounds are
upper bounds on the tail (never approximations that could undercover):

* discrete Laplace, ``K = 1``: exact, ``P(|Z| >= k) = 2p^k/(1+p)`` with
  ``p = exp(-1/b)`` (the smallest such ``w = k - 1``);
* discrete Laplace, ``K = 2`` (two servers): exact, from the closed-form pmf
  of the sum (:func:`_two_laplace_half_width`);
* discrete Laplace, ``K > 2``: Chernoff, ``P(S >= w+1) <= M(λ)^K e^{-λ(w+1)}``
  with the exact moment generating function
  ``M(λ) = (1-p)² / ((1-p e^λ)(1-p e^{-λ}))`` for ``0 < λ < 1/b``, minimised
  over λ numerically (any λ is valid, so the search only affects tightness);
* discrete Gaussian: N_Z(0, σ²) is σ²-subgaussian (shown in CKS20), so the
  sum is ``Kσ²``-subgaussian and ``P(|S| >= t) <= 2 exp(-t²/(2Kσ²))`` (2.72σ
  at 95% for K = 1, about 40% wider than the normal quantile 1.96σ); for
  ``K <= 2`` and σ >= 1 a sharper bound from the pmf itself
  (:func:`_gaussian_tail_bound`) is used when it is smaller, within O(1/σ) of
  the continuous normal tail.

These use floating point, which is fine: they describe the noise, they never
draw it. The result is rounded up.
"""

from __future__ import annotations

import math
from fractions import Fraction

from pets.errors import InvalidInputError

_GOLDEN = (math.sqrt(5) - 1) / 2


def _check(servers: int, alpha: float) -> None:
    if isinstance(servers, bool) or not isinstance(servers, int) or servers < 1:
        raise InvalidInputError(f"servers must be a positive integer, got {servers!r}")
    if not 0 < alpha < 1:
        raise InvalidInputError(f"alpha must lie in (0, 1), got {alpha!r}")


def laplace_half_width(scale: Fraction, servers: int, alpha: float) -> int:
    """Integer ``w`` with ``P(|sum of K discrete Laplace(scale)| > w) <= alpha``."""
    _check(servers, alpha)
    if scale == 0:
        return 0
    b = float(scale)
    log_p = -1 / b
    if servers == 1:
        # smallest k >= 1 with 2 p^k / (1+p) <= alpha; then w = k - 1
        p = math.exp(log_p)
        k = max(1, math.ceil(math.log(alpha * (1 + p) / 2) / log_p))
        while k > 1 and 2 * p ** (k - 1) / (1 + p) <= alpha:
            k -= 1
        while 2 * p**k / (1 + p) > alpha:
            k += 1
        return k - 1
    if servers == 2:
        return _two_laplace_half_width(math.exp(log_p), alpha)
    log_two_over_alpha = math.log(2 / alpha)

    def bound(u: float) -> float:  # (K log M(λ) + log(2/α)) / λ with λ = u/b
        log_m = (
            2 * math.log(-math.expm1(log_p))
            - math.log(-math.expm1(-(1 - u) / b))
            - math.log(-math.expm1(-(1 + u) / b))
        )
        return (servers * log_m + log_two_over_alpha) / (u / b)

    lo, hi = 1e-9, 1 - 1e-9
    for _ in range(200):  # golden-section search of a unimodal function
        a = hi - _GOLDEN * (hi - lo)
        c = lo + _GOLDEN * (hi - lo)
        if bound(a) < bound(c):
            hi = c
        else:
            lo = a
    t = bound((lo + hi) / 2)  # w + 1 >= t suffices
    return max(0, math.ceil(t * (1 + 1e-9)) - 1)


def _two_laplace_half_width(p: float, alpha: float) -> int:
    """Exact for the sum S of two discrete Laplace(p): smallest w with P(|S| > w) <= alpha.

    ``P(S = s) = c² p^|s| (|s| + A)`` with ``c = (1-p)/(1+p)``, ``A = (1+p²)/(1-p²)``
    (sum the two geometric tails of the convolution), hence for ``w >= 1``
    ``P(S >= w) = c² p^w (w(1-p) + p + A(1-p)) / (1-p)²``.
    """
    c2 = ((1 - p) / (1 + p)) ** 2
    big_a = (1 + p * p) / (1 - p * p)

    def two_sided(w: int) -> float:  # P(|S| >= w), w >= 1
        return 2 * c2 * p**w * (w * (1 - p) + p + big_a * (1 - p)) / (1 - p) ** 2

    lo, hi = 1, 2
    while two_sided(hi) * (1 + 1e-9) > alpha:
        lo, hi = hi, hi * 2
    while lo < hi:  # smallest k with P(|S| >= k) <= alpha (decreasing in k)
        mid = (lo + hi) // 2
        if two_sided(mid) * (1 + 1e-9) <= alpha:
            hi = mid
        else:
            lo = mid + 1
    return lo - 1


def _gaussian_tail_bound(sigma2: float, servers: int, w: int) -> float:
    """An upper bound on ``P(|S| >= w)`` for ``S`` the sum of 1 or 2 N_Z(0, σ²), ``w >= 1``.

    With ``φ(x) = exp(-x²/2σ²)`` and ``N = Σ_z φ(z) >= σ√(2π) - 1`` (a sum of a
    unimodal function is at least its integral minus its maximum):

    * one draw: ``Σ_{z>=w} φ(z) <= φ(w) + σ√(π/2)·erfc(w/(σ√2))``;
    * two draws: ``P(S = s) = exp(-s²/4σ²) · Σ_z exp(-(z - s/2)²/σ²) / N²``
      (complete the square), the inner sum is at most ``1 + σ√π`` and
      ``Σ_{s>=w} exp(-s²/4σ²) <= exp(-w²/4σ²) + σ√π·erfc(w/2σ)``.

    Both tend to the continuous normal tail as σ grows (relative error O(1/σ)).
    """
    sigma = math.sqrt(sigma2)
    norm = sigma * math.sqrt(2 * math.pi) - 1
    if servers == 1:
        tail = math.exp(-(w * w) / (2 * sigma2)) + sigma * math.sqrt(math.pi / 2) * math.erfc(
            w / (sigma * math.sqrt(2))
        )
        return 2 * tail / norm
    tail = math.exp(-(w * w) / (4 * sigma2)) + sigma * math.sqrt(math.pi) * math.erfc(
        w / (2 * sigma)
    )
    return 2 * (1 + sigma * math.sqrt(math.pi)) * tail / (norm * norm)


def gaussian_half_width(sigma2: Fraction, servers: int, alpha: float) -> int:
    """Integer ``w`` with ``P(|sum of K discrete Gaussians N_Z(0, σ²)| > w) <= alpha``.

    The smaller of the sub-Gaussian bound and, for one or two servers with
    σ >= 1, the near-exact bound of :func:`_gaussian_tail_bound`.
    """
    _check(servers, alpha)
    if sigma2 == 0:
        return 0
    s2 = float(sigma2)
    t = math.sqrt(2 * servers * s2 * math.log(2 / alpha))
    best = max(0, math.ceil(t * (1 + 1e-9)) - 1)
    if servers <= 2 and s2 >= 1:
        lo, hi = 1, best + 1  # P(|S| >= k) <= alpha for k = hi by the sub-Gaussian bound
        while lo < hi:
            mid = (lo + hi) // 2
            if _gaussian_tail_bound(s2, servers, mid) * (1 + 1e-9) <= alpha:
                hi = mid
            else:
                lo = mid + 1
        best = min(best, lo - 1)
    return best


def half_width(mechanism: str, param: Fraction, servers: int, alpha: float) -> int:
    """:func:`laplace_half_width` or :func:`gaussian_half_width` by mechanism name."""
    if mechanism == "discrete_laplace":
        return laplace_half_width(param, servers, alpha)
    if mechanism == "discrete_gaussian":
        return gaussian_half_width(param, servers, alpha)
    raise InvalidInputError(f"unknown mechanism {mechanism!r}")
