"""Quick metrics for DP noise: one server's noise for a 10^4- and a 10^6-slot vector.

The plan is a vector dataset of 10^4 elements in [-5, 5] at scale 100, so a
unit (one holder's vector) touches every slot: Δ = 500 per slot, k = 10^4.
That gives large per-slot scales (σ = 5·10^4 at ρ = 1/2, b = 5·10^6 at
ε = 1). The 10^6-slot plan is the service benchmark's (values in [0, 1000] at
scale 1: b = 10^9 at ε = 1, σ² ≈ 10^12 at ρ = 1/2).

* ``dp_noise_10k_slots_ms``: the slower of the two mechanisms (target <= 200 ms);
* ``dp_gaussian_10k_slots_ms`` / ``dp_laplace_10k_slots_ms``: each alone, via
  :meth:`pets.dp.NoisePlan.sample` (the fast exact samplers of
  :mod:`pets.dp.fast`, a fresh OS-keyed stream per vector);
* ``dp_noise_1m_slots_ms``: the slower mechanism on 10^6 slots (wall, best
  of 3), ``dp_noise_1m_slots_cpu_ms`` its process CPU time (the machine is
  shared: CPU time is the steadier figure), and each mechanism alone
  (``dp_gaussian_1m_slots_ms``, ``dp_laplace_1m_slots_ms``);
* ``dp_add_noise_ring_10k_ms``: adding the noise to a ring share;
* ``dp_opendp_gaussian_10k_slots_ms``: OpenDP's ``make_gaussian`` on the same
  σ, for comparison (only when OpenDP is installed).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from pets.devtools.bench import best_time
from pets.dp import NoisePlan, add_to_ring_share, noise_plan
from pets.query import Dataset, compile
from pets.query.model import Aggregate, DpRequest, Query

SLOTS = 10_000
SLOTS_1M = 1_000_000


def _plans(slots: int, lo: int = -5, hi: int = 5, scale: int = 100) -> tuple[NoisePlan, NoisePlan]:
    dataset = Dataset("bench", (), 1, kind="vector", length=slots, lo=lo, hi=hi, scale=scale)
    plan = compile(Query("bench", Aggregate.vector_sum), dataset)
    return noise_plan(plan, DpRequest(rho=0.5)), noise_plan(plan, DpRequest(epsilon=1.0))


def _best_wall_and_cpu(fn: Callable[[], object], repeat: int = 3) -> tuple[float, float]:
    """Best wall time and the process CPU time of that same run (seconds)."""
    fn()
    runs = []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        runs.append((time.perf_counter() - wall, time.process_time() - cpu))
    return min(runs)


def million_slot_metrics() -> dict[str, float]:
    """One server's noise for the service benchmark's 10^6-slot vectors (milliseconds)."""
    gaussian, laplace = _plans(SLOTS_1M, lo=0, hi=1000, scale=1)
    g_wall, g_cpu = _best_wall_and_cpu(gaussian.sample)
    l_wall, l_cpu = _best_wall_and_cpu(laplace.sample)
    return {
        "dp_noise_1m_slots_ms": 1000 * max(g_wall, l_wall),
        "dp_noise_1m_slots_cpu_ms": 1000 * (g_cpu if g_wall >= l_wall else l_cpu),
        "dp_gaussian_1m_slots_ms": 1000 * g_wall,
        "dp_laplace_1m_slots_ms": 1000 * l_wall,
    }


def quick(slots: int = SLOTS) -> dict[str, float]:
    """``dp_noise_10k_slots_ms`` and the per-mechanism figures (milliseconds)."""
    gaussian, laplace = _plans(slots)
    t_gauss = best_time(gaussian.sample, repeat=5)
    t_lap = best_time(laplace.sample, repeat=5)
    share = np.zeros(slots, dtype=np.uint64)
    noise = gaussian.sample()
    t_add = best_time(lambda: add_to_ring_share(share, noise), repeat=9)
    out = {
        "dp_noise_10k_slots_ms": 1000 * max(t_gauss, t_lap),
        "dp_gaussian_10k_slots_ms": 1000 * t_gauss,
        "dp_laplace_10k_slots_ms": 1000 * t_lap,
        "dp_add_noise_ring_10k_ms": 1000 * t_add,
    } | million_slot_metrics()
    try:
        import opendp.prelude as dp
    except ImportError:
        return out
    dp.enable_features("contrib")
    space = dp.vector_domain(dp.atom_domain(T=int)), dp.l2_distance(T=int)
    sigma = math.sqrt(gaussian.fields[0].param)
    measurement = dp.m.make_gaussian(*space, scale=sigma)
    zeros = [0] * slots
    out["dp_opendp_gaussian_10k_slots_ms"] = 1000 * best_time(lambda: measurement(zeros), repeat=3)
    return out
