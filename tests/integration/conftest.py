"""Real deployments for the integration tests: processes, ports, TLS, SQLite.

Every cluster here runs ``python -m pets serve`` / ``pets node`` processes
on 127.0.0.1 with certificates from a fresh project CA, exactly as an
operator would. Tests drive holders either through real node processes or,
where a test needs precise control over what is sent, through the same
:class:`HolderClient` the node uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pets.client.analyst import AnalystClient
from pets.client.config import Endpoints
from pets.client.connect import Connector
from pets.client.holder import HolderClient
from pets.client.node import load_table
from pets.devtools.datafiles import merge_schemas, write_data
from pets.devtools.datagen import generate
from pets.devtools.localcluster import LocalCluster
from pets.query import Query, Table, plaintext
from pets.query import compile as compile_query
from pets.v1 import aggregation_pb2 as pb

HOLDERS = 4
ROWS = 120


@pytest.fixture(scope="session")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Synthetic hospital and supply-chain data for HOLDERS holders, on disk."""
    root = tmp_path_factory.mktemp("data")
    hospitals = generate("hospitals", HOLDERS, ROWS, 7)
    supply = generate("supply_chain", HOLDERS, ROWS, 8)
    h = write_data(hospitals, root)
    s = write_data(supply, root)
    holder_data = {
        f"org-{i + 1}": {**a, **b}
        for i, (a, b) in enumerate(zip(h.values(), s.values(), strict=True))
    }
    return {"schema": merge_schemas(hospitals.schema, supply.schema), "holder_data": holder_data}


ClusterFactory = Callable[..., LocalCluster]


@pytest.fixture
def make_cluster(tmp_path: Path, datasets: dict[str, Any]) -> Iterator[ClusterFactory]:
    """Start a cluster (servers, and nodes if asked); stopped after the test."""
    clusters: list[LocalCluster] = []

    def factory(*, nodes: bool = False, **options: Any) -> LocalCluster:
        options.setdefault("min_holders", 2)
        options.setdefault("limits", {"finalize_timeout_seconds": 3})
        cluster = LocalCluster(
            workdir=tmp_path / f"cluster{len(clusters)}",
            schema=datasets["schema"],
            holder_data=dict(datasets["holder_data"]),
            **options,
        )
        clusters.append(cluster)
        cluster.prepare(analysts=("analyst", "mallory"))
        cluster.start_servers()
        if nodes:
            cluster.start_nodes()
        return cluster

    yield factory
    for cluster in clusters:
        cluster.stop()


@pytest.fixture(scope="module")
def shared_cluster(
    tmp_path_factory: pytest.TempPathFactory, datasets: dict[str, Any]
) -> Iterator[LocalCluster]:
    """One leader + one helper, no nodes, shared by a module's read-mostly tests."""
    cluster = LocalCluster(
        workdir=tmp_path_factory.mktemp("shared"),
        schema=datasets["schema"],
        holder_data=dict(datasets["holder_data"]),
        min_holders=2,
        limits={"finalize_timeout_seconds": 3},
    )
    cluster.prepare(analysts=("analyst", "mallory"))
    cluster.start_servers()
    yield cluster
    cluster.stop()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def holder_client(cluster: LocalCluster, name: str) -> HolderClient:
    endpoints = cluster.endpoints(name)
    return HolderClient(Connector(endpoints, "holder"))


def analyst(cluster: LocalCluster, name: str = "analyst") -> AnalystClient:
    return AnalystClient(cluster.endpoints(name))


def endpoints(cluster: LocalCluster, name: str) -> Endpoints:
    return cluster.endpoints(name)


async def query_status(cluster: LocalCluster, query_id: str) -> pb.QueryStatus:
    """The query's status, as its analyst sees it."""
    client = analyst(cluster)
    try:
        return await client.status(query_id)
    finally:
        await client.close()


async def announcement(client: HolderClient, query_id: str) -> pb.QueryAnnouncement:
    return await client.announcement(query_id)


def tables_for(
    cluster: LocalCluster, dataset: str, holders: list[str] | None = None
) -> list[Table]:
    names = holders or list(cluster.holder_data)
    return [load_table(cluster.schema, dataset, cluster.holder_data[n][dataset]) for n in names]


def expected(cluster: LocalCluster, text: str, holders: list[str] | None = None):  # type: ignore[no-untyped-def]
    query = Query.parse(text)
    plan = compile_query(query, cluster.schema)
    return plaintext(plan, tables_for(cluster, query.dataset, holders))


async def contribute(
    cluster: LocalCluster, holder: str, query_id: str, client: HolderClient | None = None
) -> pb.ContributionAck:
    """What a node does for one query: evaluate its own rows and deliver them (through
    ``client``, closed afterwards, if given; else a new client of ``holder``)."""
    from pets.query import evaluate

    client = client or holder_client(cluster, holder)
    try:
        ann = await announcement(client, query_id)
        plan = compile_query(Query.from_json(ann.spec.query_json), cluster.schema)
        table = tables_for(cluster, plan.query.dataset, [holder])[0]
        return await client.contribute(ann, plan, evaluate(plan, table))
    finally:
        await client.close()
