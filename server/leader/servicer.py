"""The leader's gRPC servicer: authenticate, decode, hand to a job, encode.

Each method checks the caller's role and delegates: admission
(:mod:`~pets.server.leader.admission`), opening and finishing queries
(:mod:`~pets.server.leader.lifecycle`), contributions
(:mod:`~pets.server.leader.intake`, then :mod:`~pets.server.leader.batching`),
announcements and status (:mod:`~pets.server.leader.announcements`).
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import AsyncIterator, Callable, Sequence

import grpc

from pets.errors import InvalidInputError, NotFoundError, NotReadyError
from pets.identity.certificates import Peer, Role
from pets.query import Schema
from pets.server.config import ServerConfig
from pets.server.leader.admission import admit
from pets.server.leader.announcements import Announcer
from pets.server.leader.batching import Batching
from pets.server.leader.intake import Intake
from pets.server.leader.lifecycle import Lifecycle
from pets.server.leader.state import HelperPort, LeaderState, QueryRuntime, log
from pets.server.leader.stream import ContributionStreams
from pets.server.metrics import ServerMetrics
from pets.server.query_state import OPEN, READY, TERMINAL
from pets.server.query_state import name as state_name
from pets.server.rpc import (
    aggregate_chunks,
    caller,
    caller_and_certificate,
    require,
    streaming,
    unary,
)
from pets.server.store import Store
from pets.v1 import aggregation_pb2 as pb
from pets.v1 import aggregation_pb2_grpc as pb_grpc


class Leader(pb_grpc.LeaderServicer):
    """The leader's gRPC servicer, composed of its jobs."""

    def __init__(
        self,
        config: ServerConfig,
        store: Store,
        schema: Schema,
        helpers: Sequence[HelperPort],
        *,
        presentation_checker: Callable[[Peer, bytes, bytes], list[str]] | None = None,
        ca_pem: bytes | None = None,
        clock: Callable[[], float] = time.time,
        metrics: ServerMetrics | None = None,
    ) -> None:
        self.state = LeaderState(config, store, schema, helpers, clock)
        self.metrics = metrics if metrics is not None else ServerMetrics()
        self.config = config
        self.presentation_checker = presentation_checker  # also serves the Verifier service
        self._insecure = self.state.insecure
        self._ca_pem = ca_pem
        self.announcer = Announcer(self.state)
        self.batching = Batching(self.state)
        self.lifecycle = Lifecycle(self.state, self.batching)
        self.intake = Intake(self.state, self.batching, close=self.lifecycle.close_until_done)
        self.intake.metrics = self.lifecycle.metrics = self.metrics
        self.streams = ContributionStreams(self.intake)  # ContributeStream calls
        prepare_round = self.batching.prepare_round
        prepare_round.on_prepared = lambda outcome, n: self.metrics.prepares.labels(outcome).inc(n)
        self.metrics.count_open_queries(
            lambda: sum(1 for rt in list(self.queries.values()) if rt.record.state == OPEN)
        )
        self._submitting: dict[str, int] = {}

    @property
    def queries(self) -> dict[str, QueryRuntime]:
        return self.state.queries

    # -- running ------------------------------------------------------------------
    async def start(self) -> None:
        """Load every query from the store and resume the open and closing ones."""
        resumed = await self.lifecycle.resume()
        self.batching.start(on_closed=self.lifecycle.start_finalise)
        self.lifecycle.go_on(resumed)
        log.info("leader started", extra={"queries": len(self.queries), "resumed": len(resumed)})

    def begin_shutdown(self) -> None:
        """End the long-lived streams so a graceful stop need not wait for them."""
        self.state.stopping = True
        self.announcer.shutdown()
        self.streams.shutdown()

    async def stop(self) -> None:
        self.begin_shutdown()
        tasks = [*self.state.tasks(), *(rt.deadline_task for rt in self.queries.values())]
        for task in tasks:
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in tasks if t is not None), return_exceptions=True)
        await self.batching.stop()
        for helper in self.state.helpers:
            await helper.close()

    async def close(self, query_id: str, reason: str) -> None:
        """Fix the contributor set of an open query (no-op if already closed)."""
        await self.batching.close(query_id, reason)

    def announcement(self, rt: QueryRuntime) -> pb.QueryAnnouncement:
        return self.announcer.announcement(rt)

    def _holder(self, context: grpc.aio.ServicerContext, action: str) -> tuple[Peer, bytes]:
        """The calling holder and its certificate (PERMISSION_DENIED for any other role)."""
        peer, certificate = caller_and_certificate(context, insecure=self._insecure)
        require(peer, [Role.HOLDER], action)
        return peer, certificate

    async def _owned(self, peer: Peer, query_id: str, action: str) -> QueryRuntime:
        require(peer, [Role.ANALYST], action)
        rt = await self.state.find(query_id, fresh=True)  # as another replica left it
        if not hmac.compare_digest(rt.record.analyst.encode(), peer.name.encode()):
            # Same message as for an unknown query: do not confirm it exists.
            raise NotFoundError(f"no query {query_id!r}")
        return rt

    # -- analysts -----------------------------------------------------------------
    @unary
    async def SubmitQuery(
        self, request: pb.SubmitQueryRequest, context: grpc.aio.ServicerContext
    ) -> pb.QueryStatus:
        peer = caller(context, insecure=self._insecure)
        require(peer, [Role.ANALYST], "submit queries")
        proven: list[str] = []
        if self.presentation_checker is not None:
            # Proof verification is CPU work: keep the event loop serving others.
            proven = await asyncio.to_thread(
                self.presentation_checker,
                peer,
                bytes(request.presentation),
                bytes(request.presentation_nonce),
            )
        open_queries = self._submitting.get(peer.name, 0) + sum(
            1
            for rt in self.queries.values()
            if rt.record.analyst == peer.name and rt.record.state not in TERMINAL
        )
        admission = admit(
            request.spec,
            peer,
            schema=self.state.schema,
            config=self.config,
            open_queries=open_queries,
            ca_pem=self._ca_pem,
        )
        # Reserved before the first await, so concurrent submissions count too.
        self._submitting[peer.name] = self._submitting.get(peer.name, 0) + 1
        try:
            rt = await self.lifecycle.open(peer, admission, proven)
        finally:
            self._submitting[peer.name] -= 1
            if not self._submitting[peer.name]:
                del self._submitting[peer.name]
        self.announcer.announce(rt)
        log.info(
            "query accepted",
            extra={
                "query_id": rt.record.id,
                "analyst": peer.name,
                "query": admission.query.describe(),
                "protocol": admission.protocol.name,
                "min_holders": admission.min_holders,
                "vector_length": admission.vector_length,
                "proven_predicates": proven,
            },
        )
        return self.announcer.status(rt)

    @unary
    async def GetQueryStatus(
        self, request: pb.QueryRef, context: grpc.aio.ServicerContext
    ) -> pb.QueryStatus:
        peer = caller(context, insecure=self._insecure)
        rt = await self._owned(peer, request.query_id, "read query status")
        return self.announcer.status(rt)

    @streaming
    async def WatchQueryStatus(
        self, request: pb.QueryRef, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.QueryStatus]:
        peer = caller(context, insecure=self._insecure)
        rt = await self._owned(peer, request.query_id, "follow query status")
        async for status in self.announcer.watch_status(rt):
            yield status

    @unary
    async def CloseQuery(
        self, request: pb.QueryRef, context: grpc.aio.ServicerContext
    ) -> pb.QueryStatus:
        peer = caller(context, insecure=self._insecure)
        rt = await self._owned(peer, request.query_id, "close queries")
        await self.batching.close(rt.record.id, "closed by analyst")
        return self.announcer.status(rt)

    @streaming
    async def GetAggregate(
        self, request: pb.QueryRef, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        peer = caller(context, insecure=self._insecure)
        rt = await self._owned(peer, request.query_id, "read query results")
        rec = rt.record
        if rec.state != READY:
            raise NotReadyError(
                f"query {rec.id} is {state_name(rec.state)}; aggregates are released only "
                "when it is READY"
            )
        data = await self.state.store.get_aggregate(rec.id)
        if data is None:  # READY implies at least min_holders >= 1 contributions
            raise NotReadyError(f"query {rec.id} has no aggregate")
        header = pb.AggregateHeader(
            query_id=rec.id,
            server=self.config.name,
            protocol=rt.spec.protocol,
            contributors=len(rec.contributors),
            payload_bytes=len(data),  # the count only: analysts never learn the names
        )
        log.info(
            "aggregate released",
            extra={"query_id": rec.id, "analyst": peer.name, "contributors": len(rec.contributors)},
        )
        for chunk in aggregate_chunks(header, data):
            yield chunk

    # -- holders ------------------------------------------------------------------
    @streaming
    async def WatchQueries(
        self, request: pb.WatchQueriesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.QueryAnnouncement]:
        peer = caller(context, insecure=self._insecure)
        require(peer, [Role.HOLDER], "watch for queries")
        log.info("holder watching", extra={"holder": peer.name})
        async for ann in self.announcer.watch(request.include_open):
            yield ann

    @unary
    async def Contribute(
        self,
        request_iterator: AsyncIterator[pb.ContributionChunk],
        context: grpc.aio.ServicerContext,
    ) -> pb.ContributionAck:
        stream = request_iterator.__aiter__()
        try:
            first = await stream.__anext__()
        except StopAsyncIteration:
            raise InvalidInputError("empty contribution stream: expected a header") from None
        peer, certificate = self._holder(context, "contribute")
        return await self.intake.contribute(peer, certificate, first, stream)

    @unary
    async def ContributeOne(
        self, request: pb.ContributionChunk, context: grpc.aio.ServicerContext
    ) -> pb.ContributionAck:
        peer, certificate = self._holder(context, "contribute")
        return await self.intake.contribute(peer, certificate, request, None)

    @streaming
    async def LinkageEvaluate(
        self,
        request_iterator: AsyncIterator[pb.LinkageBatchChunk],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.LinkageEvaluation]:
        """Record linkage: relay a holder's blinded batch (server/leader/linkage.py)."""
        peer, certificate = self._holder(context, "link records")
        async for answer in self.lifecycle.linkage.evaluate(peer, certificate, request_iterator):
            yield answer

    @streaming
    async def ContributeStream(
        self,
        request_iterator: AsyncIterator[pb.ContributionStreamRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.ContributionStreamResponse]:
        peer, certificate = self._holder(context, "contribute")
        async for response in self.streams.serve(peer, certificate, request_iterator):
            yield response
