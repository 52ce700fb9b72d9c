"""A node answers one analyst's same query once a day, across restarts (issue 15, 1 and 21).

The differencing attack of issue 15: the analyst asks ``sum(cost)`` once,
then the same query again hoping for another contributor set, to learn a
missing holder's total from the difference. With real node processes (one of
them killed and restarted in between), the second query gets no answer from
any node; every node says so in its log, and ``pets node history`` lists both
decisions from the node's own state, with no values.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from pets.query import Query
from pets.v1 import aggregation_pb2 as pb
from tests.integration.conftest import HOLDERS, analyst, run

TEXT = "sum(cost) from hospitals"


async def _ask(cluster, name: str, **options):  # type: ignore[no-untyped-def]
    client = analyst(cluster, name)
    try:
        return await client.run(Query.parse(TEXT), **options)
    finally:
        await client.close()


def _restart_node(cluster, name: str) -> None:  # type: ignore[no-untyped-def]
    cluster.kill(name, signal.SIGKILL)
    before = cluster.processes[name].log.read_text().count('"watching leader"')
    cluster.start_node(name)
    deadline = time.monotonic() + 30
    while cluster.processes[name].log.read_text().count('"watching leader"') <= before:
        assert time.monotonic() < deadline, cluster.tail(name)
        time.sleep(0.05)


def test_the_same_query_again_gets_no_answer_even_after_a_node_restart(make_cluster) -> None:
    cluster = make_cluster(nodes=True)
    cluster.wait_nodes_ready()
    first = run(_ask(cluster, "analyst", close_after=HOLDERS, deadline_seconds=60))
    assert first.status.state == pb.QUERY_STATE_READY
    assert first.status.contributors == HOLDERS

    _restart_node(cluster, "org-1")  # the limit lives in the node's state, not its memory
    # (The servers refuse a different close_after for a recently released query; the
    # nodes' own limit refuses the same query again whatever the close rule.)
    second = run(_ask(cluster, "analyst", deadline_seconds=4))
    assert second.result is None
    assert second.status.contributors == 0  # no node answered: nothing to difference
    for name in cluster.holder_data:
        assert "answer limit" in cluster.tail(name, 50), cluster.tail(name, 50)

    # Another analyst's first time is answered (the limit is per analyst).
    other = run(_ask(cluster, "mallory", close_after=HOLDERS, deadline_seconds=60))
    assert other.status.state == pb.QUERY_STATE_READY

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pets",
            "node",
            "history",
            "--config",
            str(cluster.workdir / "config" / "org-1.toml"),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    history = {e["query_id"]: e for e in map(json.loads, out.stdout.splitlines())}
    ids = (first.status.query_id, second.status.query_id, other.status.query_id)
    assert [history[q]["outcome"] for q in ids] == ["answered", "refused", "answered"]
    assert "answer limit" in history[second.status.query_id]["reason"]
    assert history[first.status.query_id]["analyst"] == "analyst"
    assert all(
        set(e) == {"query_id", "analyst", "query", "outcome", "reason", "at"}
        for e in history.values()
    )
