"""The leader: accepts queries, collects contributions, fixes the contributor set.

Flow of one query (DESIGN.md, "Two aggregation protocols"):

1. An analyst submits a query; the leader validates it against the shared
   schema, registers it with every helper (additive protocol) and announces
   it to the holders watching.
2. A holder seals one seed to each helper (:mod:`pets.seal`: HPKE to the
   helper's seal key, signed with the holder's certificate key) and streams
   its masked vector (or its Paillier ciphertexts) to the leader with the
   sealed seeds in the header: one call per contribution, no connection to
   any helper. The leader checks lengths; the helpers check the holder's
   certificate and signatures and open the seeds (``Prepare``, one call per
   helper and query for a whole batch). Only then does the leader fold the
   payload into the running aggregate and record the holder with its sealed
   seeds *in the same SQLite transaction*, and acknowledge. A contribution
   the leader accepted is therefore complete everywhere.
3. At the deadline (or once ``close_after`` holders contributed, or when the
   analyst closes it) the leader fixes the contributor set and streams every
   helper exactly that set, each contributor with its certificate and the
   seed sealed to that helper; the helpers check and open them and sum.
   The leader marks the query READY, or FAILED when fewer than
   ``min_holders`` contributed or a helper could not finalise (the helpers
   are then told the query failed). Only READY queries release aggregates,
   only to their analyst.

All state changes that touch contributions go through one commit loop, so
contributions and closing are serialised without locks (an additive
query's contributions, and its close behind them, pass the helpers' check
in the prepare loop first, in arrival order); the commit loop commits
whatever contributions are waiting in one transaction (group commit), which
keeps the cost of ``synchronous=FULL`` per batch, not per holder. The loop
never dies: a failure fails the batch it was working on, not the server.
Callers await their item's future through ``asyncio.shield``, so a caller
that goes away (a cancelled RPC) never cancels work the loop is doing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from pets import seal
from pets.errors import (
    ConflictError,
    InvalidInputError,
    InvalidProofError,
    NotFoundError,
    NotReadyError,
    PetsError,
    UnavailableError,
)
from pets.identity.certificates import Peer, Role
from pets.identity.signing import verify_spec
from pets.query import Query, QueryPlan, Schema
from pets.query import compile as compile_query
from pets.runtime.offload import offload
from pets.server import protocols
from pets.server.aggregates import RunningAggregate
from pets.server.config import ServerConfig
from pets.server.peers import HelperLink
from pets.server.rpc import (
    aggregate_chunks,
    caller,
    caller_and_certificate,
    require,
    streaming,
    unary,
)
from pets.server.storage import AsyncStore, ContributionRecord, QueryRecord
from pets.transport import wire
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
# How long a helper gets to check one batch of contributions (Prepare); a
# contribution it has not checked by then fails as unavailable and is retried.
PREPARE_TIMEOUT_SECONDS = 10.0
WATCHER_QUEUE = 1024


def _settle(future: asyncio.Future, result: Any = None, error: BaseException | None = None) -> None:
    """Resolve ``future`` unless it already is (its caller may have gone away)."""
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


@dataclass
class QueryRuntime:
    """A query's in-memory state on the leader.

    ``aggregate`` and ``holders`` exist only while the query is OPEN or
    CLOSED; a finished query keeps just its record (its aggregate share is
    read from SQLite when released). ``holders`` lists *committed*
    contributions only.
    """

    record: QueryRecord
    spec: pb.QuerySpec
    plan: QueryPlan | None
    aggregate: RunningAggregate | None = None
    holders: dict[str, bytes] = field(default_factory=dict)
    in_flight: set[str] = field(default_factory=set)
    version: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    deadline_task: asyncio.Task | None = None

    async def bump(self) -> None:
        async with self.changed:
            self.version += 1
            self.changed.notify_all()


def _future() -> asyncio.Future:
    """A future for a queued item. Its caller may go away (a cancelled RPC awaits
    it through ``shield``), so its exception is marked retrieved here: asyncio
    would otherwise log every such error as never retrieved."""
    future = asyncio.get_running_loop().create_future()
    future.add_done_callback(_retrieve)
    return future


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


@dataclass
class _Pending:
    """A validated contribution waiting for the commit loop."""

    query_id: str
    holder: str
    digest: bytes
    parsed: object
    # Additive: the holder's sealed seeds and certificate, checked by the helpers
    # (Prepare) before the commit, stored as a serialised pb.SealedContribution.
    seeds: list[pb.SealedSeed] | None
    certificate: bytes
    record: pb.SealedContribution | None = None  # what the helpers check, and
    sealed: bytes = b""  # serialised: what the leader stores
    future: asyncio.Future = field(default_factory=_future)


@dataclass
class _Close:
    query_id: str
    reason: str
    future: asyncio.Future = field(default_factory=_future)


def pack_helper_keys(keys: list[pb.HelperKey]) -> bytes:
    """The helpers' seal keys of one query, as the leader stores them."""
    return b"".join(wire.length_prefixed(k.SerializeToString()) for k in keys)


