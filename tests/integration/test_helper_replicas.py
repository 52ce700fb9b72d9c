"""Helper replicas on one PostgreSQL 15 database (issue 14, item 2), as real processes.

Two processes of ``helper-1`` (same name, certificate and database, two ports)
serve one leader, which lists one or both of their addresses:

* a query registered and prepared through replica A is finalised through
  replica B, which loads it from the database and checks and opens every
  sealed seed itself (additive and Prio3); A learns of it from the change feed
  and drops the seeds it kept, and both replicas serve the share;
* the same Finalize sent to A and B at the same moment yields one stored result:
  both calls succeed, both replicas serve the same (noisy) share, and the DP
  budget is spent once; with both forced to compute and store at once
  (in-process replicas, a barrier before the store's finish), the loser stores
  nothing and answers with the winner's share;
* replica A is killed mid-query: the leader, which lists both addresses,
  prepares the next contribution and finalises through B, and the analyst fetches
  the share from B.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest

from pets import seal
from pets.client.analyst import AnalystClient
from pets.client.connect import Connector
from pets.devtools.pgcluster import server_databases
from pets.identity.files import load_own_identity
from pets.query import Query
from pets.query import compile as compile_query
from pets.server.app import Server
from pets.server.config import HelperEndpoint, ServerConfig, load_config
from pets.server.peers import HelperLink
from pets.server.store.postgres import PostgresStore
from pets.transport.wire import INSECURE_IDENTITY_HEADER
from pets.v1 import aggregation_pb2 as pb
from pets.v1 import aggregation_pb2_grpc as pb_grpc
from tests.postgres import PostgresServer

from .conftest import analyst, contribute, expected, run
from .replica_support import HELPER, ReplicaCluster

A, B = HELPER, "helper-1-b"
HOLDERS = ["org-1", "org-2", "org-3"]


@pytest.fixture
def make_replicas(tmp_path: Path, datasets: dict[str, Any], postgres_server: PostgresServer) -> Any:
    clusters: list[ReplicaCluster] = []

    def factory(leader_dials: list[str] | None) -> ReplicaCluster:
        cluster = ReplicaCluster(
            workdir=tmp_path / f"cluster{len(clusters)}",
            schema=datasets["schema"],
            holder_data=dict(datasets["holder_data"]),
            min_holders=2,
            limits={"finalize_timeout_seconds": 30},
            state_urls=server_databases(postgres_server, [HELPER]),
            leader_dials=leader_dials,
        )
        clusters.append(cluster)
        cluster.prepare(analysts=("analyst",))
        cluster.start_replica(HELPER, A)
        cluster.start_replica(HELPER, B)
        cluster.start_replica("leader", "leader")
        return cluster

    yield factory
    for cluster in clusters:
        cluster.stop()


def _analyst_of(cluster: ReplicaCluster, replica: str) -> AnalystClient:
    """An analyst that fetches the helper's share from ``replica`` only."""
    endpoints = cluster.endpoints("analyst")
    return AnalystClient(replace(endpoints, helpers={HELPER: cluster.replica_address(replica)}))


def test_registered_and_prepared_on_one_replica_finalised_on_another(
    make_replicas: Any,
) -> None:
    cluster = make_replicas([A])  # the leader reaches replica A only
    texts = {
        "additive": "sum(cost) from hospitals group by sex",
        "prio3": "mean(length_of_stay) from hospitals group by sex",
    }

    async def submit_and_contribute() -> dict[str, Any]:
        client = analyst(cluster)
        try:
            submitted = {
                protocol: await client.submit(
                    Query.parse(text), protocol=protocol, deadline_seconds=120
                )
                for protocol, text in texts.items()
            }
            for sub in submitted.values():
                for holder in HOLDERS:
                    await contribute(cluster, holder, sub.query_id)
            return submitted
        finally:
            await client.close()

    submitted = run(submit_and_contribute())
    # The leader now reaches replica B only, which saw neither query nor any Prepare.
    cluster.leader_dials = [B]
    cluster.kill("leader")
    cluster.restart_server("leader")

    async def close_and_fetch() -> dict[str, list[Any]]:
        results: dict[str, list[Any]] = {}
        client = analyst(cluster)
        try:
            statuses = {}
            for protocol, sub in submitted.items():
                await client.close_query(sub.query_id)
                status = await asyncio.wait_for(client.wait(sub.query_id), 60)
                assert status.state == pb.QUERY_STATE_READY, status.failure_detail
                assert status.contributors == len(HOLDERS)
                statuses[protocol] = status
            # A, which holds the seeds its Prepare accepted, learns from the change feed
            # (LISTEN/NOTIFY) that B finished both queries, and drops them.
            for _ in range(150):
                if cluster.tail(A, 400).count('"query ended on another replica"') == 2:
                    break
                await asyncio.sleep(0.1)
            assert cluster.tail(A, 400).count('"dropped_seeds": 3') == 2
            for protocol, sub in submitted.items():
                status = statuses[protocol]
                results[protocol] = []
                for replica in (A, B):  # either replica serves the stored share
                    fetcher = _analyst_of(cluster, replica)
                    try:
                        results[protocol].append(await fetcher.fetch(sub, status))
                    finally:
                        await fetcher.close()
        finally:
            await client.close()
        return results

    results = run(close_and_fetch())
    for protocol, text in texts.items():
        want = expected(cluster, text, HOLDERS)
        assert all(r.close_to(want) for r in results[protocol]), protocol
    # B finalised both, checking every seed itself; A finalised nothing.
    assert cluster.tail(B, 400).count('"query finalised"') == 2
    assert '"query finalised"' not in cluster.tail(A, 400)


