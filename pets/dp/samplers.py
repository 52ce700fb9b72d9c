"""Exact discrete Laplace and discrete Gaussian samplers, vectorised with numpy: the reference.

The servers draw their noise with :mod:`pets.dp.fast`, which samples the same
laws with the same algorithms rearranged for long vectors and is pinned
against this module in the tests; this module stays the readable reference
(and samples what the fast path cannot represent).

The algorithms are those of Canonne, Kamath and Steinke, *The Discrete
Gaussian for Differential Privacy* (NeurIPS 2020, arXiv:2004.00010):

* Algorithm 1, ``Bernoulli(exp(-γ))`` for a rational γ ≥ 0, from
  ``Bernoulli(γ/k)`` trials (γ ≤ 1) and ``floor(γ)`` trials of
  ``Bernoulli(exp(-1))``;
* Algorithm 2, the discrete Laplace of scale ``t/s`` (pmf ∝ ``exp(-|z|·s/t)``);
* Algorithm 3, the discrete Gaussian of variance parameter σ² (pmf ∝
  ``exp(-z²/2σ²)``), by rejection from a discrete Laplace of scale
  ``floor(σ)+1``.

Every decision is an exact comparison of integers drawn from uniformly random
bytes — no floating point anywhere (Mironov 2012, *On significance of the
least significant bits for differential privacy*, shows what floating-point
noise leaks). Two techniques make it fast without giving up exactness:

* **Vectorisation.** Each algorithm runs on a whole batch of candidates at
  once; a rejected candidate is dropped and the accepted ones (i.i.d. from the
  target law, by the rejection argument of each algorithm) are kept in order.
  Loops run until the last candidate of a batch has decided, which takes a
  handful of numpy passes.
* **Lazy comparison for Bernoulli(r/D).** A trial with a rational
  probability ``r/D`` (``0 ≤ r < D``, integers of any size) compares a uniform
  64-bit word ``u`` with the exact prefix ``P = floor(r·2^64/D)``:
  ``u < P`` is a success and ``u > P`` a failure, both exactly; ``u = P``
  (probability 2^-64) is settled by a fresh exact trial of the remainder
  ``(r·2^64 mod D)/D``. ``Bernoulli(γ/k)`` is ``Bernoulli(γ) ∧
  Bernoulli(1/k)`` from independent draws.

Uniform integers below a bound use rejection sampling (no modulo bias).
Randomness comes from a :data:`~pets.dp.randomness.RandomBytes` callable:
:func:`~pets.dp.randomness.system_random` (the OS CSPRNG, stretched by
AES-256-CTR under a fresh OS key for large draws) unless a test injects a
seeded stream.

Choice: these samplers, not OpenDP. OpenDP 0.16 (PyPI ``opendp``, ≈265 MB
installed) samples the same laws exactly, from a CSPRNG (OpenSSL
``RAND_bytes`` with its ``use-openssl`` feature, else ``rand``'s ChaCha-based
``thread_rng``), and ``make_gaussian``/``make_laplace`` on integer vectors
would serve. But its randomness cannot be injected (no reproducible
statistical tests), its scale is a float, it is a heavy runtime dependency for
one function, and it is slower here: for a 10^4-slot vector at σ = 5·10^4,
about 220 ms against 25-70 ms for :func:`discrete_gaussian` (discrete Laplace,
b = 5·10^6: 7-25 ms), measured on the project's 2-core machine under load
(``pets.devtools.bench_dp``). These samplers are pinned against OpenDP in the
tests (same pmf, same accountant figures); OpenDP stays a development
dependency only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from math import isqrt

import numpy as np

from pets.dp.randomness import RandomBytes, python_below, system_random, uint64s
from pets.dp.rational import Rational, positive
from pets.errors import InvalidInputError

_TWO64 = 1 << 64
# Noise parameters beyond this are refused: the noise would not fit the ring.
MAX_SCALE_NUMERATOR = 1 << 62
INT64_SAFE = 1 << 62


# -- uniform integers ------------------------------------------------------------


def _below(rng: RandomBytes, bound: int, n: int) -> np.ndarray:
    """``n`` uniform integers in ``[0, bound)``, ``1 <= bound <= 2^64`` (uint64)."""
    if bound == 1:
        return np.zeros(n, dtype=np.uint64)
    if bound == _TWO64:
        return uint64s(rng, n)
    rem = _TWO64 % bound
    limit = np.uint64(_TWO64 - rem) if rem else None
    out = np.empty(n, dtype=np.uint64)
    filled = 0
    while filled < n:
        u = uint64s(rng, n - filled)
        if limit is not None:
            u = u[u < limit]
        out[filled : filled + u.size] = u
        filled += u.size
    return out % np.uint64(bound)


def _below_each(rng: RandomBytes, bounds: np.ndarray) -> np.ndarray:
    """One uniform integer in ``[0, bounds[i])`` per element (``bounds`` uint64, all >= 1)."""
    # 2^64 mod b, computed in uint64 as (2^64 - b) mod b.
    rem = (np.zeros_like(bounds) - bounds) % bounds
    out = np.empty(bounds.size, dtype=np.uint64)
    todo = np.arange(bounds.size)
    while todo.size:
        u = uint64s(rng, todo.size)
        r = rem[todo]
        ok = (r == 0) | (u < np.zeros_like(r) - r)
        chosen = todo[ok]
        out[chosen] = u[ok] % bounds[chosen]
        todo = todo[~ok]
    return out


# -- Bernoulli trials with rational probabilities ---------------------------------


@dataclass(frozen=True)
class _Ratios:
    """Per-element rationals ``r/D`` in ``[0, 1)`` as a 64-bit prefix and remainder.

    ``prefix = floor(r·2^64/D)`` (uint64) and ``rem = r·2^64 mod D``; ``den``
    is ``D`` (one int for all elements, or an object array per element).
    """

    prefix: np.ndarray
    rem: np.ndarray
    den: int | np.ndarray

    def take(self, idx: np.ndarray) -> _Ratios:
        den = self.den if isinstance(self.den, int) else self.den[idx]
        return _Ratios(self.prefix[idx], self.rem[idx], den)

    def den_at(self, i: int) -> int:
        return self.den if isinstance(self.den, int) else int(self.den[i])


def _ratios_small(num: np.ndarray, den: int) -> _Ratios:
    """``num[i]/den`` for uint64 ``0 <= num < den < 2^32``: long division in base 2^32."""
    n = num.astype(np.uint64)
    d = np.uint64(den)
    shift = np.uint64(32)
    hi, r1 = np.divmod(n << shift, d)
    lo, rem = np.divmod(r1 << shift, d)
    return _Ratios((hi << shift) | lo, rem, den)


def _ratios_big(num: np.ndarray, den: int) -> _Ratios:
    """``num[i]/den`` for Python ints ``0 <= num < den`` of any size (object arithmetic)."""
    scaled = num.astype(object) * _TWO64
    prefix, rem = scaled // den, scaled % den
    return _Ratios(prefix.astype(np.uint64), rem, den)


def _ratios(num: np.ndarray, den: int) -> _Ratios:
    if den < (1 << 32) and num.dtype != object:
        return _ratios_small(num, den)
    return _ratios_big(num, den)


def _bernoulli(rng: RandomBytes, ratios: _Ratios) -> np.ndarray:
    """One exact ``Bernoulli(r/D)`` trial per element (lazy 64-bit comparison)."""
    u = uint64s(rng, ratios.prefix.size)
    out = u < ratios.prefix
    for i in np.flatnonzero(u == ratios.prefix):
        # The first 64 bits tie: compare the rest, i.e. a fresh trial of the remainder.
        out[i] = python_below(rng, ratios.den_at(int(i))) < int(ratios.rem[i])
    return out


def _bernoulli_inverse(rng: RandomBytes, k: np.ndarray) -> np.ndarray:
    """One exact ``Bernoulli(1/k[i])`` trial per element (``k = 1`` needs no randomness)."""
    out = k == 1
    rest = np.flatnonzero(~out)
    if rest.size:
        out[rest] = _below_each(rng, k[rest]) == 0
    return out


def _bernoulli_exp_fraction(rng: RandomBytes, x: _Ratios | None, n: int) -> np.ndarray:
    """CKS20 Algorithm 1 for γ ∈ [0, 1]: ``Bernoulli(exp(-x[i]))``; ``x=None`` means γ = 1."""
    k = np.ones(n, dtype=np.uint64)
    active = np.arange(n)
    while active.size:
        go = _bernoulli_inverse(rng, k[active])
        if x is not None:
            go &= _bernoulli(rng, x.take(active))
        active = active[go]
        k[active] += np.uint64(1)
    return (k & np.uint64(1)) == 1


def bernoulli_exp_minus_one(n: int, rng: RandomBytes) -> np.ndarray:
    """``n`` exact ``Bernoulli(exp(-1))`` trials."""
    return _bernoulli_exp_fraction(rng, None, n)


def _bernoulli_exp(rng: RandomBytes, whole: np.ndarray, frac: _Ratios) -> np.ndarray:
    """CKS20 Algorithm 1: ``Bernoulli(exp(-(whole[i] + frac[i])))``, ``whole`` >= 0 integers."""
    out = _bernoulli_exp_fraction(rng, frac, whole.size)
    left = whole.copy()
    idx = np.flatnonzero(out & (left > 0))
    while idx.size:
        ok = bernoulli_exp_minus_one(idx.size, rng)
        out[idx[~ok]] = False
        idx = idx[ok]
        left[idx] -= 1
        idx = idx[left[idx] > 0]
    return out


def _geometric(rng: RandomBytes, n: int) -> np.ndarray:
    """Number of successes before the first failure of ``Bernoulli(exp(-1))`` trials."""
    v = np.zeros(n, dtype=np.int64)
    active = np.arange(n)
    while active.size:
        active = active[bernoulli_exp_minus_one(active.size, rng)]
        v[active] += 1
    return v


# -- discrete Laplace (CKS20 Algorithm 2) ------------------------------------------


def _laplace_batch(rng: RandomBytes, t: int, s: int, n: int) -> np.ndarray:
    """Run Algorithm 2 on ``n`` candidates; returns the accepted ones (int64 or object)."""
    u = _below(rng, t, n)
    u = u[_bernoulli_exp_fraction(rng, _ratios(u, t), n)]
    v = _geometric(rng, u.size)
    top = t * (int(v.max()) + 1) if v.size else 0
    if top < INT64_SAFE:
        x = u.astype(np.int64) + np.int64(t) * v
        y = x // np.int64(s)
    else:  # exact, slower; only for huge scales
        y = (u.astype(object) + t * v.astype(object)) // s
    sign = (uint64s(rng, y.size) & np.uint64(1)).astype(bool)
    keep = ~(sign & (y == 0))
    return np.where(sign, -y, y)[keep]


def collect(batch: Callable[[int], np.ndarray], size: int, accept_rate: float) -> np.ndarray:
    """Run ``batch`` (candidates in, accepted draws out) until ``size`` draws are in.

    The first batch is sized by the expected acceptance rate, later ones by
    the rate observed so far; surplus draws are discarded (they are i.i.d.).
    """
    parts: list[np.ndarray] = []
    need = size
    tried = accepted = 0
    while need > 0:
        rate = accepted / tried if accepted else accept_rate
        candidates = int(need * 1.05 / max(rate, 0.01)) + 16
        got = batch(candidates)
        tried, accepted = tried + candidates, accepted + got.size
        got = got[:need]
        parts.append(got)
        need -= got.size
    out = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return to_int64(out)


def to_int64(values: np.ndarray) -> np.ndarray:
    if values.dtype == np.int64:
        return values
    try:
        return np.array(values.tolist(), dtype=np.int64)
    except OverflowError:
        raise InvalidInputError("noise does not fit in 64 bits; the scale is too large") from None


def check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise InvalidInputError(f"sample size must be a non-negative integer, got {size!r}")


def discrete_laplace(scale: Rational, size: int, rng: RandomBytes = system_random) -> np.ndarray:
    """``size`` i.i.d. draws of the discrete Laplace of ``scale`` b (int64).

    pmf ``P(z) = (1-e^{-1/b})/(1+e^{-1/b}) · e^{-|z|/b}``; adding it to a
    count-like statistic of L1 sensitivity Δ gives (Δ/b)-DP. ``scale`` is
    exact (a Fraction, int or decimal string/float).
    """
    check_size(size)
    b = positive(scale, "discrete Laplace scale")
    if b.numerator >= MAX_SCALE_NUMERATOR or b.denominator >= MAX_SCALE_NUMERATOR:
        raise InvalidInputError("discrete Laplace scale is too large or too fine to sample")
    t, s = b.numerator, b.denominator
    return collect(lambda n: _laplace_batch(rng, t, s, n), size, 0.5)


# -- discrete Gaussian (CKS20 Algorithm 3) -----------------------------------------


def _gaussian_batch(rng: RandomBytes, a: int, b: int, t: int, n: int) -> np.ndarray:
    y = _laplace_batch(rng, t, 1, n)
    abs_y = np.abs(y).astype(object)
    # γ = (|y| - σ²/t)² / (2σ²) with σ² = a/b, over one denominator:
    den = 2 * a * b * t * t
    num = (abs_y * (b * t) - a) ** 2
    whole, rem = num // den, num % den
    accept = _bernoulli_exp(rng, _small_ints(whole), _ratios_big(rem, den))
    return y[accept]


def _small_ints(values: np.ndarray) -> np.ndarray:
    try:
        return np.array(values.tolist(), dtype=np.int64)
    except OverflowError:  # astronomically unlikely; keep exact object ints
        return values


def discrete_gaussian(sigma2: Rational, size: int, rng: RandomBytes = system_random) -> np.ndarray:
    """``size`` i.i.d. draws of the discrete Gaussian N_Z(0, σ²) (int64).

    pmf ∝ ``exp(-z²/(2σ²))``; adding it to a statistic of L2 sensitivity Δ
    gives (Δ²/(2σ²))-zCDP (CKS20). ``sigma2`` is σ², exact.
    """
    check_size(size)
    var = positive(sigma2, "discrete Gaussian sigma^2")
    if var.numerator >= MAX_SCALE_NUMERATOR**2 or var.denominator >= MAX_SCALE_NUMERATOR:
        raise InvalidInputError("discrete Gaussian sigma^2 is too large or too fine to sample")
    a, b = var.numerator, var.denominator
    t = isqrt(a // b) + 1
    return collect(lambda n: _gaussian_batch(rng, a, b, t, n), size, 0.4)


def sigma2_of(sigma: Rational) -> Fraction:
    """σ² for an exact σ (a convenience for callers who think in σ)."""
    s = positive(sigma, "discrete Gaussian sigma")
    return s * s
