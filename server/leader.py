"""The leader: accepts queries, collects contributions, fixes the contributor set.

Flow of one query (DESIGN.md, "Two aggregation protocols"):

1. An analyst submits a query; the leader validates it against the shared
   schema, registers it with every helper (additive protocol) and announces
   it to the holders watching.
2. A holder hands each helper its seed and gets signed receipts back, then
   streams its masked vector (or its Paillier ciphertexts) to the leader with
   those receipts. The leader checks lengths, digest and receipts, then folds
   the payload into the running aggregate *in the same SQLite transaction*
   that records the holder; only then does it acknowledge. A contribution the
   leader accepted is therefore complete on every server.
3. At the deadline (or once ``close_after`` holders contributed, or when the
   analyst closes it) the leader fixes the contributor set, orders every
   helper to finalise over exactly that set, and marks the query READY, or
   FAILED when fewer than ``min_holders`` contributed or a helper could not
   finalise. Only READY queries release aggregates, only to their analyst.

All state changes that touch contributions go through one commit loop, so
contributions and closing are serialised without locks; the loop commits
whatever contributions are waiting in one transaction (group commit), which
keeps the cost of ``synchronous=FULL`` per batch, not per holder.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import grpc
from pets.server import protocols
from pets.server.aggregates import RunningAggregate
from pets.server.config import ServerConfig
from pets.server.peers import HelperLink
from pets.server.rpc import aggregate_chunks, caller, require, streaming, unary
from pets.server.storage import AsyncStore, ContributionRecord, QueryRecord

from pets import wire
from pets.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    NotReadyError,
    PetsError,
    UnavailableError,
)
from pets.identity import Peer, Role
from pets.query import Query, QueryPlan, Schema
from pets.query import compile as compile_query
from pets.v1 import aggregation_pb2 as pb
from pets.v1 import aggregation_pb2_grpc as pb_grpc

log = logging.getLogger("pets.server.leader")

OPEN, CLOSED, READY, FAILED = (
    pb.QUERY_STATE_OPEN,
    pb.QUERY_STATE_CLOSED,
    pb.QUERY_STATE_READY,
    pb.QUERY_STATE_FAILED,
)
TERMINAL = (READY, FAILED)
STATUS_HEARTBEAT_SECONDS = 1.0
MAX_BATCH = 512


@dataclass
class QueryRuntime:
    """A query's in-memory state on the leader."""

    record: QueryRecord
    spec: pb.QuerySpec
    plan: QueryPlan
    aggregate: RunningAggregate
    holders: dict[str, bytes] = field(default_factory=dict)
    version: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    finalizing: asyncio.Task | None = None
    deadline_task: asyncio.Task | None = None

    async def bump(self) -> None:
        async with self.changed:
            self.version += 1
            self.changed.notify_all()


@dataclass
class _Pending:
    """A validated contribution waiting for the commit loop."""

    query_id: str
    holder: str
    digest: bytes
    receipts: bytes
    parsed: object
    future: asyncio.Future = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass
