"""A node the leader refuses stops with a clear error instead of retrying (issue 15, 10).

Certificates of the wrong role or name are caught at start-up
(tests/integration/test_cli_errors.py). Here the leader itself refuses the
node's identity (an ``--insecure`` cluster, where the node claims to be an
analyst): the node must stop on PERMISSION_DENIED, not log "leader
unreachable, retrying" forever.
"""

from __future__ import annotations

import asyncio

import pytest

from pets.client.config import load_node_config
from pets.client.node import Node
from pets.errors import PermissionDeniedError
from pets.transport.wire import INSECURE_IDENTITY_HEADER


def test_node_refused_by_the_leader_stops(make_cluster, caplog: pytest.LogCaptureFixture) -> None:
    cluster = make_cluster(insecure=True)
    config = load_node_config(cluster.node_config("org-1"), insecure=True)

    async def go() -> None:
        node = Node(config)
        node.connector.metadata = ((INSECURE_IDENTITY_HEADER, "analyst/org-1"),)
        stop = asyncio.Event()
        await asyncio.wait_for(node.run(stop), timeout=60)

    with pytest.raises(PermissionDeniedError, match="the leader refused this node"):
        asyncio.run(go())
    assert "leader unreachable, retrying" not in caplog.text
