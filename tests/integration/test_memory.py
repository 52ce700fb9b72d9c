"""Server memory follows the vector length, not the number of holders (docs/ARCHITECTURE.md).

A real leader and helper (processes, mutual TLS, SQLite) receive one additive
query's contributions from many holders, each with its own certificate from
the cluster CA. Holders connect, contribute and disconnect, at most
:data:`CONCURRENCY` at a time; each vector is generated just before it is
sharded (:func:`pets.devtools.bench_service.holder_vector`) and never stored.

Checked, never timed (speed targets live in ``benchmarks/``):

* the leader's peak resident set (``VmHWM`` of the server process) stays far
  below what the holders sent in total; for the slow 1000 x 10^6 case, under
  1 GiB while 8 GB arrive;
* no server stores vectors per holder: the leader keeps each holder's sealed
  seeds (with its certificate, about a kilobyte) and the helper nothing per
  holder, so both SQLite files stay small;
* the result is exact: the analyst's summed vector equals the plaintext sum.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from pets.devtools.bench_service import ServiceRig, dataset_name, holder_vector

CONCURRENCY = 8
MB = 1e6


def _sqlite_bytes(state: Path) -> int:
    return sum(p.stat().st_size for p in state.glob("pets.sqlite*") if p.name != "pets.sqlite-shm")


def _run(tmp_path: Path, holders: int, length: int) -> dict[str, float]:
    """Contribute ``holders`` vectors of ``length`` values; return memory and size facts."""
    rig = ServiceRig(tmp_path, lengths=(length,), limits={"finalize_timeout_seconds": 600}).start()
    try:
        names = [f"mem-{i:05d}" for i in range(holders)]
        start = time.perf_counter()
        rig.issue_holders(names)
        issue_seconds = time.perf_counter() - start
        announcer = rig.holders(1, prefix="announcer")[0]
        rnd = rig.run(rig.open_round(dataset_name(length), announcer=announcer))
        leader_before = rig.memory("leader").rss_mb
        start = time.perf_counter()
        accepted = rig.run(
            rig.contribute_as(
                rnd, names, lambda i: holder_vector(i, length), concurrency=CONCURRENCY
            )
        )
        contribute_seconds = time.perf_counter() - start
        helper_db = _sqlite_bytes(rig.cluster.workdir / "state" / "helper-1")
        leader_db = _sqlite_bytes(rig.cluster.workdir / "state" / "leader")
        leader_peak = rig.memory("leader").hwm_mb

        async def finish() -> np.ndarray:
            await rig.analyst.close_query(rnd.query_id)
            return await rig.fetch_total(rnd, await rig.wait_ready(rnd))

        total = rig.run(finish())
        expected = sum(i % 1001 for i in range(holders))
        assert accepted == holders
        assert np.array_equal(total, np.full(length, expected, dtype=np.uint64))
        facts = {
            "leader_before_mb": leader_before,
            "leader_peak_mb": leader_peak,
            "helper_peak_mb": rig.memory("helper-1").hwm_mb,
            "helper_db_mb": helper_db / MB,
            "leader_db_mb": leader_db / MB,
            "sent_mb": holders * length * 8 / MB,
            "issue_seconds": issue_seconds,
            "contribute_seconds": contribute_seconds,
        }
        print(f"\nmemory facts ({holders} holders x {length} values): {facts}")
        return facts
    finally:
        rig.close()


def test_leader_memory_is_independent_of_holders(tmp_path: Path) -> None:
    """200 holders x 10^5 values (160 MB): the leader grows by a few vectors, not by 200."""
    holders, length = 200, 10**5
    facts = _run(tmp_path, holders, length)
    vector_mb = length * 8 / MB
    growth = facts["leader_peak_mb"] - facts["leader_before_mb"]
    # In flight at once: CONCURRENCY payloads, each received, parsed and queued
    # (a few copies), plus the running sum and its serialised copy; allocator slack.
    assert growth < (4 * CONCURRENCY + 8) * vector_mb + 32, facts
    assert growth < facts["sent_mb"] / 4, facts
    # Per holder the leader stores a digest and its sealed seeds with its
    # certificate (under 1 kB); the WAL, recycled at each checkpoint, dominates.
    assert facts["leader_db_mb"] < 10, facts
    assert facts["helper_db_mb"] < 1, facts


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_thousand_holders_million_values(tmp_path: Path) -> None:
    """1000 holders x 10^6 values (8 GB in all) into one additive query."""
    facts = _run(tmp_path, 1000, 10**6)
    assert facts["leader_peak_mb"] < 1024 * 1024 * 1024 / MB, facts
    assert facts["leader_db_mb"] < 10, facts
    assert facts["helper_db_mb"] < 1, facts
