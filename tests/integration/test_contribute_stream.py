"""``Leader.ContributeStream``: many contributions over one persistent stream (issue 14, item 4).

Real leader and helper processes over mutual TLS (:class:`LocalCluster`). The
server side is driven with raw stream calls, so each test controls exactly
which messages go on one stream; the node side through :class:`HolderClient`,
which sends one-message contributions on its persistent stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Sequence

import grpc
import numpy as np

from pets.client.config import Endpoints
from pets.client.connect import Connector
from pets.client.contribution_stream import ContributionStream, falls_back
from pets.client.holder import HolderClient
from pets.protocols.additive import AdditiveProtocol
from pets.query import Query
from pets.v1 import aggregation_pb2 as pb

from .conftest import analyst, announcement, holder_client, run

COUNT = Query.parse("count() from hospitals")
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT.value[0]


async def _submit(cluster, count: int) -> list[str]:  # type: ignore[no-untyped-def]
    client = analyst(cluster)
    try:
        return [(await client.submit(COUNT, deadline_seconds=120)).query_id for _ in range(count)]
    finally:
        await client.close()


async def _contributors(cluster, query_ids: Sequence[str]) -> list[int]:  # type: ignore[no-untyped-def]
    client = analyst(cluster)
    try:
        return [(await client.status(q)).contributors for q in query_ids]
    finally:
        await client.close()


async def _chunk(client: HolderClient, query_id: str) -> pb.ContributionChunk:
    """``client``'s whole contribution of ones to ``query_id``, as one message."""
    ann = await announcement(client, query_id)
    ones = np.ones(ann.vector_length, dtype=np.uint64)
    contribution = await AdditiveProtocol().contribute_ring(
        ann, ones, seed_key=b"k" * 32, sealer=client.seal_seeds
    )
    header = pb.ContributionHeader(
        query_id=query_id,
        payload_bytes=len(contribution.payload),
        contribution_digest=contribution.digest,
        sealed_seeds=list(contribution.sealed_seeds),
    )
    return pb.ContributionChunk(header=header, data=bytes(contribution.payload))


def _raw_stream(client: HolderClient) -> grpc.aio.StreamStreamMultiCallable:
    """ContributeStream taking already encoded requests (so a test can send garbage)."""
    return client._leader_channel.stream_stream(
        "/pets.v1.Leader/ContributeStream",
        request_serializer=None,
        response_deserializer=pb.ContributionStreamResponse.FromString,
    )


async def _exchange(
    client: HolderClient, requests: Sequence[bytes]
) -> dict[int, pb.ContributionStreamResponse]:
    """Send ``requests`` on one stream, one after the other's answer; the responses by
    sequence number."""
    call = _raw_stream(client)(metadata=client.connector.metadata, timeout=60)
    out: dict[int, pb.ContributionStreamResponse] = {}
    for raw in requests:
        await call.write(raw)
        response = await call.read()
        assert response is not grpc.aio.EOF
        out[response.sequence] = response
    await call.done_writing()
    assert await call.read() is grpc.aio.EOF
    assert await call.code() == grpc.StatusCode.OK
    return out


def _request(sequence: int, chunk: pb.ContributionChunk | None) -> bytes:
    request = pb.ContributionStreamRequest(sequence=sequence)
    if chunk is not None:
        request.contribution.CopyFrom(chunk)
    return request.SerializeToString()


def test_many_contributions_on_one_stream_each_counted_once(shared_cluster) -> None:
    """Twelve contributions in flight at once on one stream: all acknowledged, each
    counted once; the same contributions again are acknowledged as not new."""
    cluster = shared_cluster
    queries = run(_submit(cluster, 12))

    async def go() -> tuple[list[pb.ContributionStreamResponse], ...]:
        client = holder_client(cluster, "org-1")
        try:
            chunks = [await _chunk(client, q) for q in queries]

            async def requests(first: int) -> AsyncIterator[pb.ContributionStreamRequest]:
                for i, chunk in enumerate(chunks):
                    yield pb.ContributionStreamRequest(sequence=first + i, contribution=chunk)

            rounds = []
            for first in (1, 100):  # the second stream re-sends every contribution
                call = client.leader.ContributeStream(
                    requests(first), metadata=client.connector.metadata, timeout=60
                )
                rounds.append([r async for r in call])
            return tuple(rounds)
        finally:
            await client.close()

    first, again = run(go())
    assert sorted(r.sequence for r in first) == list(range(1, 13))
    assert sorted(r.sequence for r in again) == list(range(100, 112))
    assert all(r.HasField("ack") and r.ack.newly_accepted for r in first)
    assert all(r.HasField("ack") and not r.ack.newly_accepted for r in again)
    by_query = {r.ack.query_id: r.ack for r in first}
    assert sorted(by_query) == sorted(queries)
    assert all(ack.holder == "org-1" and ack.contributors == 1 for ack in by_query.values())
    assert run(_contributors(cluster, queries)) == [1] * len(queries)


