"""The red-team differencing attack of issue 15, item 1, against real processes.

Four holders (node processes) answer ``sum(cost) from hospitals`` with
``close_after`` 4; the same query with ``close_after`` 3 would have differenced
one holder's exact total out of the two results. The leader refuses it at
submission (the release rule, pets.server.release_policy), the analyst never
learns who contributed, and the operator's log does.
"""

from __future__ import annotations

import json

from pets.errors import PetsError
from pets.query import Query
from pets.v1 import aggregation_pb2 as pb

from .conftest import HOLDERS, analyst, run

QUERY = Query.parse("sum(cost) from hospitals")


def test_close_after_one_holder_short_is_refused(make_cluster) -> None:  # type: ignore[no-untyped-def]
    cluster = make_cluster(nodes=True)

    async def go() -> tuple[object, str]:
        client = analyst(cluster)
        try:
            first = await client.run(QUERY, close_after=HOLDERS, deadline_seconds=30)
            try:
                await client.submit(QUERY, close_after=HOLDERS - 1, deadline_seconds=30)
                refusal = "accepted"
            except PetsError as exc:
                refusal = f"{type(exc).__name__}: {exc}"
            return first, refusal
        finally:
            await client.close()

    first, refusal = run(go())
    assert first.status.state == pb.QUERY_STATE_READY  # type: ignore[attr-defined]
    assert first.status.contributors == HOLDERS  # type: ignore[attr-defined]
    assert first.result is not None  # type: ignore[attr-defined]
    assert f"close_after {HOLDERS - 1} differs from the {HOLDERS} contributors" in refusal
    holders = [f"org-{i + 1}" for i in range(HOLDERS)]
    assert not any(h in refusal for h in holders)
    # The operator sees who contributed, in the leader's log.
    finished = [
        json.loads(line)
        for line in cluster.tail("leader", 400).splitlines()
        if line.startswith("{") and '"query finished"' in line
    ]
    assert finished and sorted(finished[-1]["contributor_names"]) == holders
