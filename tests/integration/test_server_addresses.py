"""Several addresses per server (issue 14, item 2): real servers, real mutual TLS.

Holders and analysts list two addresses for the leader and for the helper, and the
leader two for its helper, one of each dead (nothing listens there). Their channels
spread calls with gRPC's ``round_robin`` and skip the dead address, so a whole
query (registration, Prepare, announcement, contributions, close, finalisation,
status, both shares) succeeds, and every replica's certificate is checked against
the server's name whatever address answered.
"""

from __future__ import annotations

import asyncio
import re
import socket
from dataclasses import replace
from pathlib import Path
from typing import Any

from pets.client.analyst import AnalystClient
from pets.client.config import Endpoints
from pets.client.connect import Connector
from pets.client.holder import HolderClient
from pets.devtools.localcluster import LocalCluster
from pets.query import Query
from pets.v1 import aggregation_pb2 as pb

from .conftest import contribute, expected, run


def dead_address() -> str:
    """A loopback address nothing listens on (a port just freed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def with_dead_replicas(cluster: LocalCluster, name: str) -> Endpoints:
    """``name``'s endpoints with a dead address before every server's real one."""
    real = cluster.endpoints(name)
    return replace(
        real,
        leader=f"{dead_address()},{real.leader}",
        helpers={h: f"{dead_address()},{a}" for h, a in real.helpers.items()},
    )


class DeadHelperReplicaCluster(LocalCluster):
    """A cluster whose leader lists a dead address before each helper's real one."""

    def _server_config(self, name: str, role: str) -> Path:
        path = super()._server_config(name, role)
        if role == "leader":
            text = re.sub(
                r'^address = "([^"]+)"$',
                lambda m: f'address = ["{dead_address()}", "{m.group(1)}"]',
                path.read_text(),
                flags=re.MULTILINE,
            )
            path.write_text(text)
        return path


async def _query_through_dead_addresses(cluster: LocalCluster, text: str) -> tuple[Any, Any]:
    client = AnalystClient(with_dead_replicas(cluster, "analyst"))
    try:
        submitted = await client.submit(Query.parse(text), deadline_seconds=60)
        for holder in ("org-1", "org-2", "org-3"):
            holder_client = HolderClient(Connector(with_dead_replicas(cluster, holder), "holder"))
            ack = await contribute(cluster, holder, submitted.query_id, holder_client)
            assert ack.query_id == submitted.query_id
        await client.close_query(submitted.query_id)
        status = await asyncio.wait_for(client.wait(submitted.query_id), 30)
        return status, await client.fetch(submitted, status)
    finally:
        await client.close()


def test_a_query_succeeds_with_one_of_two_addresses_dead(
    tmp_path: Path, datasets: dict[str, Any]
) -> None:
    cluster = DeadHelperReplicaCluster(
        workdir=tmp_path / "cluster",
        schema=datasets["schema"],
        holder_data=dict(datasets["holder_data"]),
        min_holders=2,
        limits={"finalize_timeout_seconds": 10},
    )
    cluster.prepare()
    cluster.start_servers()
    try:
        assert "address = [" in (tmp_path / "cluster" / "config" / "leader.toml").read_text()
        text = "sum(cost) from hospitals group by sex"
        status, result = run(_query_through_dead_addresses(cluster, text))
        assert status.state == pb.QUERY_STATE_READY and status.contributors == 3
        assert result.close_to(expected(cluster, text, ["org-1", "org-2", "org-3"]))
    finally:
        cluster.stop()