def test_bad_messages_are_answered_and_the_stream_goes_on(shared_cluster) -> None:
    """A request without a contribution, one whose bytes do not parse and one of the
    wrong length each get INVALID_ARGUMENT under their own sequence number; a re-send
    is acknowledged as not new; the stream stays open for the good ones."""
    cluster = shared_cluster
    (query_id,) = run(_submit(cluster, 1))

    async def go() -> dict[int, pb.ContributionStreamResponse]:
        client = holder_client(cluster, "org-2")
        try:
            good = await _chunk(client, query_id)
            short = pb.ContributionChunk()
            short.CopyFrom(good)
            short.header.payload_bytes -= 8
            short.data = short.data[:-8]
            garbled = b"\x08\x05" + b"\x12\xff\xff\xff\xff\x0f"  # sequence 5, then a broken field
            return await _exchange(
                client,
                [
                    _request(3, None),
                    _request(4, short),
                    garbled,
                    _request(6, good),
                    _request(7, good),
                ],
            )
        finally:
            await client.close()

    out = run(go())
    for sequence in (3, 4, 5):
        assert out[sequence].WhichOneof("result") == "error"
        assert out[sequence].error.code == INVALID_ARGUMENT, out[sequence]
    assert "malformed" in out[5].error.message
    assert out[6].ack.newly_accepted and out[6].ack.contributors == 1
    assert out[7].HasField("ack") and not out[7].ack.newly_accepted
    assert run(_contributors(cluster, [query_id])) == [1]


def test_only_holders_may_open_a_contribution_stream(shared_cluster) -> None:
    cluster = shared_cluster
    (query_id,) = run(_submit(cluster, 1))

    async def go() -> tuple[grpc.StatusCode, str]:
        connector = Connector(cluster.endpoints("analyst"), "analyst")
        channel = connector.leader_channel()
        call = channel.stream_stream(
            "/pets.v1.Leader/ContributeStream",
            request_serializer=pb.ContributionStreamRequest.SerializeToString,
            response_deserializer=pb.ContributionStreamResponse.FromString,
        )(timeout=30)
        try:
            # The leader refuses the stream as it opens, before any request. (A request
            # written while the refusal is under way makes gRPC's client end the call
            # with a local INTERNAL "Internal error from Core" for its failed send, so
            # the test sends none and reads the leader's own status.)
            return await call.code(), await call.details()
        finally:
            await channel.close()

    code, details = run(go())
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert "only a holder may" in (details or "")
    assert run(_contributors(cluster, [query_id])) == [0]


def test_leader_killed_mid_stream_nothing_acknowledged_is_lost(make_cluster) -> None:
    """SIGKILL the leader while a holder's contributions are on its stream; restart it.
    The holder's client re-opens the stream and re-sends: every contribution ends up
    counted exactly once, those acknowledged before the kill included."""
    cluster = make_cluster()
    queries = run(_submit(cluster, 10))

    async def go() -> tuple[list[pb.ContributionAck], list[pb.ContributionAck]]:
        client = holder_client(cluster, "org-1")
        try:
            anns = [await announcement(client, q) for q in queries]
            ones = np.ones(anns[0].vector_length, dtype=np.uint64)
            before = [await client.contribute_additive(a, ones) for a in anns[:4]]
            loop = asyncio.get_running_loop()
            during = [asyncio.create_task(client.contribute_additive(a, ones)) for a in anns[4:]]
            await asyncio.sleep(0)  # on the stream, then the leader dies
            await loop.run_in_executor(None, cluster.kill, "leader", signal.SIGKILL)
            await asyncio.sleep(0.5)
            await loop.run_in_executor(None, cluster.restart_server, "leader")
            after = list(await asyncio.gather(*during))
            return before, after
        finally:
            await client.close()

    before, after = run(go())
    assert all(a.newly_accepted for a in before)
    assert {a.query_id for a in before + after} == set(queries)
    assert run(_contributors(cluster, queries)) == [1] * len(queries)


