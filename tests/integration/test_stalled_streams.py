"""One holder stalling contribution streams cannot keep others out (issue 15, item 4).

The red-team attack, against a real leader over mutual TLS: one holder
certificate opens a ``Contribute`` stream on each of 16 open queries (as many
as the leader receives at once), sends the header and 1 KiB, and stalls. An
honest holder's 200,000-value contribution must still be accepted: the
stalling holder gets at most ``max_streams_per_holder`` streams (the rest are
refused at once), and a stream silent for ``contribution_idle_timeout_seconds``
is dropped.
"""

from __future__ import annotations

import asyncio

import grpc
import numpy as np

from pets.client.analyst import AnalystClient
from pets.client.connect import Connector
from pets.client.holder import HolderClient
from pets.devtools.localcluster import LocalCluster
from pets.identity.certificates import Role
from pets.protocols.additive import AdditiveProtocol
from pets.query import Query, Schema
from pets.transport import wire

from .conftest import announcement

LENGTH = 200_000
QUERIES = 16
SCHEMA = f"""
[datasets.gradients]
kind = "vector"
length = {LENGTH}
lo = -1000.0
hi = 1000.0
scale = 1000
"""
# A liveness bound for the honest contribution, far above what it needs (about
# a second) and far below what the attack cost it (the 300 s stream timeout).
HONEST_BOUND_SECONDS = 60.0


async def _stall(client: HolderClient, query_id: str, forever: asyncio.Event) -> tuple[str, str]:
    """Open a contribution stream, send its header and 1 KiB, then send nothing."""
    ann = await announcement(client, query_id)
    vector = np.zeros(LENGTH, dtype=np.uint64)
    contribution = await AdditiveProtocol().contribute_ring(
        ann, vector, seed_key=None, sealer=client.seal_seeds
    )
    header = wire.pb.ContributionHeader(
        query_id=query_id,
        payload_bytes=len(contribution.payload),
        contribution_digest=contribution.digest,
        sealed_seeds=list(contribution.sealed_seeds),
    )
    first = wire.encode_chunk(header, memoryview(contribution.payload).cast("B")[:1024])

    async def messages():  # type: ignore[no-untyped-def]
        yield first
        await forever.wait()

    async with client.connector.leader_channel() as channel:
        call = channel.stream_unary("/pets.v1.Leader/Contribute", request_serializer=None)
        try:
            await call(messages(), metadata=client.connector.metadata, timeout=600)
        except grpc.aio.AioRpcError as exc:
            return exc.code().name, exc.details() or ""
    return "OK", ""


def test_stalled_streams_do_not_stop_an_honest_contribution(tmp_path) -> None:
    cluster = LocalCluster(
        workdir=tmp_path,
        schema=Schema.from_toml(SCHEMA),
        min_holders=1,
        limits={
            "finalize_timeout_seconds": 10,
            "max_concurrent_contributions": QUERIES,
            "max_streams_per_holder": 4,
            "contribution_idle_timeout_seconds": 5,
            "contribution_timeout_seconds": 300,
        },
    )
    cluster.prepare()
    for name in ("mallory", "honest"):
        cluster.issue(Role.HOLDER, name)
    cluster.start_servers()
    try:

        async def go():  # type: ignore[no-untyped-def]
            analyst = AnalystClient(cluster.endpoints("analyst"))
            queries = [
                (
                    await analyst.submit(
                        Query.parse("vector_sum() from gradients"), deadline_seconds=300
                    )
                ).query_id
                for _ in range(QUERIES)
            ]
            mallory = HolderClient(Connector(cluster.endpoints("mallory"), "holder"))
            honest = HolderClient(Connector(cluster.endpoints("honest"), "holder"))
            forever = asyncio.Event()
            stalled = [asyncio.create_task(_stall(mallory, q, forever)) for q in queries]
            await asyncio.sleep(1.0)  # let every stalled stream reach the leader
            ann = await announcement(honest, queries[0])
            vector = (np.arange(LENGTH) % 1000).astype(np.uint64)
            ack = await asyncio.wait_for(
                honest.contribute_additive(ann, vector), HONEST_BOUND_SECONDS
            )
            codes = await asyncio.gather(*stalled)
            await mallory.close()
            await honest.close()
            await analyst.close()
            return ack, codes

        ack, codes = asyncio.run(go())
    finally:
        cluster.stop()
    assert ack.newly_accepted
    # Every stalled stream was refused (past the cap) or dropped (idle): none lives on.
    assert [code for code, _ in codes] == ["UNAVAILABLE"] * QUERIES
    refused = [d for _, d in codes if "already has 4 contribution stream" in d]
    dropped = [d for _, d in codes if "sent nothing for 5 s" in d]
    assert (len(refused), len(dropped)) == (QUERIES - 4, 4)