def _leader_links(cluster: ReplicaCluster) -> tuple[HelperLink, HelperLink]:
    """The leader's links to replica A and to replica B (its certificate, its config)."""
    config = load_config(cluster.workdir / "config" / "leader.toml")
    assert config.tls is not None
    ca, cert, key = load_own_identity(
        config.tls.ca, config.tls.cert, config.tls.key, role="leader", name="leader"
    )
    creds = grpc.ssl_channel_credentials(ca, key, cert)
    return tuple(  # type: ignore[return-value]
        HelperLink(HelperEndpoint(HELPER, cluster.replica_address(r)), config, creds)
        for r in (A, B)
    )


def _sealed(cluster: ReplicaCluster, query_id: str) -> list[bytes]:
    """The leader's stored sealed contributions of a query, sorted by holder."""
    with sqlite3.connect(cluster.workdir / "state" / "leader" / "pets.sqlite") as db:
        rows = db.execute(
            "SELECT sealed FROM contributions WHERE query_id = ? ORDER BY holder", (query_id,)
        ).fetchall()
    return [bytes(r[0]) for r in rows]


async def _share_bytes(cluster: ReplicaCluster, replica: str, query_id: str) -> bytes:
    """The helper's released share as ``replica`` streams it to the analyst."""
    endpoints = cluster.endpoints("analyst")
    connector = Connector(endpoints, "analyst")
    channel = connector.channel(cluster.replica_address(replica), "helper", HELPER)
    try:
        stub = pb_grpc.HelperStub(channel)
        call = stub.GetAggregate(pb.QueryRef(query_id=query_id), metadata=connector.metadata)
        return b"".join([chunk.SerializeToString() async for chunk in call])
    finally:
        await channel.close()


def test_finalize_on_two_replicas_at_once_releases_once_and_spends_once(
    make_replicas: Any,
) -> None:
    cluster = make_replicas([A])
    rho = Fraction(1, 8)
    text = f"sum(cost) from hospitals where age >= 65 clip [0, 5000] dp rho {float(rho)}"

    async def go() -> tuple[bytes, bytes]:
        client = analyst(cluster)
        try:
            sub = await client.submit(Query.parse(text), deadline_seconds=300)
            for holder in HOLDERS:
                await contribute(cluster, holder, sub.query_id)
        finally:
            await client.close()
        # Act as the leader: the same contributor set to both replicas at once.
        sealed = _sealed(cluster, sub.query_id)
        assert len(sealed) == len(HOLDERS)
        links = _leader_links(cluster)
        try:
            await asyncio.gather(*(link.finalize(sub.query_id, sealed, 60) for link in links))
            # A retry on either is answered from the stored result.
            await links[0].finalize(sub.query_id, sealed, 60)
        finally:
            for link in links:
                await link.close()
        return (
            await _share_bytes(cluster, A, sub.query_id),
            await _share_bytes(cluster, B, sub.query_id),
        )

    share_a, share_b = run(go())
    assert share_a == share_b and share_a  # one stored (noisy) share, served by both
    with psycopg.connect(cluster.state_urls[HELPER]) as db:
        (state,) = db.execute("SELECT state FROM queries").fetchone()  # type: ignore[misc]
        filters = [json.loads(r[0]) for r in db.execute("SELECT filter FROM privacy_budgets")]
    assert state == pb.QUERY_STATE_READY
    assert len(filters) == 1 and filters[0]["releases"] == 1
    assert Fraction(filters[0]["spent_rho"]) == rho
    released = sum(cluster.tail(r, 400).count('"noisy share released"') for r in (A, B))
    assert released == 1


