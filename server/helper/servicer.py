"""The helper's gRPC servicer: authenticate the leader (or analyst), delegate, encode."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator

import grpc

from pets.errors import NotFoundError, NotReadyError
from pets.identity.certificates import Role
from pets.server.config import ServerConfig
from pets.server.helper import seal_key
from pets.server.helper.linkage import HelperLinkage
from pets.server.helper.queries import HelperQueries, HelperQuery, log
from pets.server.helper.replicas import follow_changes
from pets.server.helper.streams import read_contributors
from pets.server.metrics import ServerMetrics
from pets.server.query_state import OPEN, READY
from pets.server.rpc import aggregate_chunks, caller, require, streaming, unary
from pets.server.store import Store
from pets.v1 import aggregation_pb2 as pb
from pets.v1 import aggregation_pb2_grpc as pb_grpc


class Helper(pb_grpc.HelperServicer):
    """The helper's gRPC servicer."""

    def __init__(
        self, config: ServerConfig, store: Store, metrics: ServerMetrics | None = None
    ) -> None:
        self.config = config
        self.store = store
        self.metrics = metrics if metrics is not None else ServerMetrics()
        self._insecure = config.tls is None
        self._queries = HelperQueries(config, store)
        self._linkage = HelperLinkage(self._queries)  # record linkage (issue 16)
        self.metrics.count_open_queries(
            lambda: sum(1 for q in list(self.queries.values()) if q.record.state == OPEN)
        )
        self._key_statement: seal_key.KeyStatement | None = None
        self._follower: asyncio.Task[None] | None = None

    @property
    def queries(self) -> dict[str, HelperQuery]:
        return self._queries.queries

    async def start(self) -> None:
        key = await seal_key.load_or_create(self.store)
        self._key_statement = seal_key.KeyStatement(self.config, key)
        await self._queries.load(key)
        # Replicas (issue 14): drop what queries finished by another replica no longer need.
        self._follower = asyncio.ensure_future(follow_changes(self._queries))
        log.info("helper started", extra={"queries": len(self.queries)})

    async def stop(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
        self._queries.stop()

    def _current_key_statement(self) -> pb.HelperKey | None:
        """The seal-key statement, re-signed when it has grown old (seal_key.KeyStatement)."""
        return None if self._key_statement is None else self._key_statement.current()

    def _from_leader(self, context: grpc.aio.ServicerContext, action: str) -> None:
        require(caller(context, insecure=self._insecure), [Role.LEADER], action)

    @unary
    async def GetInfo(
        self, request: pb.HelperInfoRequest, context: grpc.aio.ServicerContext
    ) -> pb.HelperInfo:
        self._from_leader(context, "read helper info")
        return pb.HelperInfo(name=self.config.name, seal_key=self._current_key_statement())

    @unary
    async def RegisterQuery(
        self, request: pb.RegisterQueryRequest, context: grpc.aio.ServicerContext
    ) -> pb.RegisterQueryResponse:
        self._from_leader(context, "register queries")
        await self._queries.register(request)
        return pb.RegisterQueryResponse(seal_key=self._current_key_statement())

    @unary
    async def Prepare(
        self,
        request_iterator: AsyncIterator[pb.FinalizeMessage],
        context: grpc.aio.ServicerContext,
    ) -> pb.PrepareResponse:
        """Check and open the seeds of contributions the leader is about to commit.

        Each holder's certificate (against the project CA) and signature are
        checked and its seed opened; accepted seeds are kept (in memory) for
        Finalize, refused holders are named with the reason. The leader
        commits only what every helper accepted.
        """
        self._from_leader(context, "prepare queries")
        header, items = await read_contributors(request_iterator)
        q = await self._queries.get(header.query_id)
        # The work belongs to the helper, not to this call: a caller that gives up
        # never leaves the accepted seeds half-updated.
        shares: dict[str, bytes] = {}  # Prio3: this helper's verifier shares
        refused = await asyncio.shield(
            asyncio.ensure_future(self._queries.prepare(q, items, shares))
        )
        self.metrics.prepares.labels("accepted").inc(len(items) - len(refused))
        self.metrics.prepares.labels("refused").inc(len(refused))
        return pb.PrepareResponse(
            query_id=q.record.id,
            refused=[pb.Refusal(holder=h, reason=r) for h, r in refused],
            accepted=len(items) - len(refused),
            verifier_shares=[pb.VerifierShare(holder=h, share=v) for h, v in shares.items()],
        )

    @unary
    async def Finalize(
        self,
        request_iterator: AsyncIterator[pb.FinalizeMessage],
        context: grpc.aio.ServicerContext,
    ) -> pb.FinalizeResponse:
        self._from_leader(context, "finalise queries")
        header, items = await read_contributors(request_iterator)
        q = await self._queries.get(header.query_id)
        if header.abort:
            await self._queries.abort(q)
            return pb.FinalizeResponse(query_id=q.record.id)
        await self._queries.finalise(q, items)
        self.metrics.finalisations.labels("finalised").inc()  # per call: retries join one
        return pb.FinalizeResponse(query_id=q.record.id, contributors=len(items))

    @streaming
    async def LinkageEvaluate(
        self,
        request_iterator: AsyncIterator[pb.LinkageBatchChunk],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.LinkageEvaluation]:
        """Record linkage: apply k_H to a holder's batch (server/helper/linkage.py)."""
        self._from_leader(context, "evaluate linkage batches")
        async for answer in self._linkage.evaluate(request_iterator):
            yield answer

    @unary
    async def LinkageJoin(
        self,
        request_iterator: AsyncIterator[pb.LinkageJoinMessage],
        context: grpc.aio.ServicerContext,
    ) -> pb.LinkageJoinResponse:
        """Record linkage: join, compare digests, check the floor (server/helper/linkage.py)."""
        self._from_leader(context, "join linked queries")
        return await self._linkage.join(request_iterator)

    @streaming
    async def GetAggregate(
        self, request: pb.QueryRef, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        peer = caller(context, insecure=self._insecure)
        require(peer, [Role.ANALYST], "read query results")
        q = await self._queries.find(request.query_id)
        if q is None or not hmac.compare_digest(q.record.analyst.encode(), peer.name.encode()):
            raise NotFoundError(f"no query {request.query_id!r}")
        # Finalised here, or (replicas) through another replica: the stored share.
        rec = await self._queries.refresh(q)
        if rec.state != READY:
            raise NotReadyError(f"query {rec.id} is not finalised on helper {self.config.name}")
        data = await self.store.get_aggregate(rec.id)
        assert data is not None
        header = pb.AggregateHeader(
            query_id=rec.id,
            server=self.config.name,
            protocol=q.protocol.wire_id,
            contributors=len(rec.contributors),
            payload_bytes=len(data),  # the count only: analysts never learn the names
        )
        log.info("aggregate released", extra={"query_id": rec.id, "analyst": peer.name})
        for chunk in aggregate_chunks(header, data):
            yield chunk
