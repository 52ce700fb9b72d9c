"""Quick Prio3 benchmarks (``pets bench --quick``): per-report shard and verify costs.

Every case uses two aggregators, a fresh verify key and nonce, and reports
per call, best of several runs (the minimum is the estimate least disturbed by
other load):

- ``*_shard_ms``: the Client's :meth:`~pets.vdaf.prio3.Prio3.shard`;
- ``*_verify_ms``: ``verify_init`` on both Aggregators plus
  ``verifier_shares_to_message`` (issue 10's definition);
- ``prio3_count_shard_verify_ms``: the two together for Prio3Count;
- ``prio3_histogram100_batch_verify_reports_per_s``: 1,000 Histogram(100)
  reports verified as one batch by :class:`pets.vdaf.batch.BatchVerifier`
  on two worker processes (both Aggregators' ``verify_init`` and the message);
  ``..._1proc`` is the same batch in-process, and
  ``prio3_histogram100_batch_verify_reports_per_cpu_s`` divides by CPU time
  instead of wall time (one core's capacity, insensitive to other load; two
  idle cores give at most twice that), and ``..._per_cpu_s_2proc`` by the CPU
  time of this process and both workers (what the pool's pickling costs).

Targets (issue 10, two cores): Histogram(100) shard <= 2 ms and verify <= 1 ms,
Count shard + verify <= 0.15 ms, batched Histogram(100) >= 5,000 reports/s.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from typing import Any

from pets.devtools.bench import best_time
from pets.devtools.proc_cpu import tree_cpu_seconds
from pets.vdaf import (
    Prio3,
    prio3_count,
    prio3_histogram,
    prio3_sum,
    prio3_sum_vec,
)
from pets.vdaf.batch import BatchVerifier

CTX = b"pets bench"
BATCH = 1000


def _cases() -> list[tuple[str, Prio3, Any, int]]:
    """(metric prefix, instance, measurement, repeat)."""
    return [
        ("prio3_count", prio3_count(2), 1, 9),
        ("prio3_sum255", prio3_sum(2, 255), 200, 9),
        ("prio3_sum2p32", prio3_sum(2, 2**32 - 1), 2**31 + 5, 7),
        ("prio3_sumvec10", prio3_sum_vec(2, 10, 255), list(range(10)), 7),
        ("prio3_histogram100", prio3_histogram(2, 100), 42, 7),
        ("prio3_histogram1000", prio3_histogram(2, 1000), 420, 3),
    ]


def shard_and_verify_ms(vdaf: Prio3, measurement: Any, repeat: int) -> tuple[float, float]:
    """(shard ms, verify ms) per report, best of ``repeat`` runs of a few calls."""
    key, nonce = os.urandom(32), os.urandom(16)
    number = 20 if vdaf.flp.MEAS_LEN < 64 else 3
    public, shares = vdaf.shard(CTX, measurement, nonce)

    def verify() -> None:
        vs = [vdaf.verify_init(key, CTX, j, nonce, public, shares[j])[1] for j in range(2)]
        vdaf.verifier_shares_to_message(CTX, vs)

    t_shard = best_time(lambda: vdaf.shard(CTX, measurement, nonce), repeat=repeat, number=number)
    t_verify = best_time(verify, repeat=repeat, number=number)
    return t_shard * 1e3, t_verify * 1e3


@functools.cache
def _histogram100_reports(n: int) -> tuple[Prio3, list[bytes], list[Any], list[Any], list[Any]]:
    """``n`` sharded Histogram(100) reports: (vdaf, nonces, publics, leader and helper shares).

    Made once per process, so the three batch measurements of :func:`quick`
    do not each spend a second sharding (sharding has its own metrics).
    """
    vdaf = prio3_histogram(2, 100)
    nonces = [os.urandom(16) for _ in range(n)]
    reports = [vdaf.shard(CTX, i % 100, nonce) for i, nonce in enumerate(nonces)]
    return (
        vdaf,
        nonces,
        [r[0] for r in reports],
        [r[1][0] for r in reports],
        [r[1][1] for r in reports],
    )


def batch_reports_per_s(
    workers: int, n: int = BATCH, repeat: int = 3, cpu_time: bool = False
) -> float:
    """Histogram(100) reports per second through both Aggregators' batch verification.

    ``cpu_time=True`` divides by CPU time instead of wall time: a
    load-independent measure of capacity. In-process that is this process's
    CPU time (one core's capacity); with worker processes it is the CPU time
    of this process and all its workers together (Linux ``/proc``; wall time
    elsewhere), so the pool's pickling counts.
    """
    vdaf, nonces, publics, leader, helper = _histogram100_reports(n)
    key = os.urandom(32)
    best = float("inf")
    with BatchVerifier(vdaf, workers) as bv:
        bv.verify_init(key, CTX, 1, nonces[:8], publics[:8], helper[:8])  # start workers
        clock: Callable[[], float] = time.perf_counter
        if cpu_time and workers == 1:
            clock = time.process_time
        elif cpu_time and tree_cpu_seconds(os.getpid()) is not None:
            clock = lambda: tree_cpu_seconds(os.getpid()) or 0.0  # noqa: E731
        for _ in range(repeat):
            start = clock()
            r0 = bv.verify_init(key, CTX, 0, nonces, publics, leader)
            r1 = bv.verify_init(key, CTX, 1, nonces, publics, helper)
            pairs = [[a[1], b[1]] for a, b in zip(r0, r1, strict=True)]  # type: ignore[index]
            msgs = bv.verifier_shares_to_message(CTX, pairs)
            best = min(best, clock() - start)
            if not all(isinstance(m, bytes) for m in msgs):
                raise RuntimeError("an honest report failed batch verification")
    return n / best


def quick() -> dict[str, float]:
    metrics: dict[str, float] = {}
    for name, vdaf, meas, repeat in _cases():
        shard_ms, verify_ms = shard_and_verify_ms(vdaf, meas, repeat)
        metrics[f"{name}_shard_ms"] = shard_ms
        metrics[f"{name}_verify_ms"] = verify_ms
    metrics["prio3_count_shard_verify_ms"] = (
        metrics["prio3_count_shard_ms"] + metrics["prio3_count_verify_ms"]
    )
    metrics["prio3_histogram100_batch_verify_reports_per_s_1proc"] = batch_reports_per_s(1)
    metrics["prio3_histogram100_batch_verify_reports_per_cpu_s"] = batch_reports_per_s(
        1, cpu_time=True
    )
    metrics["prio3_histogram100_batch_verify_reports_per_s"] = batch_reports_per_s(2)
    metrics["prio3_histogram100_batch_verify_reports_per_cpu_s_2proc"] = batch_reports_per_s(
        2, cpu_time=True
    )
    return metrics


if __name__ == "__main__":  # pragma: no cover - manual runs
    for key, value in quick().items():
        print(f"{key:55s} {value:12.3f}")
