"""Load (issue 14, item 5): 10^5 holders through two leader and two helper replicas.

Two processes of the leader on one PostgreSQL 15 database and two of the helper
on another, every party listing both replicas' addresses (``round_robin``), one
``vector_sum()`` query over 8-value vectors. 10^5 holders contribute from two
client processes (:mod:`pets.devtools.load_holders`: each contribution made as a
node makes it, sent as one ``ContributeOne`` call naming its holder, many
holders over a few channels; the deployment is ``--insecure`` for that, since
with mutual TLS each holder would need its own connection). Then the analyst
closes the query and fetches the result from whichever replicas answer.

Checked: every holder counted once, the sum exact, every server's peak
resident memory (``VmHWM``) under :data:`RSS_BOUND_MB`, and each replica did a
fair part of its server's work (CPU time: ``round_robin`` spread the calls). The measured time and
peaks are printed (``pytest -s``). ``PETS_LOAD_HOLDERS`` scales the holder
count down for a quick local run.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pets.client.analyst import AnalystClient
from pets.client.connect import Connector
from pets.client.holder import HolderClient
from pets.devtools.bench_service import (
    VALUE_HI,
    bench_schema,
    dataset_name,
    process_cpu_seconds,
    process_memory,
)
from pets.devtools.pgcluster import server_databases
from pets.query import Query
from pets.v1 import aggregation_pb2 as pb
from tests.postgres import PostgresServer

from .replica_support import HELPER, ReplicaCluster

HOLDERS = int(os.environ.get("PETS_LOAD_HOLDERS", "100000"))
LENGTH = 8
WORKERS = 2  # client processes
RSS_BOUND_MB = 1024.0  # per server: generous; measured peaks are printed
SERVERS = ["leader", "leader-r2", HELPER, "helper-1-b"]


def _expected_sum(holders: int, length: int) -> np.ndarray:
    """The sum of :func:`pets.devtools.bench_service.holder_vector` over the holders."""
    per = sum(i % (VALUE_HI + 1) for i in range(holders))
    return np.full(length, per, dtype=np.int64)


def _start(cluster: ReplicaCluster) -> None:
    """Both helper replicas first, so each leader replica's config lists both."""
    cluster.prepare()
    cluster.start_replica(HELPER, HELPER)
    cluster.start_replica(HELPER, "helper-1-b")
    for process in cluster.leader_processes:  # leader, leader-r2 (PostgresCluster)
        cluster._start_server(process, "leader")


def _workers(leader: str, ann: pb.QueryAnnouncement) -> list[subprocess.Popen[str]]:
    per = -(-HOLDERS // WORKERS)
    procs = []
    for w in range(WORKERS):
        first, count = w * per, min(per, HOLDERS - w * per)
        proc = subprocess.Popen(
            [sys.executable, "-m", "pets.devtools.load_holders"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdin is not None
        job = {
            "leader": leader,
            "announcement": ann.SerializeToString().hex(),
            "prefix": "load",
            "first": first,
            "count": count,
            "channels": 2,
            "concurrency": 48,
        }
        proc.stdin.write(json.dumps(job) + "\n")
        proc.stdin.close()
        procs.append(proc)
    return procs


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_100k_holders_through_two_leader_and_two_helper_replicas(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    cluster = ReplicaCluster(
        workdir=tmp_path / "cluster",
        schema=bench_schema((LENGTH,)),
        insecure=True,
        min_holders=2,
        limits={"finalize_timeout_seconds": 300, "max_deadline_seconds": 7200},
        state_urls=server_databases(postgres_server, ["leader", HELPER]),
        leader_replicas=2,
    )
    _start(cluster)
    started = time.perf_counter()
    try:

        async def submit() -> tuple[AnalystClient, object, pb.QueryAnnouncement]:
            client = AnalystClient(cluster.endpoints("analyst"))
            submitted = await client.submit(
                Query.parse(f"vector_sum() from {dataset_name(LENGTH)}"), deadline_seconds=3600
            )
            announcer = HolderClient(Connector(cluster.endpoints("announcer"), "holder"))
            try:
                ann = await announcer.announcement(submitted.query_id)
            finally:
                await announcer.close()
            await client.close()
            return client, submitted, ann

        _, submitted, ann = asyncio.run(submit())
        procs = _workers(cluster.address("leader"), ann)
        results = []
        try:
            for proc in procs:
                assert proc.stdout is not None
                out = proc.stdout.read()
                assert proc.wait(60) == 0, out
                results.append(json.loads(out.strip().splitlines()[-1]))
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
        contributed = time.perf_counter() - started

        async def finish() -> tuple[pb.QueryStatus, object]:
            client = AnalystClient(cluster.endpoints("analyst"))
            try:
                await client.close_query(submitted.query_id)  # type: ignore[attr-defined]
                status = await asyncio.wait_for(client.wait(submitted.query_id), 600)  # type: ignore[attr-defined]
                return status, await client.fetch(submitted, status)  # type: ignore[arg-type]
            finally:
                await client.close()

        status, result = asyncio.run(finish())
        total = time.perf_counter() - started
        pids = {name: cluster.processes[name].popen.pid for name in SERVERS}  # type: ignore[union-attr]
        peaks = {name: process_memory(pid) for name, pid in pids.items()}
        cpu = {name: process_cpu_seconds(pid) for name, pid in pids.items()}
    finally:
        cluster.stop()

    assert sum(r["accepted"] for r in results) == HOLDERS
    assert status.state == pb.QUERY_STATE_READY, status.failure_detail
    assert status.contributors == HOLDERS
    got = np.asarray(result.rows[0]["vector"], dtype=np.int64)  # type: ignore[attr-defined]
    assert np.array_equal(got, _expected_sum(HOLDERS, LENGTH))
    report = {
        "holders": HOLDERS,
        "contribute_seconds": round(contributed, 1),
        "total_seconds": round(total, 1),
        "contributions_per_s": round(HOLDERS / contributed, 1),
        "client_cpu_seconds": round(sum(r["cpu_seconds"] for r in results), 1),
        "retries": sum(r["retries"] for r in results),
        "peak_rss_mb": {n: round(m.hwm_mb, 1) for n, m in peaks.items()},
        "server_cpu_seconds": {n: round(c, 1) for n, c in cpu.items()},
    }
    print("load test:", json.dumps(report))
    for name, memory in peaks.items():
        assert memory.hwm_mb < RSS_BOUND_MB, (name, memory)
    # round_robin spread the work: each replica did a fair part of its server's.
    for pair in (("leader", "leader-r2"), (HELPER, "helper-1-b")):
        assert min(cpu[n] for n in pair) > 0.2 * sum(cpu[n] for n in pair), report
