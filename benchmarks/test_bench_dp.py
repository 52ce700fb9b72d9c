"""DP noise benchmarks: one server's exact noise for 10^4 slots, against OpenDP.

Group ``dp-noise``: :meth:`pets.dp.NoisePlan.sample` for the discrete Gaussian
(ρ = 1/2) and the discrete Laplace (ε = 1) on a 10^4-element vector dataset
(Δ = 500 per slot, every slot touched: σ = 5·10^4, b = 5·10^6), and OpenDP's
``make_gaussian`` at the same σ as the baseline (``extra_info["baseline"]``).
Group ``dp-noise-1m``: the same for the service benchmark's 10^6-slot vectors
(values in [0, 1000], b = 10^9, σ² ≈ 10^12), with the reference samplers of
:mod:`pets.dp.samplers` as the baseline (the fast samplers of :mod:`pets.dp.fast`
draw the same laws).
Group ``dp-add``: adding the noise to a uint64 ring share vs a bare ``np.add``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from pets.devtools.bench_dp import SLOTS, SLOTS_1M, _plans
from pets.dp import add_to_ring_share, samplers

ROUNDS = 10


def _run(benchmark: Any, fn: Callable[[], Any], *, baseline: bool = False) -> Any:
    benchmark.extra_info["elements"] = SLOTS
    if baseline:
        benchmark.extra_info["baseline"] = True
    return benchmark.pedantic(fn, rounds=ROUNDS, iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group="dp-noise")
@pytest.mark.parametrize("mechanism", ["gaussian", "laplace"])
def test_noise_sample(benchmark: Any, mechanism: str) -> None:
    gaussian, laplace = _plans(SLOTS)
    plan = gaussian if mechanism == "gaussian" else laplace
    out = _run(benchmark, plan.sample)
    assert out.shape == (SLOTS,) and out.dtype == np.int64


@pytest.mark.benchmark(group="dp-noise-1m")
@pytest.mark.parametrize("mechanism", ["gaussian", "laplace"])
def test_noise_sample_1m(benchmark: Any, mechanism: str) -> None:
    gaussian, laplace = _plans(SLOTS_1M, lo=0, hi=1000, scale=1)
    plan = gaussian if mechanism == "gaussian" else laplace
    benchmark.extra_info["elements"] = SLOTS_1M
    out = benchmark.pedantic(plan.sample, rounds=5, iterations=1, warmup_rounds=1)
    assert out.shape == (SLOTS_1M,) and out.dtype == np.int64


@pytest.mark.benchmark(group="dp-noise-1m")
@pytest.mark.parametrize("mechanism", ["gaussian", "laplace"])
def test_noise_reference_1m_baseline(benchmark: Any, mechanism: str) -> None:
    gaussian, laplace = _plans(SLOTS_1M, lo=0, hi=1000, scale=1)
    draw = samplers.discrete_gaussian if mechanism == "gaussian" else samplers.discrete_laplace
    param = (gaussian if mechanism == "gaussian" else laplace).fields[0].param
    benchmark.extra_info["elements"] = SLOTS_1M
    benchmark.extra_info["baseline"] = True
    out = benchmark.pedantic(lambda: draw(param, SLOTS_1M), rounds=2, iterations=1)
    assert out.shape == (SLOTS_1M,)


@pytest.mark.benchmark(group="dp-noise")
def test_noise_opendp_baseline(benchmark: Any) -> None:
    dp = pytest.importorskip("opendp.prelude")
    dp.enable_features("contrib")
    gaussian, _ = _plans(SLOTS)
    space = dp.vector_domain(dp.atom_domain(T=int)), dp.l2_distance(T=int)
    measurement = dp.m.make_gaussian(*space, scale=math.sqrt(gaussian.fields[0].param))
    zeros = [0] * SLOTS
    out = _run(benchmark, lambda: measurement(zeros), baseline=True)
    assert len(out) == SLOTS


@pytest.mark.benchmark(group="dp-add")
def test_add_baseline(benchmark: Any) -> None:
    share = np.zeros(SLOTS, dtype=np.uint64)
    noise = np.ones(SLOTS, dtype=np.int64).view(np.uint64)
    out = _run(benchmark, lambda: np.add(share, noise), baseline=True)
    assert out.shape == (SLOTS,)


@pytest.mark.benchmark(group="dp-add")
def test_add_to_ring_share(benchmark: Any) -> None:
    gaussian, _ = _plans(SLOTS)
    share = np.zeros(SLOTS, dtype=np.uint64)
    noise = gaussian.sample()
    out = _run(benchmark, lambda: add_to_ring_share(share, noise))
    assert out.shape == (SLOTS,)