def test_a_killed_replica_leaves_the_query_to_the_other(make_replicas: Any) -> None:
    cluster = make_replicas(None)  # the leader lists both replicas
    text = "count() from hospitals where age >= 40 group by sex"

    async def go() -> tuple[pb.QueryStatus, Any]:
        client = analyst(cluster)
        try:
            sub = await client.submit(Query.parse(text), deadline_seconds=120)
            for holder in HOLDERS[:2]:
                await contribute(cluster, holder, sub.query_id)
            cluster.kill(A)  # SIGKILL, while the query is open
            await contribute(cluster, HOLDERS[2], sub.query_id)
            await client.close_query(sub.query_id)
            status = await asyncio.wait_for(client.wait(sub.query_id), 60)
            return status, await client.fetch(sub, status)
        finally:
            await client.close()

    status, result = run(go())
    assert status.state == pb.QUERY_STATE_READY, status.failure_detail
    assert status.contributors == len(HOLDERS)
    assert result.close_to(expected(cluster, text, HOLDERS))
    assert '"query finalised"' in cluster.tail(B, 400)


def test_the_replica_that_loses_the_finish_returns_the_winners_result(
    tmp_path: Path,
    datasets: dict[str, Any],
    postgres_server: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two in-process replicas (real gRPC servers, one database) both compute a DP
    release of the same set and reach the store's finish together (a barrier holds
    the first until the second arrives): one commits, the other stores nothing,
    spends nothing and answers with the winner's share."""
    url = server_databases(postgres_server, ["helper_race"])["helper_race"]
    schema = datasets["schema"]
    (tmp_path / "schema.toml").write_text(schema.to_toml())
    rho = Fraction(1, 8)
    query = Query.parse(f"sum(cost) from hospitals clip [0, 5000] dp rho {float(rho)}")
    plan = compile_query(query, schema)
    spec = pb.QuerySpec(query_json=query.to_json(), protocol=pb.PROTOCOL_ADDITIVE)
    query_id = "q-00000000000000bb"

    arrived: list[str] = []
    both = asyncio.Event()
    finish = PostgresStore.finish_query_spending

    async def finish_together(self: PostgresStore, *args: Any, **kwargs: Any) -> None:
        arrived.append(args[0].id)
        if len(arrived) == 2:
            both.set()
        await asyncio.wait_for(both.wait(), 30)
        await finish(self, *args, **kwargs)

    monkeypatch.setattr(PostgresStore, "finish_query_spending", finish_together)

    async def go() -> tuple[list[bytes], list[int]]:
        config = ServerConfig(
            role="helper",
            name=HELPER,
            listen="127.0.0.1:0",
            state_dir=tmp_path,
            min_holders=1,
            tls=None,
            schema=tmp_path / "schema.toml",
            state_url=url,
        )
        servers = [Server(config) for _ in range(2)]
        ports = [await s.start() for s in servers]
        leader = replace(config, role="leader", name="leader", state_url=None)
        links = [HelperLink(HelperEndpoint(HELPER, f"127.0.0.1:{p}"), leader, None) for p in ports]
        try:
            key = await links[0].register(
                pb.RegisterQueryRequest(
                    query_id=query_id,
                    spec=spec,
                    analyst="alice",
                    vector_length=plan.length,
                    deadline_unix=time.time() + 600,
                    min_holders=1,
                    fingerprint=plan.fingerprint(),
                )
            )
            seal_key = seal.load_public_key(key.seal_public_key)
            items = [
                pb.SealedContribution(
                    holder=f"h{i}",
                    seeds=[
                        pb.SealedSeed(
                            helper=HELPER,
                            sealed=seal.seal(
                                os.urandom(32),
                                seal_key,
                                seal.SeedContext(query_id, plan.fingerprint(), f"h{i}", HELPER),
                            ),
                        )
                    ],
                ).SerializeToString()
                for i in range(3)
            ]
            await asyncio.gather(*(link.finalize(query_id, items, 60) for link in links))
            shares = []
            for p in ports:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{p}") as channel:
                    call = pb_grpc.HelperStub(channel).GetAggregate(
                        pb.QueryRef(query_id=query_id),
                        metadata=((INSECURE_IDENTITY_HEADER, "analyst/alice"),),
                    )
                    shares.append(b"".join([m.SerializeToString() async for m in call]))
            return shares, ports
        finally:
            for link in links:
                await link.close()
            for s in servers:
                await s.stop()

    shares, _ = run(go())
    assert arrived == [query_id, query_id]  # both computed a release and tried to store it
    assert shares[0] == shares[1] and shares[0]
    with psycopg.connect(url) as db:
        filters = [json.loads(r[0]) for r in db.execute("SELECT filter FROM privacy_budgets")]
    assert len(filters) == 1 and filters[0]["releases"] == 1
    assert Fraction(filters[0]["spent_rho"]) == rho
