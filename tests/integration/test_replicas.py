"""Two leader replicas on one PostgreSQL database, serving at once (issue 14, items 2-3).

Real ``pets serve`` processes with mutual TLS: two processes of the leader on
the leader's database (each its own port and replica name), the helper on its
own database, on a real PostgreSQL 15. Holders and the analyst are given both
leader addresses (gRPC ``round_robin``), as behind a load balancer. The faults:

* one replica is SIGKILLed while holders contribute: they retry on the other,
  no acknowledged contribution is lost and the answer is right;
* the replica holding a query's finalisation lease is SIGKILLed while it is
  finalising (the helper held still so it cannot finish): the other takes the
  lease over once it lapses and releases the right answer;
* the same contribution reaches both replicas at the same moment: it is counted
  once;
* the database restarts under both replicas: calls fail cleanly meanwhile, and
  both reconnect (the change feed too: a query accepted by one after the
  restart is served by the other).

Leases are short here (``finalise_lease_seconds = 2``) so the take-over is quick.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest

from pets.client.analyst import AnalystClient
from pets.client.connect import Connector
from pets.client.holder import HolderClient
from pets.devtools.pgcluster import PostgresCluster, server_databases
from pets.protocols.additive import AdditiveProtocol
from pets.query import Query, evaluate
from pets.query import compile as compile_query
from pets.v1 import aggregation_pb2 as pb
from tests.postgres import PostgresServer

from .conftest import analyst, announcement, contribute, expected, run, tables_for

QUERY = "sum(cost) from hospitals group by sex"
LEASE_SECONDS = 2


def _cluster(
    tmp_path: Path,
    datasets: dict[str, Any],
    server: PostgresServer,
    holders: int,
    **limits: float,
) -> PostgresCluster:
    """Two leader replicas and a helper; ``holders`` holders cycling over the data files."""
    orgs = sorted(datasets["holder_data"])
    cluster = PostgresCluster(
        workdir=tmp_path / "cluster",
        schema=datasets["schema"],
        holder_data={
            f"h-{i:03d}": datasets["holder_data"][orgs[i % len(orgs)]] for i in range(holders)
        },
        min_holders=2,
        limits={
            "finalize_timeout_seconds": 60,
            "finalise_lease_seconds": LEASE_SECONDS,
            "max_streams_per_holder": 4,
            **limits,
        },
        state_urls=server_databases(server, ["leader", "helper-1"]),
        leader_replicas=2,
    )
    cluster.prepare(analysts=("analyst",))
    cluster.start_servers()
    return cluster


def _on(cluster: PostgresCluster, process: str, name: str) -> HolderClient:
    """A holder client that reaches only the leader replica ``process``."""
    endpoints = dataclasses.replace(
        cluster.endpoints(name), leader=cluster.replica_address(process)
    )
    return HolderClient(Connector(endpoints, "holder"))


def _analyst_on(cluster: PostgresCluster, process: str) -> AnalystClient:
    """An analyst client that reaches only the leader replica ``process``."""
    endpoints = cluster.endpoints("analyst")
    return AnalystClient(dataclasses.replace(endpoints, leader=cluster.replica_address(process)))


def _check_answer(
    cluster: PostgresCluster, status: pb.QueryStatus, result: Any, holders: list[str], text: str
) -> None:
    """The query is ready, counts every holder once and has the plaintext answer."""
    assert status.state == pb.QUERY_STATE_READY and status.contributors == len(holders)
    assert result.close_to(expected(cluster, text, holders))


async def _finish(client: AnalystClient, submitted: Any) -> tuple[pb.QueryStatus, Any]:
    status = await asyncio.wait_for(client.wait(submitted.query_id), 60)
    return status, await client.fetch(submitted, status)


def _shards(url: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT replica, contributions FROM aggregate_shards")
        return {str(r): int(n) for r, n in rows}


def _leases(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [(str(q), str(h)) for q, h in conn.execute("SELECT query_id, holder FROM leases")]


def test_a_replica_killed_while_holders_contribute_loses_nothing(
    tmp_path: Path, datasets: dict[str, Any], postgres_server: PostgresServer
) -> None:
    cluster = _cluster(tmp_path, datasets, postgres_server, holders=24)
    holders = sorted(cluster.holder_data)
    acked: list[str] = []
    shards: dict[str, int] = {}

    async def go() -> tuple[pb.QueryStatus, Any]:
        client = analyst(cluster)
        try:
            submitted = await client.submit(Query.parse(QUERY), deadline_seconds=120)
            killed = asyncio.Event()

            async def one(holder: str) -> None:
                ack = await contribute(cluster, holder, submitted.query_id)
                assert ack.holder == holder
                acked.append(holder)
                if len(acked) == len(holders) // 3 and not killed.is_set():
                    killed.set()
                    shards.update(_shards(cluster.state_urls["leader"]))
                    cluster.kill("leader-r2")  # SIGKILL, mid-stream for the others

            await asyncio.gather(*(one(h) for h in holders))
            assert killed.is_set()
            closed = await client.close_query(submitted.query_id)
            assert closed.state in (pb.QUERY_STATE_CLOSED, pb.QUERY_STATE_READY)
            return await _finish(client, submitted)
        finally:
            await client.close()

    try:
        status, result = run(go())
        assert not cluster.processes["leader-r2"].running
        assert shards.get("leader-r2", 0) >= 1  # the killed replica had committed some
        # Every acknowledged contribution is in the answer, each once.
        assert sorted(acked) == holders
        _check_answer(cluster, status, result, holders, QUERY)
    finally:
        cluster.stop()


def test_the_finaliser_killed_mid_finalisation_is_taken_over(
    tmp_path: Path, datasets: dict[str, Any], postgres_server: PostgresServer
) -> None:
    cluster = _cluster(tmp_path, datasets, postgres_server, holders=3)
    holders = sorted(cluster.holder_data)
    leader_db = cluster.state_urls["leader"]

    async def go() -> tuple[str, pb.QueryStatus, Any]:
        client = analyst(cluster)
        try:
            submitted = await client.submit(Query.parse(QUERY), deadline_seconds=120)
            for holder in holders:
                await contribute(cluster, holder, submitted.query_id)
            helper = cluster.processes["helper-1"]
            helper.signal(signal.SIGSTOP)  # the finaliser's Finalize call hangs
            try:
                await client.close_query(submitted.query_id)
                deadline = time.monotonic() + 30
                while not (leases := _leases(leader_db)):
                    assert time.monotonic() < deadline, "no replica took the lease"
                    await asyncio.sleep(0.05)
                ((query_id, finaliser),) = leases
                assert query_id == submitted.query_id
                cluster.kill(finaliser)  # mid-finalisation: lease held, helper not done
            finally:
                helper.signal(signal.SIGCONT)
            status, result = await _finish(client, submitted)
            return finaliser, status, result
        finally:
            await client.close()

    try:
        finaliser, status, result = run(go())
        survivor = next(p for p in cluster.leader_processes if p != finaliser)
        assert cluster.processes[survivor].running
        _check_answer(cluster, status, result, holders, QUERY)
        assert _leases(leader_db) == []  # the finish deleted the lease
    finally:
        cluster.stop()


def test_the_same_contribution_on_both_replicas_at_once_counts_once(
    tmp_path: Path, datasets: dict[str, Any], postgres_server: PostgresServer
) -> None:
    cluster = _cluster(tmp_path, datasets, postgres_server, holders=3)
    holders = sorted(cluster.holder_data)
    twice = holders[0]

    async def go() -> tuple[list[pb.ContributionAck], pb.QueryStatus, Any]:
        client = analyst(cluster)
        first, second = _on(cluster, "leader", twice), _on(cluster, "leader-r2", twice)
        try:
            submitted = await client.submit(Query.parse(QUERY), deadline_seconds=120)
            ann = await announcement(first, submitted.query_id)
            await announcement(second, submitted.query_id)  # both replicas know it
            plan = compile_query(Query.from_json(ann.spec.query_json), cluster.schema)
            vector = evaluate(plan, tables_for(cluster, plan.query.dataset, [twice])[0])
            # One contribution (same payload, digest and sealed seeds), sent to both.
            contribution = await AdditiveProtocol().contribute(
                ann, plan, vector, holder=twice, seed_key=None, sealer=first.seal_seeds
            )
            c = contribution
            acks = await asyncio.gather(
                *(
                    to.send_payload(
                        ann.query_id, c.payload, c.digest, c.sealed_seeds, deadline=time.time() + 60
                    )
                    for to in (first, second)
                )
            )
            for holder in holders[1:]:
                await contribute(cluster, holder, submitted.query_id)
            await client.close_query(submitted.query_id)
            status, result = await _finish(client, submitted)
            return list(acks), status, result
        finally:
            for c2 in (client, first, second):
                await c2.close()

    try:
        acks, status, result = run(go())
        assert sorted(a.newly_accepted for a in acks) == [False, True]
        _check_answer(cluster, status, result, holders, QUERY)
    finally:
        cluster.stop()


def test_both_replicas_reconnect_after_a_database_restart(
    tmp_path: Path, datasets: dict[str, Any], private_postgres_server: PostgresServer
) -> None:
    server = private_postgres_server
    cluster = _cluster(tmp_path, datasets, server, holders=3)
    holders = sorted(cluster.holder_data)

    async def go() -> tuple[list[grpc.StatusCode], list[tuple[pb.QueryStatus, Any]]]:
        client = analyst(cluster)
        try:
            before = await client.submit(Query.parse(QUERY), deadline_seconds=120)
            await contribute(cluster, holders[0], before.query_id)
            server.stop_server("immediate")  # the database crashes under both replicas
            codes = []
            for process in cluster.leader_processes:  # each replica refuses cleanly
                direct = _analyst_on(cluster, process)
                try:
                    with pytest.raises(grpc.aio.AioRpcError) as failed:
                        await direct.leader.SubmitQuery(
                            pb.SubmitQueryRequest(spec=before.status.spec),
                            metadata=direct.connector.metadata,
                        )
                    codes.append(failed.value.code())
                finally:
                    await direct.close()
            await asyncio.to_thread(server.start_server)
            after = await client.submit(Query.parse(QUERY), deadline_seconds=120)
            # Accepted by one replica after the restart, known to the other: its
            # change feed reconnected (or the read-through found it).
            for process in cluster.leader_processes:
                h = _on(cluster, process, holders[0])
                try:
                    await announcement(h, after.query_id)
                finally:
                    await h.close()
            for holder in holders:
                for submitted in (before, after):
                    if (holder, submitted) != (holders[0], before):
                        await contribute(cluster, holder, submitted.query_id)
            results = []
            for submitted in (before, after):
                await client.close_query(submitted.query_id)
                results.append(await _finish(client, submitted))
            return codes, results
        finally:
            await client.close()

    try:
        codes, results = run(go())
        assert codes == [grpc.StatusCode.UNAVAILABLE] * 2
        for status, result in results:
            _check_answer(cluster, status, result, holders, QUERY)
        assert all(cluster.processes[p].running for p in cluster.leader_processes)
    finally:
        cluster.stop()


def test_shards_merge_to_the_sum_of_every_replica(
    tmp_path: Path, datasets: dict[str, Any], postgres_server: PostgresServer
) -> None:
    """Each holder on a chosen replica: both shards are non-empty and merge right. The
    analyst submits on one replica and asks the other at once (read through on a
    miss), closes and waits on the first and fetches the shares from the second."""
    cluster = _cluster(tmp_path, datasets, postgres_server, holders=4)
    holders = sorted(cluster.holder_data)

    async def go() -> tuple[pb.QueryStatus, pb.QueryStatus, Any, list[int]]:
        first, second = _analyst_on(cluster, "leader"), _analyst_on(cluster, "leader-r2")
        try:
            submitted = await first.submit(Query.parse(QUERY), deadline_seconds=120)
            elsewhere = await second.status(submitted.query_id)
            for i, holder in enumerate(holders):
                on = _on(cluster, cluster.leader_processes[i % 2], holder)
                await contribute(cluster, holder, submitted.query_id, on)
            with psycopg.connect(cluster.state_urls["leader"], autocommit=True) as conn:
                counts = [
                    int(n)
                    for (n,) in conn.execute(
                        "SELECT contributions FROM aggregate_shards ORDER BY replica"
                    )
                ]
            await first.close_query(submitted.query_id)
            status = await asyncio.wait_for(first.wait(submitted.query_id), 60)
            return elsewhere, status, await second.fetch(submitted, status), counts
        finally:
            await first.close()
            await second.close()

    try:
        elsewhere, status, result, counts = run(go())
        assert elsewhere.state == pb.QUERY_STATE_OPEN
        assert counts == [2, 2]
        _check_answer(cluster, status, result, holders, QUERY)
    finally:
        cluster.stop()


@pytest.mark.parametrize(
    ("protocol", "text"),
    [
        ("prio3", "mean(length_of_stay) from hospitals group by sex"),
        ("paillier", "sum(kg_co2e) from supply_chain group by stage"),
    ],
)
def test_other_protocols_with_holders_on_both_replicas(
    tmp_path: Path,
    datasets: dict[str, Any],
    postgres_server: PostgresServer,
    protocol: str,
    text: str,
) -> None:
    """Prio3 across replicas: each replica verifies its holders' reports with the
    query's verify key from the store (Prepare with the helper per replica batch),
    and the Field128 shards merge; Paillier: the ciphertext shards multiply."""
    cluster = _cluster(tmp_path, datasets, postgres_server, holders=4)
    holders = sorted(cluster.holder_data)

    async def go() -> tuple[pb.QueryStatus, Any]:
        client = analyst(cluster)
        try:
            submitted = await client.submit(
                Query.parse(text), protocol=protocol, deadline_seconds=120
            )
            for i, holder in enumerate(holders):
                on = _on(cluster, cluster.leader_processes[i % 2], holder)
                await contribute(cluster, holder, submitted.query_id, on)
            await client.close_query(submitted.query_id)
            return await _finish(client, submitted)
        finally:
            await client.close()

    try:
        status, result = run(go())
        _check_answer(cluster, status, result, holders, text)
    finally:
        cluster.stop()