def unpack_helper_keys(data: bytes) -> list[pb.HelperKey]:
    return [pb.HelperKey.FromString(part) for part in wire.split_length_prefixed(data)]


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
        ca_pem: bytes | None = None,
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
        self._watchers: set[asyncio.Queue[pb.QueryAnnouncement | None]] = set()
        self._slots = asyncio.Semaphore(config.limits.max_concurrent_contributions)
        self._tasks: set[asyncio.Task] = set()
        self._commit_task: asyncio.Task | None = None
        self._prepare_queue: asyncio.Queue[_Pending | _Close] = asyncio.Queue()
        self._prepare_task: asyncio.Task | None = None
        self._preparing = False  # a batch is with the helpers
        self._insecure = config.tls is None
        self._ca_pem = ca_pem
        self._stopping = False
        self._submitting: dict[str, int] = {}

    # -- lifecycle ------------------------------------------------------------
    async def start(self) -> None:
        """Load every query from SQLite and resume the open and closing ones."""
        records = await self.store.run(self.store.store.load_queries)
        resumed: list[QueryRuntime] = []
        for rec in records:
            spec = pb.QuerySpec.FromString(rec.spec)
            rt = QueryRuntime(record=rec, spec=spec, plan=None)
            self.queries[rec.id] = rt
            if rec.state in TERMINAL:
                continue
            try:
                rt.plan = compile_query(Query.from_json(spec.query_json), self.schema)
                await self._reload(rt)
            except Exception as exc:
                # The schema changed under an unfinished query, or its state is damaged
                # (e.g. an aggregate file lost to a crash): it cannot be finished.
                log.error("cannot resume query", extra={"query_id": rec.id, "error": repr(exc)})
                rt.record = rec.with_state(
                    FAILED,
                    failure="cannot_resume",
                    failure_detail="the query's saved state could not be resumed",
                )
                await self.store.run(self.store.store.finish_query, rt.record, None, True)
                continue
            resumed.append(rt)
        self._commit_task = asyncio.create_task(self._commit_loop(), name="leader-commit")
        self._commit_task.add_done_callback(self._commit_loop_ended)
        self._prepare_task = asyncio.create_task(self._prepare_loop(), name="leader-prepare")
        self._prepare_task.add_done_callback(self._commit_loop_ended)
        for rt in resumed:
            if rt.record.state == OPEN:
                self._schedule_deadline(rt)
            else:
                self._start_finalize(rt)
        log.info("leader started", extra={"queries": len(self.queries), "resumed": len(resumed)})

    def begin_shutdown(self) -> None:
        """End the long-lived streams so a graceful stop need not wait for them."""
        self._stopping = True
        for watcher in self._watchers:
            with contextlib.suppress(asyncio.QueueFull):
                watcher.put_nowait(None)
        for rt in self.queries.values():
            self._spawn(rt.bump(), "wake-status-watchers")

    async def stop(self) -> None:
        self.begin_shutdown()
        tasks = [*self._tasks, self._commit_task, self._prepare_task]
        tasks += [rt.deadline_task for rt in self.queries.values()]
        for task in tasks:
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in tasks if t is not None), return_exceptions=True)
        # Anything still queued will never be committed: say so to whoever waits.
        for queue in (self._prepare_queue, self._queue):
            while not queue.empty():
                _settle(queue.get_nowait().future, error=UnavailableError("leader shutting down"))
        for helper in self.helpers:
            await helper.close()

    def _spawn(self, coro: Any, name: str) -> asyncio.Task:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "background task failed",
                extra={"task": task.get_name(), "error": repr(task.exception())},
            )

    def _commit_loop_ended(self, task: asyncio.Task) -> None:
        if not self._stopping:
            log.critical(
                "contribution loop ended; the leader cannot accept contributions",
                extra={"task": task.get_name()},
            )

    async def _reload(self, rt: QueryRuntime) -> None:
        """Rebuild a query's aggregate and committed holders from SQLite."""
        assert rt.plan is not None
        data = await self.store.run(self.store.store.get_aggregate, rt.record.id)
        rt.aggregate = protocols.running_aggregate(rt.spec, rt.record.vector_length, rt.plan, data)
        rt.holders = await self.store.run(self.store.store.contributions, rt.record.id)
        rt.aggregate.count = len(rt.holders)

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

    def _helper_names(self, spec: pb.QuerySpec) -> list[str]:
        if spec.protocol != pb.PROTOCOL_ADDITIVE:
            return []
        return [h.name for h in self.helpers]

    def status(self, rt: QueryRuntime) -> pb.QueryStatus:
        r = rt.record
        return pb.QueryStatus(
            query_id=r.id,
            state=r.state,
            spec=rt.spec,
            analyst=r.analyst,
            contributors=len(rt.holders) if r.state == OPEN else len(r.contributors),
            min_holders=r.min_holders,
            deadline_unix=r.deadline,
            failure=r.failure,
            failure_detail=r.failure_detail,
            vector_length=r.vector_length,
            proven_predicates=list(r.proven_predicates),
            helpers=self._helper_names(rt.spec),
        )

    def announcement(self, rt: QueryRuntime) -> pb.QueryAnnouncement:
        return pb.QueryAnnouncement(
            query_id=rt.record.id,
            spec=rt.spec,
            deadline_unix=rt.record.deadline,
            vector_length=rt.record.vector_length,
            helpers=self._helper_names(rt.spec),
            fingerprint=rt.record.fingerprint,
            helper_keys=unpack_helper_keys(rt.record.helper_keys),
        )

    def _parse_query(self, spec: pb.QuerySpec) -> tuple[Query, QueryPlan]:
        try:
            query = Query.from_json(spec.query_json)
        except PetsError:
            raise
        except (ValueError, TypeError, KeyError, RecursionError, OverflowError) as exc:
            raise InvalidInputError(f"query_json is not a valid query: {exc!s:.200}") from None
        return query, compile_query(query, self.schema)

    @unary
    async def SubmitQuery(
        self, request: pb.SubmitQueryRequest, context: grpc.aio.ServicerContext
    ) -> pb.QueryStatus:
        peer = caller(context, insecure=self._insecure)
        require(peer, [Role.ANALYST], "submit queries")
        proven: list[str] = []
        if self._check_presentation is not None:
            # Proof verification is CPU work: keep the event loop serving others.
            proven = await asyncio.to_thread(
                self._check_presentation,
                peer,
                bytes(request.presentation),
                bytes(request.presentation_nonce),
            )
        spec = pb.QuerySpec()
        spec.CopyFrom(request.spec)
        if spec.protocol == pb.PROTOCOL_UNSPECIFIED:
            spec.protocol = pb.PROTOCOL_ADDITIVE
        query, plan = self._parse_query(spec)
        floor = self.config.min_holders
        if spec.min_holders and spec.min_holders < floor:
            raise InvalidInputError(
                f"min_holders {spec.min_holders} is below this server's floor of {floor}; "
                "a query may raise it, never lower it"
            )
        min_holders = max(floor, spec.min_holders)
        if spec.close_after and spec.close_after < min_holders:
            raise InvalidInputError(
                f"close_after {spec.close_after} is below min_holders {min_holders}: the query "
                "would close too early to ever be released"
            )
        if spec.protocol == pb.PROTOCOL_ADDITIVE and plan.max_holders() < min_holders:
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
        vector_length = protocols.vector_length(spec, plan, min_holders)  # validates the key
        if spec.protocol == pb.PROTOCOL_PAILLIER and not self._insecure:
            # Holders will check this too; refusing here gives the analyst a clear error.
            signed_by = verify_spec(spec, self._ca_pem)
            if signed_by != peer:
                raise InvalidInputError("the query must be signed by the analyst submitting it")
        if vector_length > limits.max_vector_length:
            raise InvalidInputError(
                f"query needs vectors of {vector_length} values; this server accepts at most "
                f"{limits.max_vector_length}"
            )
        open_queries = self._submitting.get(peer.name, 0) + sum(
            1
            for rt in self.queries.values()
            if rt.record.analyst == peer.name and rt.record.state not in TERMINAL
        )
        if open_queries >= limits.max_open_queries_per_analyst:
            raise NotReadyError(
                f"analyst {peer.name} already has {open_queries} unfinished queries "
                f"(limit {limits.max_open_queries_per_analyst}); wait for one to finish"
            )
        # Reserved before the first await, so concurrent submissions count too.
        self._submitting[peer.name] = self._submitting.get(peer.name, 0) + 1
        try:
            return await self._accept_query(
                peer, spec, query, plan, min_holders, deadline_s, vector_length, proven
            )
        finally:
            self._submitting[peer.name] -= 1
            if not self._submitting[peer.name]:
                del self._submitting[peer.name]

    async def _accept_query(
        self,
        peer: Peer,
        spec: pb.QuerySpec,
        query: Query,
        plan: QueryPlan,
        min_holders: int,
        deadline_s: float,
        vector_length: int,
        proven: list[str],
    ) -> pb.QueryStatus:
        now = self.clock()
        query_id = "q-" + secrets.token_hex(8)
        fingerprint = plan.fingerprint()
        keys: list[pb.HelperKey] = []
        if spec.protocol == pb.PROTOCOL_ADDITIVE:
            register = pb.RegisterQueryRequest(
                query_id=query_id,
                spec=spec,
                analyst=peer.name,
                vector_length=vector_length,
                deadline_unix=now + deadline_s,
                min_holders=min_holders,
                fingerprint=fingerprint,
            )
            keys = list(await asyncio.gather(*(h.register(register) for h in self.helpers)))
        record = QueryRecord(
            id=query_id,
            analyst=peer.name,
            spec=spec.SerializeToString(),
            state=OPEN,
            created=now,
            deadline=now + deadline_s,
            min_holders=min_holders,
            vector_length=vector_length,
            proven_predicates=tuple(proven),
            fingerprint=fingerprint,
            helper_keys=pack_helper_keys(keys),
        )
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
            self._notify(watcher, ann)
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
            if rt.record.state in TERMINAL or self._stopping:
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
    def _notify(
        self, watcher: asyncio.Queue[pb.QueryAnnouncement | None], ann: pb.QueryAnnouncement
    ) -> None:
        try:
            watcher.put_nowait(ann)
        except asyncio.QueueFull:  # a watcher that does not read is dropped
            self._watchers.discard(watcher)

    @streaming
    async def WatchQueries(
        self, request: pb.WatchQueriesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.QueryAnnouncement]:
        peer = caller(context, insecure=self._insecure)
        require(peer, [Role.HOLDER], "watch for queries")
        queue: asyncio.Queue[pb.QueryAnnouncement | None] = asyncio.Queue(WATCHER_QUEUE)
        self._watchers.add(queue)
        log.info("holder watching", extra={"holder": peer.name})
        try:
            if request.include_open:
                for rt in list(self.queries.values()):
                    if rt.record.state == OPEN:
                        yield self.announcement(rt)
            while queue in self._watchers and not self._stopping:
                ann = await queue.get()
                if ann is None:  # server shutting down
                    return
                yield ann
        finally:
            self._watchers.discard(queue)

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
        return await self._contribute(first, stream, context)

    @unary
    async def ContributeOne(
        self, request: pb.ContributionChunk, context: grpc.aio.ServicerContext
    ) -> pb.ContributionAck:
        return await self._contribute(request, None, context)

    async def _contribute(
        self,
        first: pb.ContributionChunk,
        stream: AsyncIterator[pb.ContributionChunk] | None,
        context: grpc.aio.ServicerContext,
    ) -> pb.ContributionAck:
        """One contribution: ``first`` carries the header; ``stream`` the rest (if any)."""
        peer, certificate = caller_and_certificate(context, insecure=self._insecure)
        require(peer, [Role.HOLDER], "contribute")
        if not first.HasField("header"):
            raise InvalidInputError("the first message of a contribution must carry its header")
        header = first.header
        rt = self._runtime(header.query_id)
        aggregate = rt.aggregate
        if rt.record.state != OPEN or aggregate is None:
            raise NotReadyError(f"query {header.query_id} is no longer accepting contributions")
        expected = aggregate.payload_bytes
        if header.payload_bytes != expected:
            raise InvalidInputError(
                f"contribution announces {header.payload_bytes} bytes; query "
                f"{header.query_id} takes exactly {expected}"
            )
        if len(header.contribution_digest) != 32:
            raise InvalidInputError("contribution_digest must be 32 bytes")
        digest = bytes(header.contribution_digest)
        known = rt.holders.get(peer.name)
        if known is not None:
            # Committed already: decide on the announced digest without the payload.
            if hmac.compare_digest(known, digest):
                return self._ack(rt, peer.name, newly=False)
            raise ConflictError(
                f"holder {peer.name} already contributed a different vector to {rt.record.id}"
            )
        if peer.name in rt.in_flight:
            raise UnavailableError(
                f"a contribution from {peer.name} to {rt.record.id} is already in progress"
            )
        additive = rt.spec.protocol == pb.PROTOCOL_ADDITIVE
        # Small, in the header: checked before a byte of the payload is read (the
        # helpers check certificates and signatures before the commit).
        seeds = self._check_sealed_seeds(rt, header)
        rt.in_flight.add(peer.name)  # before any await: one stream per holder at a time
        try:
            if stream is None:  # the whole contribution is in hand: no stream slot needed
                payload = await self._receive(first, None, expected, additive, digest)
                newly = await self._stage(rt, peer, payload, digest, seeds, certificate)
            else:
                async with self._slots:
                    async with asyncio.timeout(self.config.limits.contribution_timeout_seconds):
                        payload = await self._receive(first, stream, expected, additive, digest)
                    newly = await self._stage(rt, peer, payload, digest, seeds, certificate)
        except TimeoutError:
            raise UnavailableError(
                f"contribution stream stalled for over "
                f"{self.config.limits.contribution_timeout_seconds:g} s"
            ) from None
        finally:
            rt.in_flight.discard(peer.name)
        # Per-contribution lines are debug-level: at thousands per second they would
        # cost more than the contribution; "query closed" logs the count.
        log.debug(
            "contribution accepted" if newly else "contribution already recorded",
            extra={"query_id": rt.record.id, "holder": peer.name, "contributors": len(rt.holders)},
        )
        close_after = rt.spec.close_after
        if newly and close_after and len(rt.holders) >= close_after and rt.record.state == OPEN:
            self._spawn(self.close(rt.record.id, f"{close_after} holders contributed"), "close")
        return self._ack(rt, peer.name, newly=newly)

    async def _stage(
        self,
        rt: QueryRuntime,
        peer: Peer,
        payload: bytes | bytearray | list[bytes],
        digest: bytes,
        seeds: list[pb.SealedSeed] | None,
        certificate: bytes,
    ) -> bool:
        """Validate a received payload and hand it to the commit loop; True once newly
        committed, False if the same contribution was already recorded."""
        aggregate = rt.aggregate
        assert aggregate is not None
        if seeds is not None:  # additive: zero-copy views of the received chunks
            parsed = aggregate.validate(payload)
        else:  # Paillier: parses and checks big integers
            parsed = await offload(aggregate.payload_bytes, aggregate.validate, payload)
        del payload
        pending = _Pending(
            query_id=rt.record.id,
            holder=peer.name,
            digest=digest,
            parsed=parsed,
            seeds=seeds,
            certificate=certificate,
        )
        # Unbounded queues: never wait. Additive contributions go through the
        # helpers' check first (the prepare loop), then to the commit loop.
        (self._queue if seeds is None else self._prepare_queue).put_nowait(pending)
        return await asyncio.shield(pending.future)  # type: ignore[no-any-return]

    async def _receive(
        self,
        first: pb.ContributionChunk,
        stream: AsyncIterator[pb.ContributionChunk] | None,
        expected: int,
        additive: bool,
        digest: bytes,
    ) -> bytes | bytearray | list[bytes]:
        """The payload of a contribution stream, length-checked as it arrives.

        Additive: the chunks as received (the running sum reads each once, so
        nothing is copied). Paillier: one buffer, hashed as it fills and checked
        against the announced SHA-256, which identifies Paillier contributions.
        """
        sink: wire.ChunkCollector | wire.ChunkAssembler = (
            wire.ChunkCollector(expected)
            if additive
            else wire.ChunkAssembler(expected, sha256=True)
        )
        data = first.data
        while True:
            if data:
                if additive:
                    sink.add(data)
                else:  # copy and hash large chunks off the event loop
                    await offload(len(data), sink.add, data)
            msg = None if stream is None else await anext(stream, None)
            if msg is None:
                break
            if msg.HasField("header"):
                raise InvalidInputError("only the first message may carry a header")
            data = msg.data  # one copy out of the message, not one per access
        payload = sink.finish()
        if isinstance(sink, wire.ChunkAssembler) and not hmac.compare_digest(sink.digest(), digest):
            raise InvalidInputError("payload does not match its announced SHA-256 digest")
        return payload

    def _check_sealed_seeds(
        self, rt: QueryRuntime, header: pb.ContributionHeader
    ) -> list[pb.SealedSeed] | None:
        """One sealed seed per helper, in order, of the right size (None for Paillier).

        The leader cannot open the seeds (they are sealed to the helpers): the
        helpers check the holder's certificate and signatures and open them
        before the batch commits (:meth:`_prepare_with_helpers`).
        """
        seeds = header.sealed_seeds
        if rt.spec.protocol != pb.PROTOCOL_ADDITIVE:
            if seeds:
                raise InvalidInputError("sealed seeds are only part of additive contributions")
            return None
        if [s.helper for s in seeds] != [h.name for h in self.helpers]:
            raise InvalidInputError(
                f"expected one sealed seed for each of the helpers "
                f"{[h.name for h in self.helpers]}, in that order; got {[s.helper for s in seeds]}"
            )
        for s in seeds:
            if len(s.sealed) != seal.SEALED_BYTES:
                raise InvalidInputError(
                    f"the seed sealed to helper {s.helper} has {len(s.sealed)} bytes, "
                    f"expected {seal.SEALED_BYTES}"
                )
        return list(seeds)

    def _ack(self, rt: QueryRuntime, holder: str, *, newly: bool) -> pb.ContributionAck:
        return pb.ContributionAck(
            query_id=rt.record.id,
            holder=holder,
            newly_accepted=newly,
            contributors=len(rt.holders),
        )

    # -- the commit loop ----------------------------------------------------------
    async def _commit_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < MAX_BATCH:
                batch.append(self._queue.get_nowait())
            try:
                contributions: list[_Pending] = []
                for item in batch:
                    if isinstance(item, _Pending):
                        contributions.append(item)
                        continue
                    await self._commit_contributions(contributions)
                    contributions = []
                    await self._apply_close(item)
                await self._commit_contributions(contributions)
            except Exception:  # keep serving; fail only this batch
                log.exception("commit loop error; failing the batch")
                for item in batch:
                    _settle(item.future, error=UnavailableError("internal error; retry"))
                    rt = self.queries.get(item.query_id)
                    if isinstance(item, _Pending) and rt and rt.record.state not in TERMINAL:
                        with contextlib.suppress(Exception):
                            await self._reload(rt)

    async def _commit_contributions(self, items: list[_Pending]) -> None:
        if not items:
            return
        staged: dict[tuple[str, str], _Pending] = {}
        followers: list[tuple[_Pending, _Pending]] = []
        touched: dict[str, QueryRuntime] = {}
        for item in items:
            rt = self.queries[item.query_id]
            if rt.record.state != OPEN or rt.aggregate is None:
                _settle(
                    item.future,
                    error=NotReadyError(
                        f"query {item.query_id} closed before the contribution landed"
                    ),
                )
                continue
            key = (item.query_id, item.holder)
            known = rt.holders.get(item.holder)
            first = staged.get(key)
            if known is not None or first is not None:
                same = hmac.compare_digest(known or first.digest, item.digest)  # type: ignore[union-attr]
                if not same:
                    _settle(
                        item.future,
                        error=ConflictError(
                            f"holder {item.holder} already contributed a different vector "
                            f"to {item.query_id}"
                        ),
                    )
                elif known is not None:
                    _settle(item.future, False)
                else:
                    followers.append((item, first))  # type: ignore[arg-type]
                continue
            try:
                await offload(rt.aggregate.payload_bytes, rt.aggregate.add, item.parsed)
            except PetsError as exc:  # e.g. a query already at its max_holders
                _settle(item.future, error=exc)
                continue
            staged[key] = item
            touched[rt.record.id] = rt
        if staged:
            records = [
                ContributionRecord(i.query_id, i.holder, i.digest, i.sealed)
                for i in staged.values()
            ]
            blobs = {
                qid: await offload(
                    rt.aggregate.payload_bytes,  # type: ignore[union-attr]
                    rt.aggregate.to_bytes,  # type: ignore[union-attr]
                )
                for qid, rt in touched.items()
            }
            try:
                await self.store.run(self.store.store.commit_contributions, records, blobs)
            except Exception:
                log.exception("could not persist contributions; reloading state")
                for rt in touched.values():
                    await self._reload(rt)
                failure = UnavailableError("could not store the contribution; retry")
                for item in staged.values():
                    _settle(item.future, error=failure)
                for item, _ in followers:
                    _settle(item.future, error=failure)
                return
            for item in staged.values():
                self.queries[item.query_id].holders[item.holder] = item.digest
                _settle(item.future, True)
        for item, _ in followers:
            _settle(item.future, False)
        for rt in touched.values():
            await rt.bump()

    async def _prepare_loop(self) -> None:
        """Additive contributions, a batch at a time: the helpers' check, then the commit.

        Ahead of the commit loop, so Paillier contributions never wait on a
        slow helper; each helper gets at most :data:`PREPARE_TIMEOUT_SECONDS`
        per batch. An additive query's close comes through here too, after the
        contributions that arrived before it.
        """
        while True:
            batch = [await self._prepare_queue.get()]
            while not self._prepare_queue.empty() and len(batch) < MAX_BATCH:
                batch.append(self._prepare_queue.get_nowait())
            pending = [i for i in batch if isinstance(i, _Pending)]
            self._preparing = True
            try:
                kept = {id(i) for i in await self._prepare_with_helpers(pending)}
            except Exception:  # keep serving; fail only this batch's contributions
                log.exception("prepare loop error; failing the batch")
                for item in pending:
                    _settle(item.future, error=UnavailableError("internal error; retry"))
                kept = set()
            finally:
                self._preparing = False
            # In arrival order: a close follows the contributions queued before it.
            for item in batch:
                if isinstance(item, _Close) or id(item) in kept:
                    self._queue.put_nowait(item)

    async def _prepare_with_helpers(self, items: list[_Pending]) -> list[_Pending]:
        """Have every helper check and open the batch's sealed seeds; keep what all accept.

        A contribution is committed only once each helper has checked the
        holder's certificate and signature and opened its seed (``Prepare``),
        so an accepted contribution is complete everywhere: no holder can make
        a query fail at finalisation with a seed that does not open. Refused
        contributions fail with the helper's reason; if a helper cannot be
        reached, the batch's additive contributions fail as unavailable (the
        holders retry). One call per helper and query per commit batch.
        """
        groups: dict[str, dict[str, _Pending]] = {}
        for item in items:
            if item.seeds is None:
                continue
            rt = self.queries[item.query_id]
            item.record = pb.SealedContribution(
                holder=item.holder, certificate=item.certificate, seeds=item.seeds
            )
            item.sealed = item.record.SerializeToString()
            if rt.record.state != OPEN or item.holder in rt.holders:
                continue  # the commit loop refuses or acknowledges it as recorded
            group = groups.setdefault(item.query_id, {})
            if item.holder in group:  # one at a time per holder: only one is checked
                _settle(
                    item.future,
                    error=UnavailableError(
                        f"another contribution from {item.holder} is being checked; retry"
                    ),
                )
                continue
            group[item.holder] = item
        verdicts = await asyncio.gather(
            *(self._prepare(qid, list(group.values())) for qid, group in groups.items())
        )
        refused = {
            (qid, holder): error
            for qid, errors in zip(groups, verdicts, strict=True)
            for holder, error in errors.items()
        }
        kept = []
        for item in items:
            error = refused.get((item.query_id, item.holder))
            if item.future.done():  # settled above (a second one from its holder)
                continue
            if error is None:
                kept.append(item)
            else:
                _settle(item.future, error=error)
        return kept

    async def _prepare(self, query_id: str, group: list[_Pending]) -> dict[str, PetsError]:
        """Prepare one query's contributions on every helper; the refused ones, with why."""
        group = sorted(group, key=lambda i: i.holder)
        records = [i.record for i in group]
        timeout = min(PREPARE_TIMEOUT_SECONDS, self.config.limits.finalize_timeout_seconds)
        outcomes = await asyncio.gather(
            *(h.prepare(query_id, records, timeout=timeout) for h in self.helpers),
            return_exceptions=True,
        )
        errors: dict[str, PetsError] = {}
        for helper, outcome in zip(self.helpers, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if isinstance(outcome, NotReadyError):
                    failure: PetsError = outcome
                else:
                    log.warning(
                        "helper could not check contributions",
                        extra={"query_id": query_id, "helper": helper.name, "error": str(outcome)},
                    )
                    failure = UnavailableError(
                        f"helper {helper.name} could not check the contribution; retry"
                    )
                for item in group:
                    errors.setdefault(item.holder, failure)
                continue
            names = [r.holder for r in outcome.refused]
            if (
                outcome.query_id != query_id
                or outcome.accepted + len(names) != len(group)
                or len(set(names)) != len(names)
                or not set(names) <= {i.holder for i in group}
            ):
                # Not a verdict on every contribution (e.g. a helper of another version):
                # commit nothing it may not have accepted.
                log.warning(
                    "helper gave no verdict on every contribution",
                    extra={"query_id": query_id, "helper": helper.name},
                )
                for item in group:
                    errors.setdefault(
                        item.holder,
                        UnavailableError(f"helper {helper.name} gave no verdict; retry"),
                    )
                continue
            for refusal in outcome.refused:
                errors.setdefault(
                    refusal.holder,
                    InvalidProofError(f"helper {helper.name} refused the seed: {refusal.reason}"),
                )
        return errors

    # -- closing and finalisation -------------------------------------------------
    def _schedule_deadline(self, rt: QueryRuntime) -> None:
        async def wait() -> None:
            await asyncio.sleep(max(0.0, rt.record.deadline - self.clock()))
            await self.close(rt.record.id, "deadline reached")

        rt.deadline_task = self._spawn(wait(), f"deadline-{rt.record.id}")

    async def close(self, query_id: str, reason: str) -> None:
        """Fix the contributor set of an open query (no-op if already closed)."""
        item = _Close(query_id, reason)
        rt = self.queries.get(query_id)
        additive = rt is not None and rt.spec.protocol == pb.PROTOCOL_ADDITIVE
        # Behind the contributions still waiting for (or in) the helpers' check,
        # so a contribution that arrived before the close is not overtaken by it;
        # straight to the commit loop when there are none (measurably cheaper).
        behind = additive and (self._preparing or not self._prepare_queue.empty())
        (self._prepare_queue if behind else self._queue).put_nowait(item)
        await asyncio.shield(item.future)

    async def _apply_close(self, item: _Close) -> None:
        rt = self.queries[item.query_id]
        if rt.record.state == OPEN:
            rec = rt.record.with_state(CLOSED, contributors=tuple(sorted(rt.holders)))
            await self.store.run(self.store.store.update_query, rec)
            rt.record = rec
            if rt.deadline_task is not None and not rt.deadline_task.done():
                rt.deadline_task.cancel()  # safe: its close() awaits a shielded future
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
        _settle(item.future)

    def _start_finalize(self, rt: QueryRuntime) -> None:
        self._spawn(self._finalize(rt), f"finalize-{rt.record.id}")

    async def _finalize(self, rt: QueryRuntime) -> None:
        rec = rt.record
        n = len(rec.contributors)
        if n < rec.min_holders:
            await self._fail(
                rt,
                "below_min_holders",
                f"{n} holder(s) contributed, at least {rec.min_holders} required; nothing released",
            )
            return
        if rt.spec.protocol == pb.PROTOCOL_ADDITIVE:
            timeout = self.config.limits.finalize_timeout_seconds
            give_up = time.monotonic() + timeout
            sealed = await self.store.run(
                self.store.store.sealed_contributions, rec.id, rec.contributors
            )
            pending = list(self.helpers)
            delay = 0.2
            while pending:
                left = max(0.5, give_up - time.monotonic())
                results = await asyncio.gather(
                    *(h.finalize(rec.id, sealed, timeout=left) for h in pending),
                    return_exceptions=True,
                )
                failed = [
                    (h, r)
                    for h, r in zip(pending, results, strict=True)
                    if isinstance(r, BaseException)
                ]
                pending = [h for h, r in failed if isinstance(r, UnavailableError)]
                fatal = [(h, r) for h, r in failed if not isinstance(r, UnavailableError)]
                if fatal or (pending and time.monotonic() + delay > give_up):
                    for h, r in failed:
                        log.error(
                            "finalisation failed",
                            extra={"query_id": rec.id, "helper": h.name, "error": str(r)},
                        )
                    if fatal:
                        reason = "helper_refused"
                        detail = "; ".join(f"helper {h.name} refused: {r}" for h, r in fatal)
                    else:
                        reason = "helper_unavailable"
                        names = ", ".join(h.name for h, _ in failed)
                        detail = f"helper(s) {names} could not finalise within {timeout:g} s"
                    await self._fail(rt, reason, f"{detail}; nothing released")
                    return
                if pending:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
        await self._finish(rt, READY, "", "")

    async def _fail(self, rt: QueryRuntime, failure: str, detail: str) -> None:
        await self._finish(rt, FAILED, failure, detail)
        if rt.spec.protocol == pb.PROTOCOL_ADDITIVE:
            # Best effort: helpers learn the query will never be released.
            await asyncio.gather(
                *(h.abort(rt.record.id) for h in self.helpers), return_exceptions=True
            )

    async def _finish(self, rt: QueryRuntime, state: int, failure: str, detail: str) -> None:
        rec = rt.record.with_state(state, failure=failure, failure_detail=detail)
        # A failed query's running aggregate is deleted: it will never be released.
        await self.store.run(self.store.store.finish_query, rec, None, state == FAILED)
        rt.record = rec
        rt.aggregate = None  # the share lives on in SQLite; free the memory
        rt.holders = {}
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
