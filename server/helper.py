"""A helper: stores holders' seeds and finalises over the leader's contributor set.

A helper never sees a vector. For each (query, holder) it durably stores the
32-byte seed the holder sent, and answers with a receipt signed by its
Ed25519 receipt key (generated on first start, kept in its database), which
the holder forwards to the leader. When the leader closes the query it
sends the sorted contributor set; the helper expands exactly those seeds and
sums them in place (memory: two vectors, whatever the number of holders),
stores the result and releases it only to the query's analyst, only with at
least ``min_holders`` contributors.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from pets import prg, sharing, wire
from pets.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    NotReadyError,
    ThresholdNotMetError,
    UnavailableError,
)
from pets.identity import Role
from pets.offload import offload
from pets.server.config import ServerConfig
from pets.server.rpc import aggregate_chunks, caller, require, streaming, unary
from pets.server.storage import QUERY_ID, AsyncStore, QueryRecord
from pets.v1 import aggregation_pb2 as pb
from pets.v1 import aggregation_pb2_grpc as pb_grpc

log = logging.getLogger("pets.server.helper")

OPEN, READY, FAILED = pb.QUERY_STATE_OPEN, pb.QUERY_STATE_READY, pb.QUERY_STATE_FAILED
RECEIPT_KEY_SETTING = "receipt-signing-key"


@dataclass
class _HelperQuery:
    record: QueryRecord
    lock: asyncio.Lock
    # Seed digests per holder: committed, and pending (being group-committed).
    digests: dict[str, bytes] = field(default_factory=dict)
    pending: dict[str, tuple[bytes, asyncio.Future]] = field(default_factory=dict)
    # Running sum of the expansions of stored seeds (memory only; rebuilt from the
    # seeds if lost), so finalising costs a correction, not one expansion per holder.
    running: np.ndarray | None = None
    included: set[str] = field(default_factory=set)
    sum_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closing: bool = False  # finalisation started: no more folding
    finalizing: asyncio.Future | None = None
    finalizing_set: tuple[str, ...] = ()


@dataclass
class _SeedWrite:
    query: _HelperQuery
    holder: str
    seed: bytes
    digest: bytes
    future: asyncio.Future


class Helper(pb_grpc.HelperServicer):
    """The helper's gRPC servicer."""

    def __init__(self, config: ServerConfig, store: AsyncStore) -> None:
        self.config = config
        self.store = store
        self.queries: dict[str, _HelperQuery] = {}
        self._insecure = config.tls is None
        self._key: Ed25519PrivateKey | None = None
        self._seed_queue: asyncio.Queue[_SeedWrite] = asyncio.Queue()
        self._expand_queue: asyncio.Queue[tuple[_HelperQuery, str, bytes]] = asyncio.Queue()
        self._writer: asyncio.Task | None = None
        self._expander: asyncio.Task | None = None
        self._sweeper: asyncio.Task | None = None

    async def start(self) -> None:
        s = self.store.store
        raw = await self.store.run(s.get_setting, RECEIPT_KEY_SETTING)
        if raw is None:
            key = Ed25519PrivateKey.generate()
            raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
            await self.store.run(s.put_setting, RECEIPT_KEY_SETTING, raw)
        self._key = Ed25519PrivateKey.from_private_bytes(raw)
        for rec in await self.store.run(s.load_queries):
            q = _HelperQuery(rec, asyncio.Lock())
            if rec.state == OPEN:
                q.digests = await self.store.run(s.seed_digests, rec.id)
            self.queries[rec.id] = q
        self._writer = asyncio.create_task(self._seed_writer(), name="helper-seed-writer")
        self._sweeper = asyncio.create_task(self._expire_seeds(), name="helper-seed-expiry")
        self._expander = asyncio.create_task(self._seed_expander(), name="helper-expander")
        log.info("helper started", extra={"queries": len(self.queries)})

    async def stop(self) -> None:
        tasks = [t for t in (self._writer, self._expander, self._sweeper) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _expire_seeds(self) -> None:
        """Delete the seeds of queries the leader never finalised nor aborted.

        A query still OPEN ``seed_retention_seconds`` after its deadline is
        one whose leader lost track of it; its seeds would otherwise be kept
        forever. It is aborted locally (FAILED, seeds deleted, nothing released).
        """
        retention = self.config.limits.seed_retention_seconds
        while True:
            await asyncio.sleep(min(60.0, max(0.5, retention / 4)))
            now = time.time()
            for q in list(self.queries.values()):
                if q.record.state == OPEN and q.record.deadline + retention < now:
                    try:
                        await self._abort(q, reason="expired")
                        log.warning("seeds expired", extra={"query_id": q.record.id})
                    except Exception:  # e.g. finalised meanwhile; try the rest
                        log.exception("could not expire seeds", extra={"query_id": q.record.id})

    async def _seed_expander(self) -> None:
        """Fold stored seeds into their query's running sum, in a worker thread."""
        while True:
            batch = [await self._expand_queue.get()]
            while not self._expand_queue.empty():
                batch.append(self._expand_queue.get_nowait())
            by_query: dict[str, list[tuple[str, bytes]]] = {}
            queries: dict[str, _HelperQuery] = {}
            for q, holder, seed in batch:
                by_query.setdefault(q.record.id, []).append((holder, seed))
                queries[q.record.id] = q
            for qid, items in by_query.items():
                q = queries[qid]
                async with q.sum_lock:
                    if q.record.state != OPEN or q.closing:
                        continue
                    try:
                        await offload(8 * q.record.vector_length * len(items), _fold, q, items)
                    except Exception:  # finalisation recomputes whatever is missing
                        log.exception("could not fold seeds", extra={"query_id": qid})

    async def _seed_writer(self) -> None:
        """Group commit: every seed waiting is stored in one transaction (one fsync)."""
        while True:
            batch = [await self._seed_queue.get()]
            while not self._seed_queue.empty():
                batch.append(self._seed_queue.get_nowait())
            rows = [(w.query.record.id, w.holder, w.seed, w.digest) for w in batch]
            try:
                stored = await self.store.run(self.store.store.put_seeds, rows)
                error: Exception | None = None
            except Exception:
                log.exception("could not store seeds")
                stored, error = [False] * len(batch), UnavailableError("could not store the seed")
            for w, ok in zip(batch, stored, strict=True):
                w.query.pending.pop(w.holder, None)
                if ok:
                    w.query.digests[w.holder] = w.digest
                    self._expand_queue.put_nowait((w.query, w.holder, w.seed))
                if not w.future.done():
                    if ok:
                        w.future.set_result(None)
                    else:
                        w.future.set_exception(
                            error or NotReadyError(f"query {w.query.record.id} is finalised")
                        )

    def _query(self, query_id: str) -> _HelperQuery:
        q = self.queries.get(query_id)
        if q is None:
            raise NotFoundError(f"no query {query_id!r} registered with helper {self.config.name}")
        return q

    def _public_key(self) -> bytes:
        assert self._key is not None
        return self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @unary
    async def GetInfo(
        self, request: pb.HelperInfoRequest, context: grpc.aio.ServicerContext
    ) -> pb.HelperInfo:
        require(caller(context, insecure=self._insecure), [Role.LEADER], "read helper info")
        return pb.HelperInfo(name=self.config.name, receipt_public_key=self._public_key())

    @unary
    async def RegisterQuery(
        self, request: pb.RegisterQueryRequest, context: grpc.aio.ServicerContext
    ) -> pb.RegisterQueryResponse:
        require(caller(context, insecure=self._insecure), [Role.LEADER], "register queries")
        if not QUERY_ID.fullmatch(request.query_id) or request.vector_length < 1:
            raise InvalidInputError("a query needs a well-formed id and a positive vector length")
        if request.vector_length > self.config.limits.max_vector_length:
            raise InvalidInputError(
                f"vector length {request.vector_length} exceeds this helper's limit of "
                f"{self.config.limits.max_vector_length}"
            )
        existing = self.queries.get(request.query_id)
        spec = request.spec.SerializeToString()
        if existing is not None:
            if existing.record.spec != spec or existing.record.analyst != request.analyst:
                raise ConflictError(f"query {request.query_id} is registered with another spec")
            return pb.RegisterQueryResponse()
        rec = QueryRecord(
            id=request.query_id,
            analyst=request.analyst,
            spec=spec,
            state=OPEN,
            created=time.time(),
            deadline=request.deadline_unix,
            min_holders=max(request.min_holders, self.config.min_holders),
            vector_length=request.vector_length,
        )
        await self.store.run(self.store.store.insert_query, rec)
        self.queries[rec.id] = _HelperQuery(rec, asyncio.Lock())
        log.info("query registered", extra={"query_id": rec.id, "analyst": rec.analyst})
        return pb.RegisterQueryResponse()

    @unary
    async def SubmitSeed(
        self, request: pb.SeedSubmission, context: grpc.aio.ServicerContext
    ) -> pb.SeedReceipt:
        peer = caller(context, insecure=self._insecure)
        require(peer, [Role.HOLDER], "submit seeds")
        if len(request.seed) != prg.SEED_BYTES:
            raise InvalidInputError(f"a seed is exactly {prg.SEED_BYTES} bytes")
        q = self._query(request.query_id)
        seed = bytes(request.seed)
        seed_digest = hashlib.sha256(seed).digest()
        known = q.digests.get(peer.name)
        if known is None:
            if q.record.state != OPEN:
                raise NotReadyError(f"query {request.query_id} is finalised; no more seeds")
            pending = q.pending.get(peer.name)
            if pending is None:
                future = asyncio.get_running_loop().create_future()
                q.pending[peer.name] = (seed_digest, future)
                await self._seed_queue.put(_SeedWrite(q, peer.name, seed, seed_digest, future))
            else:
                known, future = pending
            await asyncio.shield(future)  # durable before any receipt is signed
            log.debug("seed stored", extra={"query_id": q.record.id, "holder": peer.name})
        if known is not None and not hmac.compare_digest(known, seed_digest):
            raise ConflictError(
                f"holder {peer.name} already sent a different seed for {q.record.id}"
            )
        assert self._key is not None
        message = wire.receipt_message(self.config.name, q.record.id, peer.name, seed_digest)
        return pb.SeedReceipt(
            helper=self.config.name,
            query_id=q.record.id,
            holder=peer.name,
            seed_digest=seed_digest,
            signature=self._key.sign(message),
        )

    @unary
    async def Finalize(
        self, request: pb.FinalizeRequest, context: grpc.aio.ServicerContext
    ) -> pb.FinalizeResponse:
        require(caller(context, insecure=self._insecure), [Role.LEADER], "finalise queries")
        q = self._query(request.query_id)
        if request.abort:
            return await self._abort(q)
        contributors = tuple(request.contributors)
        if list(contributors) != sorted(set(contributors)):
            raise InvalidInputError("contributors must be sorted and unique")
        async with q.lock:
            rec = q.record
            if rec.state == FAILED:
                raise NotReadyError(f"query {rec.id} was aborted by the leader")
            if rec.state == READY:
                if rec.contributors != contributors:
                    raise ConflictError(f"query {rec.id} was finalised over another set")
                return pb.FinalizeResponse(query_id=rec.id, contributors=len(contributors))
            if q.finalizing is None or (q.finalizing.done() and q.finalizing.exception()):
                if len(contributors) < rec.min_holders:
                    raise ThresholdNotMetError(
                        f"{len(contributors)} contributor(s) is below min_holders {rec.min_holders}"
                    )
                # One finalisation per query, owned by the helper: a caller that gives
                # up (a cancelled RPC) never interrupts it, and a retry joins it.
                q.finalizing = asyncio.ensure_future(self._finalize(q, contributors))
                q.finalizing_set = contributors
            elif q.finalizing_set != contributors:
                raise ConflictError(f"query {rec.id} is being finalised over another set")
            task = q.finalizing
        await asyncio.shield(task)
        return pb.FinalizeResponse(query_id=rec.id, contributors=len(contributors))

    async def _finalize(self, q: _HelperQuery, contributors: tuple[str, ...]) -> None:
        rec = q.record
        s = self.store.store
        stored_seeds = dict(await self.store.run(lambda: list(s.seeds(rec.id))))
        missing = sorted(set(contributors) - set(stored_seeds))
        if missing:
            raise NotReadyError(f"no seed stored for holder(s) {missing} in {rec.id}")
        wanted = set(contributors)
        async with q.sum_lock:
            q.closing = True  # the expander leaves this query alone from now on
            add = [(h, stored_seeds[h]) for h in sorted(wanted - q.included)]
            remove = [(h, stored_seeds[h]) for h in sorted(q.included - wanted)]
            running = q.running
            included = set(q.included)

            def compute() -> bytes:
                # Correct a private copy: the shared state changes only once this is done.
                total = (
                    np.zeros(rec.vector_length, dtype=np.uint64)
                    if running is None
                    else running.copy()
                )
                sharing.aggregate_seeds((seed for _, seed in add), rec.vector_length, total)
                sharing.aggregate_seeds(
                    (seed for _, seed in remove), rec.vector_length, total, sign=-1
                )
                assert included | {h for h, _ in add} == wanted | {h for h, _ in remove}
                return wire.vector_to_bytes(total)

            # Expanding seeds is CPU work: off the event loop and the SQLite thread.
            data = await asyncio.to_thread(compute)
            done = rec.with_state(READY, contributors=contributors)
            await self.store.run(s.finish_query, done, data)
            q.record = done
            q.running, q.included = None, set()
            q.digests.clear()
        log.info("query finalised", extra={"query_id": rec.id, "contributors": len(contributors)})

    async def _abort(
        self, q: _HelperQuery, reason: str = "aborted_by_leader"
    ) -> pb.FinalizeResponse:
        async with q.lock:
            rec = q.record
            if rec.state == READY or (q.finalizing is not None and not q.finalizing.done()):
                raise ConflictError(f"query {rec.id} is already finalised (or being finalised)")
            if rec.state != FAILED:
                failed = rec.with_state(FAILED, failure=reason)
                await self.store.run(self.store.store.finish_query, failed, None, True)
                q.record = failed
                q.digests.clear()
                q.running, q.included = None, set()
                log.info("query aborted; seeds deleted", extra={"query_id": rec.id})
        return pb.FinalizeResponse(query_id=rec.id)

    @streaming
    async def GetAggregate(
        self, request: pb.QueryRef, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.AggregateChunk]:
        peer = caller(context, insecure=self._insecure)
        require(peer, [Role.ANALYST], "read query results")
        q = self.queries.get(request.query_id)
        if q is None or not hmac.compare_digest(q.record.analyst.encode(), peer.name.encode()):
            raise NotFoundError(f"no query {request.query_id!r}")
        rec = q.record
        if rec.state != READY:
            raise NotReadyError(f"query {rec.id} is not finalised on helper {self.config.name}")
        data = await self.store.run(self.store.store.get_aggregate, rec.id)
        assert data is not None
        header = pb.AggregateHeader(
            query_id=rec.id,
            server=self.config.name,
            protocol=pb.PROTOCOL_ADDITIVE,
            contributors=len(rec.contributors),
            payload_bytes=len(data),
            contributor_names=list(rec.contributors),
        )
        log.info("aggregate released", extra={"query_id": rec.id, "analyst": peer.name})
        for chunk in aggregate_chunks(header, data):
            yield chunk


def _fold(q: _HelperQuery, items: list[tuple[str, bytes]]) -> None:
    """Add the seed expansions of holders not yet in ``q.running`` to it."""
    if q.running is None:
        q.running = np.zeros(q.record.vector_length, dtype=np.uint64)
    todo = [(h, seed) for h, seed in items if h not in q.included]
    sharing.aggregate_seeds((seed for _, seed in todo), q.record.vector_length, q.running)
    q.included.update(h for h, _ in todo)