class _Close:
    query_id: str
    reason: str
    future: asyncio.Future = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Leader(pb_grpc.LeaderServicer):
    """The leader's gRPC servicer and the query lifecycle it drives."""

    def __init__(
        self,
        config: ServerConfig,
        store: AsyncStore,
        schema: Schema,
        helpers: list[HelperLink],
        *,
        presentation_checker: Callable[[Peer, bytes, bytes], list[str]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.store = store
        self.schema = schema
        self.helpers = helpers
        self.clock = clock
        self._check_presentation = presentation_checker
        self.queries: dict[str, QueryRuntime] = {}
        self._queue: asyncio.Queue[_Pending | _Close] = asyncio.Queue()
        self._watchers: set[asyncio.Queue[pb.QueryAnnouncement]] = set()
        self._slots = asyncio.Semaphore(config.limits.max_concurrent_contributions)
        self._tasks: set[asyncio.Task] = set()
        self._commit_task: asyncio.Task | None = None
        self._insecure = config.tls is None

    # -- lifecycle ------------------------------------------------------------
    async def start(self) -> None:
        """Load every query from SQLite and resume the open and closing ones."""
        records = await self.store.run(self.store.store.load_queries)
        for rec in records:
            spec = pb.QuerySpec.FromString(rec.spec)
            plan = compile_query(Query.from_json(spec.query_json), self.schema)
            agg = protocols.running_aggregate(spec, rec.vector_length, plan)
            rt = QueryRuntime(record=rec, spec=spec, plan=plan, aggregate=agg)
            if rec.state in (OPEN, CLOSED):
                data = await self.store.run(self.store.store.get_aggregate, rec.id)
                if data is not None:
                    rt.aggregate = protocols.running_aggregate(spec, rec.vector_length, plan, data)
                rt.holders = await self.store.run(self.store.store.contributions, rec.id)
                rt.aggregate.count = len(rt.holders)
            self.queries[rec.id] = rt
        self._commit_task = asyncio.create_task(self._commit_loop(), name="leader-commit")
        resumed = 0
        for rt in self.queries.values():
            if rt.record.state == OPEN:
                self._schedule_deadline(rt)
                resumed += 1
            elif rt.record.state == CLOSED:
                self._start_finalize(rt)
                resumed += 1
        log.info("leader started", extra={"queries": len(self.queries), "resumed": resumed})

    async def stop(self) -> None:
        for task in [*self._tasks, self._commit_task]:
            if task is not None:
                task.cancel()
        for rt in self.queries.values():
            for task in (rt.deadline_task, rt.finalizing):
                if task is not None:
                    task.cancel()
        for watcher in self._watchers:
            watcher.put_nowait(None)  # type: ignore[arg-type]
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for helper in self.helpers:
            await helper.close()

    def _spawn(self, coro: object, name: str) -> asyncio.Task:
        task = asyncio.create_task(coro, name=name)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- queries ----------------------------------------------------------------
    def _runtime(self, query_id: str) -> QueryRuntime:
        rt = self.queries.get(query_id)
        if rt is None:
            raise NotFoundError(f"no query {query_id!r}")
        return rt

    def _owned(self, peer: Peer, query_id: str) -> QueryRuntime:
        require(peer, [Role.ANALYST], "read query results")
        rt = self._runtime(query_id)
        if not hmac.compare_digest(rt.record.analyst.encode(), peer.name.encode()):
            # Same message as for an unknown query: do not confirm it exists.
            raise NotFoundError(f"no query {query_id!r}")
        return rt

    def status(self, rt: QueryRuntime) -> pb.QueryStatus:
        r = rt.record
        return pb.QueryStatus(
            query_id=r.id,
            state=r.state,
            spec=rt.spec,
            analyst=r.analyst,
            contributors=len(r.contributors) if r.state != OPEN else len(rt.holders),
            min_holders=r.min_holders,
            deadline_unix=r.deadline,
            failure=r.failure,
            failure_detail=r.failure_detail,
            vector_length=r.vector_length,
            proven_predicates=list(r.proven_predicates),
        )

    def announcement(self, rt: QueryRuntime) -> pb.QueryAnnouncement:
        return pb.QueryAnnouncement(
            query_id=rt.record.id,
            spec=rt.spec,
            deadline_unix=rt.record.deadline,
            vector_length=rt.record.vector_length,
            helpers=[h.name for h in self.helpers]
            if rt.spec.protocol == pb.PROTOCOL_ADDITIVE
            else [],
            fingerprint=rt.record.fingerprint,
        )

    @unary
    async def SubmitQuery(
        self, request: pb.SubmitQueryRequest, context: grpc.aio.ServicerContext
    ) -> pb.QueryStatus:
        peer = caller(context, insecure=self._insecure)
        require(peer, [Role.ANALYST], "submit queries")
        proven: list[str] = []
        if self._check_presentation is not None:
            proven = self._check_presentation(
                peer, bytes(request.presentation), bytes(request.presentation_nonce)
            )
        spec = pb.QuerySpec()
        spec.CopyFrom(request.spec)
        if spec.protocol == pb.PROTOCOL_UNSPECIFIED:
            spec.protocol = pb.PROTOCOL_ADDITIVE
        try:
            query = Query.from_json(spec.query_json)
        except (ValueError, TypeError, KeyError) as exc:
            if isinstance(exc, PetsError):
                raise
            raise InvalidInputError(f"query_json is not a valid query: {exc}") from None
        plan = compile_query(query, self.schema)
        floor = self.config.min_holders
        if spec.min_holders and spec.min_holders < floor:
            raise InvalidInputError(
                f"min_holders {spec.min_holders} is below this server's floor of {floor}; "
                "a query may raise it, never lower it"
            )
        min_holders = max(floor, spec.min_holders)
        if plan.max_holders() < min_holders:
            raise InvalidInputError(
                f"the sum of {min_holders} holders' vectors for this query may exceed the 64-bit "
                f"ring (at most {plan.max_holders()} fit); narrow the bounds with a clip"
            )
        limits = self.config.limits
        deadline_s = spec.deadline_seconds or limits.default_deadline_seconds
        if not (math.isfinite(deadline_s) and 0 < deadline_s <= limits.max_deadline_seconds):
            raise InvalidInputError(
                f"deadline_seconds must be in (0, {limits.max_deadline_seconds}], got {deadline_s}"
            )
        vector_length = protocols.vector_length(spec, plan, min_holders)
        if vector_length > limits.max_vector_length:
            raise InvalidInputError(
                f"query needs vectors of {vector_length} values; this server accepts at most "
                f"{limits.max_vector_length}"
            )
        now = self.clock()
        record = QueryRecord(
            id="q-" + secrets.token_hex(8),
            analyst=peer.name,
            spec=spec.SerializeToString(),
            state=OPEN,
            created=now,
            deadline=now + deadline_s,
            min_holders=min_holders,
            vector_length=vector_length,
            proven_predicates=tuple(proven),
            fingerprint=plan.fingerprint(),
        )
        if spec.protocol == pb.PROTOCOL_ADDITIVE:
            register = pb.RegisterQueryRequest(
                query_id=record.id,
                spec=spec,
                analyst=record.analyst,
                vector_length=vector_length,
                deadline_unix=record.deadline,
                min_holders=min_holders,
            )
            await asyncio.gather(*(h.register(register) for h in self.helpers))
        await self.store.run(self.store.store.insert_query, record)
        rt = QueryRuntime(
            record=record,
            spec=spec,
            plan=plan,
            aggregate=protocols.running_aggregate(spec, vector_length, plan),
        )
        self.queries[record.id] = rt
        self._schedule_deadline(rt)
        ann = self.announcement(rt)
        for watcher in list(self._watchers):
            watcher.put_nowait(ann)
        log.info(
            "query accepted",
            extra={
                "query_id": record.id,
                "analyst": peer.name,
                "query": query.describe(),
                "protocol": pb.Protocol.Name(spec.protocol),
                "min_holders": min_holders,
                "vector_length": vector_length,
                "proven_predicates": proven,
            },
        )
        return self.status(rt)

    @unary
    async def GetQueryStatus(
        self, request: pb.QueryRef, context: grpc.aio.ServicerContext
    ) -> pb.QueryStatus:
        peer = caller(context, insecure=self._insecure)
        return self.status(self._owned(peer, request.query_id))

    @streaming
    async def WatchQueryStatus(
        self, request: pb.QueryRef, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.QueryStatus]:
        peer = caller(context, insecure=self._insecure)
        rt = self._owned(peer, request.query_id)
        while True:
            seen = rt.version
            yield self.status(rt)
            if rt.record.state in TERMINAL:
                return
            async with rt.changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        rt.changed.wait_for(lambda: rt.version != seen),  # noqa: B023
                        STATUS_HEARTBEAT_SECONDS,
                    )

    @unary
    async def CloseQuery(
        self, request: pb.QueryRef, context: grpc.aio.ServicerContext
    ) -> pb.QueryStatus:
        peer = caller(context, insecure=self._insecure)
        rt = self._owned(peer, request.query_id)
        await self.close(rt.record.id, "closed by analyst")
        return self.status(rt)

    @streaming
    async def GetAggregate(
        self, request: pb.QueryRef, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.AggregateChunk]:
        peer = caller(context, insecure=self._insecure)
        rt = self._owned(peer, request.query_id)
        if rt.record.state != READY:
            raise NotReadyError(
                f"query {rt.record.id} is {pb.QueryState.Name(rt.record.state)}; aggregates are "
                "released only when it is READY"
            )
        data = await self.store.run(self.store.store.get_aggregate, rt.record.id)
        if data is None:  # READY implies at least min_holders >= 1 contributions
            raise NotReadyError(f"query {rt.record.id} has no aggregate")
        header = pb.AggregateHeader(
            query_id=rt.record.id,
            server=self.config.name,
            protocol=rt.spec.protocol,
            contributors=len(rt.record.contributors),
            payload_bytes=len(data),
            contributor_names=list(rt.record.contributors),
        )
        log.info(
            "aggregate released",
            extra={
                "query_id": rt.record.id,
                "analyst": peer.name,
                "contributors": len(rt.record.contributors),
            },
        )
        for chunk in aggregate_chunks(header, data):
            yield chunk

    # -- holders ----------------------------------------------------------------
    @streaming
    async def WatchQueries(
        self, request: pb.WatchQueriesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.QueryAnnouncement]:
        peer = caller(context, insecure=self._insecure)
        require(peer, [Role.HOLDER], "watch for queries")
        queue: asyncio.Queue[pb.QueryAnnouncement | None] = asyncio.Queue()
        self._watchers.add(queue)  # type: ignore[arg-type]
        log.info("holder watching", extra={"holder": peer.name})
        try:
            if request.include_open:
                for rt in list(self.queries.values()):
                    if rt.record.state == OPEN:
                        yield self.announcement(rt)
            while True:
                ann = await queue.get()
                if ann is None:  # server shutting down
                    return
                yield ann
        finally:
            self._watchers.discard(queue)  # type: ignore[arg-type]

    @unary
    async def Contribute(
        self,
        request_iterator: AsyncIterator[pb.ContributionChunk],
        context: grpc.aio.ServicerContext,
    ) -> pb.ContributionAck:
        peer = caller(context, insecure=self._insecure)
        require(peer, [Role.HOLDER], "contribute")
        stream = request_iterator.__aiter__()
        try:
            first = await stream.__anext__()
        except StopAsyncIteration:
            raise InvalidInputError("empty contribution stream: expected a header") from None
        if not first.HasField("header"):
            raise InvalidInputError("the first message of a contribution must carry its header")
        header = first.header
        rt = self._runtime(header.query_id)
        if rt.record.state != OPEN:
            raise NotReadyError(f"query {header.query_id} is no longer accepting contributions")
        expected = rt.aggregate.payload_bytes
        if header.payload_bytes != expected:
            raise InvalidInputError(
                f"contribution announces {header.payload_bytes} bytes; query "
                f"{header.query_id} takes exactly {expected}"
            )
        if len(header.payload_digest) != 32:
            raise InvalidInputError("payload_digest must be the 32-byte SHA-256 of the payload")
        known = rt.holders.get(peer.name)
        if known is not None:
            # Decide on the announced digest without reading the payload again.
            if hmac.compare_digest(known, bytes(header.payload_digest)):
                return self._ack(rt, peer.name, newly=False)
            raise ConflictError(
                f"holder {peer.name} already contributed a different vector to {rt.record.id}"
            )
        receipts = await self._check_receipts(rt, header, peer.name)
        async with self._slots:
            assembler = wire.ChunkAssembler(expected, max_bytes=expected)
            if first.data:
                assembler.add(first.data)
            async for msg in stream:
                if msg.HasField("header"):
                    raise InvalidInputError("only the first message may carry a header")
                assembler.add(msg.data)
            payload = assembler.finish()
            if not hmac.compare_digest(wire.digest(payload), bytes(header.payload_digest)):
                raise InvalidInputError("payload does not match its announced SHA-256 digest")
            parsed = rt.aggregate.validate(payload)
            pending = _Pending(
                query_id=rt.record.id,
                holder=peer.name,
                digest=bytes(header.payload_digest),
                receipts=receipts,
                parsed=parsed,
            )
            await self._queue.put(pending)
            newly = await pending.future
        log.info(
            "contribution accepted" if newly else "contribution already recorded",
            extra={"query_id": rt.record.id, "holder": peer.name, "contributors": len(rt.holders)},
        )
        close_after = rt.spec.close_after
        if newly and close_after and len(rt.holders) >= close_after and rt.record.state == OPEN:
            self._spawn(self.close(rt.record.id, f"{close_after} holders contributed"), "close")
        return self._ack(rt, peer.name, newly=newly)

    def _ack(self, rt: QueryRuntime, holder: str, *, newly: bool) -> pb.ContributionAck:
        return pb.ContributionAck(
            query_id=rt.record.id,
            holder=holder,
            newly_accepted=newly,
            contributors=len(rt.holders),
        )

    async def _check_receipts(
        self, rt: QueryRuntime, header: pb.ContributionHeader, holder: str
    ) -> bytes:
        if rt.spec.protocol != pb.PROTOCOL_ADDITIVE:
            if header.receipts:
                raise InvalidInputError("receipts are only part of additive contributions")
            return b""
        if len(header.receipts) != len(self.helpers):
            raise InvalidInputError(
                f"expected one seed receipt from each of the {len(self.helpers)} helpers, "
                f"got {len(header.receipts)}"
            )
        for helper, receipt in zip(self.helpers, header.receipts, strict=True):
            await helper.verify_receipt(receipt, rt.record.id, holder)
        return json.dumps(
            [{"helper": r.helper, "seed_digest": r.seed_digest.hex()} for r in header.receipts]
        ).encode()

    # -- the commit loop ----------------------------------------------------------
    async def _commit_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < MAX_BATCH:
                batch.append(self._queue.get_nowait())
            contributions: list[_Pending] = []
            for item in batch:
                if isinstance(item, _Pending):
                    contributions.append(item)
                    continue
                await self._commit_contributions(contributions)
                contributions = []
                await self._apply_close(item)
            await self._commit_contributions(contributions)

    async def _commit_contributions(self, items: list[_Pending]) -> None:
        if not items:
            return
        accepted: list[_Pending] = []
        touched: dict[str, QueryRuntime] = {}
        for item in items:
            rt = self.queries[item.query_id]
            if rt.record.state != OPEN:
                item.future.set_exception(
                    NotReadyError(f"query {item.query_id} closed before the contribution landed")
                )
                continue
            known = rt.holders.get(item.holder)
            if known is not None:
                if hmac.compare_digest(known, item.digest):
                    item.future.set_result(False)
                else:
                    item.future.set_exception(
                        ConflictError(
                            f"holder {item.holder} already contributed a different vector "
                            f"to {item.query_id}"
                        )
                    )
                continue
            try:
                rt.aggregate.add(item.parsed)
            except PetsError as exc:  # e.g. a Paillier query already at max_holders
                item.future.set_exception(exc)
                continue
            rt.holders[item.holder] = item.digest
            accepted.append(item)
            touched[rt.record.id] = rt
        if not accepted:
            return
        records = [ContributionRecord(i.query_id, i.holder, i.digest, i.receipts) for i in accepted]
        blobs = {qid: rt.aggregate.to_bytes() for qid, rt in touched.items()}
        try:
            await self.store.run(self.store.store.commit_contributions, records, blobs)
        except Exception:
            log.exception("could not persist contributions; reloading state")
            for qid, rt in touched.items():
                data = await self.store.run(self.store.store.get_aggregate, qid)
                rt.aggregate = protocols.running_aggregate(
                    rt.spec, rt.record.vector_length, rt.plan, data
                )
                rt.holders = await self.store.run(self.store.store.contributions, qid)
            for item in accepted:
                item.future.set_exception(UnavailableError("could not store the contribution"))
            return
        for item in accepted:
            item.future.set_result(True)
        for rt in touched.values():
            await rt.bump()

    # -- closing and finalisation -------------------------------------------------
    def _schedule_deadline(self, rt: QueryRuntime) -> None:
        async def wait() -> None:
            await asyncio.sleep(max(0.0, rt.record.deadline - self.clock()))
            await self.close(rt.record.id, "deadline reached")

        rt.deadline_task = self._spawn(wait(), f"deadline-{rt.record.id}")

    async def close(self, query_id: str, reason: str) -> None:
        """Fix the contributor set of an open query (no-op if already closed)."""
        item = _Close(query_id, reason)
        await self._queue.put(item)
        await item.future

    async def _apply_close(self, item: _Close) -> None:
        rt = self.queries[item.query_id]
        try:
            if rt.record.state == OPEN:
                rec = rt.record.with_state(CLOSED, contributors=tuple(sorted(rt.holders)))
                await self.store.run(self.store.store.update_query, rec)
                rt.record = rec
                if rt.deadline_task is not None and rt.deadline_task is not asyncio.current_task():
                    rt.deadline_task.cancel()
                log.info(
                    "query closed",
                    extra={
                        "query_id": rec.id,
                        "reason": item.reason,
                        "contributors": len(rec.contributors),
                    },
                )
                await rt.bump()
                self._start_finalize(rt)
            item.future.set_result(None)
        except Exception as exc:  # keep the loop alive; report to the caller
            log.exception("could not close query %s", item.query_id)
            item.future.set_exception(exc)

    def _start_finalize(self, rt: QueryRuntime) -> None:
        rt.finalizing = self._spawn(self._finalize(rt), f"finalize-{rt.record.id}")

    async def _finalize(self, rt: QueryRuntime) -> None:
        rec = rt.record
        n = len(rec.contributors)
        if n < rec.min_holders:
            await self._finish(
                rt,
                FAILED,
                "below_min_holders",
                f"{n} holder(s) contributed, at least {rec.min_holders} required; nothing released",
            )
            return
        if rt.spec.protocol == pb.PROTOCOL_ADDITIVE:
            timeout = self.config.limits.finalize_timeout_seconds
            give_up = time.monotonic() + timeout
            pending = list(self.helpers)
            delay = 0.2
            while pending:
                results = await asyncio.gather(
                    *(h.finalize(rec.id, list(rec.contributors), timeout=5.0) for h in pending),
                    return_exceptions=True,
                )
                failed = [
                    (h, r)
                    for h, r in zip(pending, results, strict=True)
                    if isinstance(r, Exception)
                ]
                pending = [h for h, _ in failed]
                if not pending:
                    break
                if time.monotonic() + delay > give_up:
                    detail = "; ".join(str(r) for _, r in failed)
                    log.error("finalisation failed", extra={"query_id": rec.id, "detail": detail})
                    await self._finish(
                        rt,
                        FAILED,
                        "helper_unavailable",
                        f"helper(s) {', '.join(h.name for h, _ in failed)} could not finalise "
                        f"within {timeout:g} s; nothing released ({detail})",
                    )
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        await self._finish(rt, READY, "", "")

    async def _finish(self, rt: QueryRuntime, state: int, failure: str, detail: str) -> None:
        rec = rt.record.with_state(state, failure=failure, failure_detail=detail)
        await self.store.run(self.store.store.finish_query, rec, None)
        rt.record = rec
        log.info(
            "query finished",
            extra={
                "query_id": rec.id,
                "state": pb.QueryState.Name(state),
                "failure": failure,
                "contributors": len(rec.contributors),
            },
        )
        await rt.bump()
