"""Vectors larger than one chunk: streamed in chunks, summed exactly (odd chunk sizes too)."""

from __future__ import annotations

import asyncio

import numpy as np

from pets.client.analyst import AnalystClient
from pets.client.connect import Connector
from pets.client.holder import HolderClient
from pets.devtools.localcluster import LocalCluster
from pets.identity.certificates import Role
from pets.query import Query, Schema
from pets.v1 import aggregation_pb2 as pb

from .conftest import announcement

LENGTH = 300_000  # 2.4 MB: three chunks
SCHEMA = f"""
[datasets.gradients]
kind = "vector"
length = {LENGTH}
lo = -1000.0
hi = 1000.0
scale = 1000
"""


def test_multi_chunk_contributions(tmp_path) -> None:
    cluster = LocalCluster(
        workdir=tmp_path,
        schema=Schema.from_toml(SCHEMA),
        min_holders=2,
        limits={"finalize_timeout_seconds": 10},
    )
    cluster.prepare()
    holders = ["h1", "h2", "h3"]
    for name in holders:
        cluster.issue(Role.HOLDER, name)
    cluster.start_servers()
    vectors = [np.arange(LENGTH, dtype=np.int64) % 1000 * (i + 1) for i in range(3)]
    try:

        async def go():  # type: ignore[no-untyped-def]
            analyst = AnalystClient(cluster.endpoints("analyst"))
            submitted = await analyst.submit(
                Query.parse("vector_sum() from gradients"), deadline_seconds=60, close_after=3
            )
            clients = [HolderClient(Connector(cluster.endpoints(n), "holder")) for n in holders]
            ann = await announcement(clients[0], submitted.query_id)
            acks = await asyncio.gather(
                *(
                    c.contribute_additive(ann, v.astype(np.uint64))
                    for c, v in zip(clients, vectors, strict=True)
                )
            )
            status = await analyst.wait(submitted.query_id)
            result = await analyst.fetch(submitted, status)
            for c in clients:
                await c.close()
            await analyst.close()
            return acks, status, result

        acks, status, result = asyncio.run(go())
    finally:
        cluster.stop()
    assert all(a.newly_accepted for a in acks)
    assert status.state == pb.QUERY_STATE_READY
    got = np.asarray(result.rows[0]["vector"])
    # The holders sent fixed-point integers directly; decoding divided by the scale.
    assert np.array_equal(np.rint(got * 1000), sum(vectors))