def test_node_falls_back_to_contribute_one_without_the_stream(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A leader that does not implement ContributeStream (UNIMPLEMENTED) still gets the
    contribution, by ContributeOne; the client stops asking for the stream meanwhile."""
    assert falls_back(grpc.StatusCode.UNIMPLEMENTED)
    assert not falls_back(grpc.StatusCode.UNAVAILABLE)
    assert not falls_back(grpc.StatusCode.INVALID_ARGUMENT)

    async def go() -> tuple[pb.ContributionAck, list[str], bool]:
        received: list[str] = []

        async def contribute_one(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            chunk = pb.ContributionChunk.FromString(request)
            received.append(chunk.header.query_id)
            return pb.ContributionAck(
                query_id=chunk.header.query_id, holder="h", newly_accepted=True, contributors=1
            ).SerializeToString()

        server = grpc.aio.server()
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "pets.v1.Leader",
                    {"ContributeOne": grpc.unary_unary_rpc_method_handler(contribute_one)},
                ),
            )
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        endpoints = Endpoints(
            name="h", leader=f"127.0.0.1:{port}", helpers={}, tls=None, schema=tmp_path / "s"
        )
        client = HolderClient(Connector(endpoints, "holder"))
        try:
            ack = await client.send_payload("q-1", bytes(8), b"d" * 32, deadline=time.time() + 30)
            return ack, received, client.streaming
        finally:
            await client.close()
            await server.stop(None)

    ack, received, stream_available = run(go())
    assert ack.newly_accepted and received == ["q-1"]
    assert not stream_available


def test_stream_client_reports_per_message_errors_like_calls(shared_cluster) -> None:
    """:class:`ContributionStream`: an answer carrying an error raises with its code
    and message (what the retry loop and ``error_for`` read); the stream stays usable."""
    cluster = shared_cluster
    (query_id,) = run(_submit(cluster, 1))

    async def go() -> tuple[grpc.StatusCode, pb.ContributionAck]:
        client = holder_client(cluster, "org-4")
        stream = ContributionStream(client._leader_channel, client.connector.metadata)
        try:
            good = await _chunk(client, query_id)
            bad = pb.ContributionChunk()
            bad.CopyFrom(good)
            bad.header.contribution_digest = b"short"
            try:
                await stream.contribute(bad, timeout=30)
            except grpc.RpcError as exc:
                code = exc.code()
            else:
                raise AssertionError("a short digest was accepted")
            return code, await stream.contribute(good, timeout=30)
        finally:
            await stream.close()
            await client.close()

    code, ack = run(go())
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert ack.newly_accepted and ack.holder == "org-4"


def test_leader_shutdown_ends_open_streams_cleanly(make_cluster) -> None:
    """SIGTERM: the leader answers what it took and ends an idle stream with OK
    (instead of keeping the stop waiting for its grace period); it exits 0."""
    cluster = make_cluster()
    (query_id,) = run(_submit(cluster, 1))

    async def go() -> tuple[pb.ContributionStreamResponse, object, grpc.StatusCode]:
        client = holder_client(cluster, "org-1")
        try:
            chunk = await _chunk(client, query_id)
            call = _raw_stream(client)(metadata=client.connector.metadata, timeout=60)
            await call.write(_request(1, chunk))
            answer = await call.read()
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, cluster.processes["leader"].signal, signal.SIGTERM)
            end = await call.read()
            return answer, end, await call.code()
        finally:
            await client.close()

    answer, end, code = run(go())
    assert answer.ack.newly_accepted
    assert end is grpc.aio.EOF and code == grpc.StatusCode.OK
    assert cluster.processes["leader"].wait(15) == 0


def test_each_stream_message_is_counted_by_its_answer(make_cluster) -> None:
    """``pets_rpcs`` counts the stream once and each of its requests by its answer's code."""
    from .test_metrics import METRICS_TOML, metrics_port, scrape

    cluster = make_cluster(leader_extra_toml=METRICS_TOML)
    (query_id,) = run(_submit(cluster, 1))

    async def go() -> dict[int, pb.ContributionStreamResponse]:
        client = holder_client(cluster, "org-1")
        try:
            good = await _chunk(client, query_id)
            return await _exchange(client, [_request(1, good), _request(2, None)])
        finally:
            await client.close()

    out = run(go())
    assert out[1].HasField("ack") and out[2].HasField("error")
    samples = scrape(metrics_port(cluster.processes["leader"].log))
    rpc = "pets_rpcs_total"
    message = "pets.v1.Leader/ContributeStream.message"
    assert samples[(rpc, (("code", "OK"), ("method", message)))] == 1
    assert samples[(rpc, (("code", "INVALID_ARGUMENT"), ("method", message)))] == 1
    assert samples[(rpc, (("code", "OK"), ("method", "pets.v1.Leader/ContributeStream")))] == 1
    assert samples[("pets_contribution_seconds_count", ())] == 1


class FakeLeader:
    """A bare gRPC server with only ``ContributeStream``: it acknowledges every
    contribution except those to ``q-silent``, which it never answers."""

    def __init__(self) -> None:
        self.streams = 0
        self.server = grpc.aio.server()
        self.server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "pets.v1.Leader",
                    {"ContributeStream": grpc.stream_stream_rpc_method_handler(self._stream)},
                ),
            )
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    @contextlib.asynccontextmanager
    async def stream(self) -> AsyncIterator[ContributionStream]:
        """This leader serving, and a holder's contribution stream to it (closed after)."""
        await self.server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.port}")
        stream = ContributionStream(channel)
        try:
            yield stream
        finally:
            await stream.close()
            await channel.close()
            await self.server.stop(None)

    async def _stream(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        self.streams += 1
        async for raw in requests:
            request = pb.ContributionStreamRequest.FromString(raw)
            query_id = request.contribution.header.query_id
            if query_id != "q-silent":
                yield pb.ContributionStreamResponse(
                    sequence=request.sequence,
                    ack=pb.ContributionAck(query_id=query_id, holder="h", newly_accepted=True),
                ).SerializeToString()


def _to(query_id: str) -> pb.ContributionChunk:
    return pb.ContributionChunk(header=pb.ContributionHeader(query_id=query_id))


async def _failure(coro) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    try:
        await coro
    except grpc.RpcError as exc:
        return exc.code()
    raise AssertionError("the contribution was acknowledged")


def test_a_message_past_its_deadline_fails_alone_and_the_stream_goes_on() -> None:
    """A contribution the leader never answers fails with DEADLINE_EXCEEDED after its own
    timeout (the retry loop re-sends it), without ending the stream: the next one on the
    same call is answered."""

    async def go() -> tuple[grpc.StatusCode, pb.ContributionAck, int]:
        leader = FakeLeader()
        async with leader.stream() as stream:
            code = await _failure(stream.contribute(_to("q-silent"), timeout=0.3))
            return code, await stream.contribute(_to("q-1"), timeout=30), leader.streams

    code, ack, streams = run(go())
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert ack.newly_accepted and streams == 1


def test_a_write_that_fails_unexpectedly_ends_the_stream_at_once() -> None:
    """If writing a message fails in a way gRPC does not report as the call's status,
    the stream is cancelled: the contribution fails now (not at its deadline) and the
    next one opens a new stream."""

    async def go() -> tuple[grpc.StatusCode, pb.ContributionAck, int]:
        leader = FakeLeader()
        async with leader.stream() as stream:
            await stream.contribute(_to("q-1"), timeout=30)
            session = stream._session
            assert session is not None

            async def broken(request: object) -> None:
                raise RuntimeError("not a gRPC failure")

            session.call.write = broken  # type: ignore[method-assign]
            code = await _failure(stream.contribute(_to("q-2"), timeout=30))
            return code, await stream.contribute(_to("q-3"), timeout=30), leader.streams

    code, ack, streams = run(asyncio.wait_for(go(), 20))
    assert code == grpc.StatusCode.CANCELLED
    assert ack.query_id == "q-3" and streams == 2
