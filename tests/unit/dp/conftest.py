"""Shared statistics for the DP sampler tests: exact pmfs and a chi-square test.

No scipy: the chi-square survival function is the regularised upper incomplete
gamma function Q(k/2, x/2), by its series or continued fraction (Press et al.,
*Numerical Recipes*, 3rd ed., §6.2).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

Pmf = Callable[[int], float]


def _gamma_q(a: float, x: float) -> float:
    if x <= 0:
        return 1.0
    log_front = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1:  # series for P(a, x)
        term = total = 1 / a
        ap = a
        for _ in range(10_000):
            ap += 1
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1 - total * math.exp(log_front))
    tiny = 1e-300
    b = x + 1 - a
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 10_000):  # modified Lentz continued fraction for Q(a, x)
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return math.exp(log_front) * h


def laplace_pmf(scale: float) -> Pmf:
    p = math.exp(-1 / scale)
    return lambda z: (1 - p) / (1 + p) * p ** abs(z)


def gaussian_pmf(sigma2: float) -> Pmf:
    reach = int(60 * math.sqrt(sigma2)) + 10
    norm = math.fsum(math.exp(-(z * z) / (2 * sigma2)) for z in range(-reach, reach + 1))
    return lambda z: math.exp(-(z * z) / (2 * sigma2)) / norm


def chi_square_p(samples: np.ndarray, pmf: Pmf, min_expected: float = 20.0) -> float:
    """p-value of a chi-square goodness-of-fit test of integer ``samples`` against ``pmf``.

    Every integer with expected count >= ``min_expected`` (a contiguous range
    around 0) is its own bin; both tails beyond it are one bin each.
    """
    n = samples.size
    top = 0
    while n * pmf(top + 1) >= min_expected:
        top += 1
    values = np.arange(-top, top + 1)
    expected = np.array([n * pmf(int(z)) for z in values])
    observed = np.array([np.count_nonzero(samples == z) for z in values], dtype=float)
    tail = (n - expected.sum()) / 2
    lower, upper = np.count_nonzero(samples < -top), np.count_nonzero(samples > top)
    obs = np.concatenate([observed, [lower, upper]])
    exp = np.concatenate([expected, [tail, tail]])
    keep = exp > 1e-9
    stat = float((((obs - exp) ** 2)[keep] / exp[keep]).sum())
    df = int(keep.sum()) - 1
    return _gamma_q(df / 2, stat / 2)


def two_sample_p(a: np.ndarray, b: np.ndarray, bins: int = 40) -> float:
    """p-value of a chi-square test that two integer samples come from one law.

    Bins are the pooled sample's quantiles (ties merged), so every bin is
    well filled at any scale; the statistic is the homogeneity chi-square of
    the 2 x bins table (df = bins - 1).
    """
    pooled = np.concatenate([a, b])
    edges = np.unique(np.quantile(pooled, np.linspace(0, 1, bins + 1)[1:-1], method="lower"))
    ca = np.bincount(np.searchsorted(edges, a, side="right"), minlength=edges.size + 1)
    cb = np.bincount(np.searchsorted(edges, b, side="right"), minlength=edges.size + 1)
    total = ca + cb
    keep = total > 0
    ea, eb = total * a.size / pooled.size, total * b.size / pooled.size
    stat = float((((ca - ea) ** 2 / ea)[keep] + ((cb - eb) ** 2 / eb)[keep]).sum())
    return _gamma_q((int(keep.sum()) - 1) / 2, stat / 2)


@pytest.fixture(scope="session")
def stats() -> dict[str, Callable[..., object]]:
    """``chi_square_p``, ``two_sample_p``, ``laplace_pmf``, ``gaussian_pmf`` for the tests."""
    return {
        "chi_square_p": chi_square_p,
        "two_sample_p": two_sample_p,
        "laplace_pmf": laplace_pmf,
        "gaussian_pmf": gaussian_pmf,
    }
