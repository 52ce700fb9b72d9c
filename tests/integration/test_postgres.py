"""The whole service on PostgreSQL (issue 14): real ``pets serve`` processes with
mutual TLS, the leader and the helper each on its OWN database of a real
PostgreSQL 15 (never one shared: a database readable by both would hold what
the one-honest-server model keeps apart).

Also the database's faults as the servers see them: a database that goes away
while they run makes calls fail with ``UNAVAILABLE`` (not ``INTERNAL``), and
when it is back the servers reconnect and the next query succeeds.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest

from pets.devtools.localcluster import LocalCluster
from pets.devtools.pgcluster import PostgresCluster, server_databases
from pets.protocols.registry import lookup
from pets.query import Query, evaluate
from pets.query import compile as compile_query
from pets.server.store.pg_pool import CONNECTION_TIMEOUT_SECONDS
from pets.v1 import aggregation_pb2 as pb
from tests.postgres import PostgresServer

from .conftest import analyst, contribute, expected, holder_client, run, tables_for


def _cluster(tmp_path: Path, datasets: dict[str, Any], server: PostgresServer) -> PostgresCluster:
    cluster = PostgresCluster(
        workdir=tmp_path / "cluster",
        schema=datasets["schema"],
        holder_data=dict(datasets["holder_data"]),
        min_holders=2,
        limits={"finalize_timeout_seconds": 30},  # the default: a pool may be reconnecting
        state_urls=server_databases(server, ["leader", "helper-1"]),
    )
    cluster.prepare(analysts=("analyst",))
    cluster.start_servers()
    return cluster


async def _ask(
    cluster: LocalCluster, text: str, holders: list[str], **options: Any
) -> tuple[pb.QueryStatus, Any]:
    """Submit, have ``holders`` contribute, close, wait, fetch: the status and result."""
    client = analyst(cluster)
    try:
        submitted = await client.submit(Query.parse(text), deadline_seconds=60, **options)
        for holder in holders:
            await contribute(cluster, holder, submitted.query_id)
        await client.close_query(submitted.query_id)
        status = await asyncio.wait_for(client.wait(submitted.query_id), 30)
        return status, await client.fetch(submitted, status)
    finally:
        await client.close()


def test_additive_and_paillier_queries_on_two_databases(
    tmp_path: Path, datasets: dict[str, Any], postgres_server: PostgresServer
) -> None:
    cluster = _cluster(tmp_path, datasets, postgres_server)
    try:
        holders = ["org-1", "org-2", "org-3"]
        additive = "mean(cost) from hospitals group by sex"
        status, result = run(_ask(cluster, additive, holders))
        assert status.state == pb.QUERY_STATE_READY and status.contributors == 3
        assert result.close_to(expected(cluster, additive, holders))

        paillier = "sum(kg_co2e) from supply_chain group by stage"
        status, result = run(_ask(cluster, paillier, holders, protocol="paillier"))
        assert status.state == pb.QUERY_STATE_READY
        assert result.close_to(expected(cluster, paillier, holders))

        # Each server wrote only its own database; the helper's has no contributions.
        leader_db, helper_db = (cluster.state_urls[n] for n in ("leader", "helper-1"))
        assert _count(leader_db, "contributions") == 6
        assert _count(helper_db, "contributions") == 0
        assert _count(helper_db, "queries") == 1  # the additive one; Paillier has no helper

        # A restarted leader resumes from its database: the queries are still served.
        cluster.kill("leader")
        cluster.restart_server("leader")
        # (Another query: the release rule refuses a fingerprint's second release with
        # another contributor set.)
        again = "count() from hospitals where age >= 40"
        status, result = run(_ask(cluster, again, holders[:2]))
        assert status.state == pb.QUERY_STATE_READY
        assert result.close_to(expected(cluster, again, holders[:2]))
    finally:
        cluster.stop()


def _count(url: str, table: str) -> int:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url) as conn:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        return int(row.fetchone()[0])  # type: ignore[index]


def test_a_database_restart_fails_calls_cleanly_and_the_next_query_succeeds(
    tmp_path: Path, datasets: dict[str, Any], private_postgres_server: PostgresServer
) -> None:
    """The database crashes while a query is open: a contribution and a new query
    are refused with UNAVAILABLE (never INTERNAL); once the database is back,
    other holders' contributions and the refused one's retry land, each counted
    once (the leader forgot what it could not record), and the next query
    succeeds."""
    server = private_postgres_server
    cluster = _cluster(tmp_path, datasets, server)
    text = "count() from hospitals where age >= 65"
    try:

        async def go() -> tuple[list[grpc.StatusCode], pb.QueryStatus, Any]:
            client = analyst(cluster)
            holder = holder_client(cluster, "org-1")
            try:
                submitted = await client.submit(Query.parse(text), deadline_seconds=120)
                ann = await holder.announcement(submitted.query_id)
                plan = compile_query(Query.from_json(ann.spec.query_json), cluster.schema)
                values = evaluate(plan, tables_for(cluster, "hospitals", ["org-1"])[0])
                made = await lookup(ann.spec.protocol).contribute(
                    ann, plan, values, holder=holder.name, seed_key=None, sealer=holder.seal_seeds
                )
                header = pb.ContributionHeader(
                    query_id=ann.query_id,
                    payload_bytes=len(made.payload),
                    contribution_digest=made.digest,
                    sealed_seeds=list(made.sealed_seeds),
                )
                chunk = pb.ContributionChunk(header=header, data=bytes(made.payload))
                server.stop_server("immediate")  # the database crashes mid-query
                codes = []
                for call in (
                    holder.leader.ContributeOne(chunk, metadata=holder.connector.metadata),
                    client.leader.SubmitQuery(
                        pb.SubmitQueryRequest(spec=ann.spec), metadata=client.connector.metadata
                    ),
                ):
                    with pytest.raises(grpc.aio.AioRpcError) as failed:
                        await call
                    codes.append(failed.value.code())
                # Down long enough that the leader's own attempts to reload the query
                # from the store fail too (each waits CONNECTION_TIMEOUT_SECONDS).
                await asyncio.sleep(CONNECTION_TIMEOUT_SECONDS + 1)
                await asyncio.to_thread(server.start_server)
                # The first commit after the outage is another holder's: the leader's
                # running aggregate must not still hold org-1's unrecorded contribution.
                await contribute(cluster, "org-2", submitted.query_id)
                # org-1's client retries UNAVAILABLE with backoff: it lands once.
                await holder.send_payload(
                    ann.query_id,
                    made.payload,
                    made.digest,
                    made.sealed_seeds,
                    deadline=ann.deadline_unix,
                )
                await client.close_query(submitted.query_id)
                status = await asyncio.wait_for(client.wait(submitted.query_id), 30)
                return codes, status, await client.fetch(submitted, status)
            finally:
                await holder.close()
                await client.close()

        codes, status, result = run(go())
        assert codes == [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE]
        assert status.state == pb.QUERY_STATE_READY and status.contributors == 2
        assert result.close_to(expected(cluster, text, ["org-1", "org-2"]))
        # The next query, on the restarted database, succeeds too.
        after = "sum(cost) from hospitals"
        status, result = run(_ask(cluster, after, ["org-2", "org-3"]))
        assert status.state == pb.QUERY_STATE_READY
        assert result.close_to(expected(cluster, after, ["org-2", "org-3"]))
        for name in ("leader", "helper-1"):
            assert cluster.processes[name].running, cluster.tail(name)
    finally:
        cluster.stop()


def test_the_same_contribution_sent_twice_at_once_is_counted_once(
    tmp_path: Path, datasets: dict[str, Any], postgres_server: PostgresServer
) -> None:
    """One holder's contribution arrives twice at the same moment (a re-send
    racing the original): both are acknowledged, the holder is counted once."""
    cluster = _cluster(tmp_path, datasets, postgres_server)
    text = "count() from hospitals"
    try:

        async def go() -> tuple[list[pb.ContributionAck], pb.QueryStatus, Any]:
            client = analyst(cluster)
            holder = holder_client(cluster, "org-1")
            try:
                submitted = await client.submit(Query.parse(text), deadline_seconds=60)
                ann = await holder.announcement(submitted.query_id)
                plan = compile_query(Query.from_json(ann.spec.query_json), cluster.schema)
                values = evaluate(plan, tables_for(cluster, "hospitals", ["org-1"])[0])
                made = await lookup(ann.spec.protocol).contribute(
                    ann, plan, values, holder=holder.name, seed_key=None, sealer=holder.seal_seeds
                )
                sends = [
                    holder.send_payload(
                        ann.query_id,
                        made.payload,
                        made.digest,
                        made.sealed_seeds,
                        deadline=ann.deadline_unix,
                    )
                    for _ in range(2)
                ]
                acks = list(await asyncio.gather(*sends))
                await contribute(cluster, "org-2", submitted.query_id)
                await client.close_query(submitted.query_id)
                status = await asyncio.wait_for(client.wait(submitted.query_id), 30)
                return acks, status, await client.fetch(submitted, status)
            finally:
                await holder.close()
                await client.close()

        acks, status, result = run(go())
        assert len(acks) == 2
        assert status.contributors == 2
        assert result.close_to(expected(cluster, text, ["org-1", "org-2"]))
        assert _count(cluster.state_urls["leader"], "contributions") == 2
    finally:
        cluster.stop()
