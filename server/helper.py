"""A helper: checks and opens holders' sealed seeds, and sums those the leader fixed.

A helper never sees a vector, and no holder connects to it: each holder seals
its seed to this helper's X25519 seal key and signs it (:mod:`pets.seal`),
and sends it with its masked vector to the leader, which cannot open it.

* **Prepare**, before the leader commits a batch of contributions: for each
  contributor the helper checks its certificate against the project CA (it
  must name that holder: the leader cannot invent contributors, nor list one
  holder under several names) and the holder's signature, and opens the
  seed. It keeps the seeds it accepts, in memory, and names those it
  refuses; the leader commits only what every helper accepted, so a
  contribution the leader acknowledged is complete everywhere.
* **Finalize**, once the query closed: the leader streams the fixed
  contributor set with each contributor's certificate and sealed seed (from
  its store). Seeds accepted earlier are used as they are; any other
  (say, after this helper restarted) is checked and opened now. The helper
  expands and sums them in place (the sum and one scratch vector, whatever
  the number of holders), stores the result and releases it only to the
  query's analyst, only with at least ``min_holders`` contributors.

Per open query the helper holds the accepted seeds (about 300 bytes per
contributor), nothing on disk. The seal key is generated on first start and
kept in the helper's database; the helper vouches for it with its
certificate key (:class:`pets.v1.HelperKey`), so the leader, which relays it
to holders, cannot swap in a key of its own.

The checks themselves are the query protocol's helper half
(:meth:`pets.protocols.AggregationProtocol.helper_checker`; for additive
queries :class:`pets.protocols.additive.SeedOpener`); this module is the
gRPC servicer and the per-query state around them.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import grpc
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from pets import seal
from pets.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    NotReadyError,
    ThresholdNotMetError,
)
from pets.identity.certificates import Role
from pets.protocols import AggregationProtocol, lookup
from pets.protocols.base import HelperChecker
from pets.server.config import ServerConfig
from pets.server.query_state import FAILED, OPEN, READY
from pets.server.rpc import aggregate_chunks, caller, require, streaming, unary
from pets.server.store import QUERY_ID, QueryRecord, Store
from pets.v1 import aggregation_pb2 as pb
from pets.v1 import aggregation_pb2_grpc as pb_grpc

log = logging.getLogger("pets.server.helper")

SEAL_KEY_SETTING = "seal-private-key"


@dataclass
class _HelperQuery:
    record: QueryRecord
    lock: asyncio.Lock
    finalizing: asyncio.Future | None = None
    finalizing_set: tuple[str, ...] = ()
    # Seeds accepted by Prepare, memory only: holder -> (sealed bytes, seed).
    # Finalize uses them without checking again; after a restart they are gone
    # and Finalize checks and opens what the leader sends.
    accepted: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)
    closing: bool = False  # finalisation started (or aborted): Prepare refuses

    @functools.cached_property
    def protocol(self) -> AggregationProtocol:
        return lookup(pb.QuerySpec.FromString(self.record.spec).protocol)


class Helper(pb_grpc.HelperServicer):
    """The helper's gRPC servicer."""

    def __init__(self, config: ServerConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self.queries: dict[str, _HelperQuery] = {}
        self._insecure = config.tls is None
        self._ca_pem = None if config.tls is None else config.tls.ca.read_bytes()
        self._seal_key: x25519.X25519PrivateKey | None = None
        self._key_statement: pb.HelperKey | None = None

    async def start(self) -> None:
        raw = await self.store.get_setting(SEAL_KEY_SETTING)
        if raw is None:
            key = x25519.X25519PrivateKey.generate()
            raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
            await self.store.put_setting(SEAL_KEY_SETTING, raw)
        self._seal_key = x25519.X25519PrivateKey.from_private_bytes(raw)
        self._key_statement = self._vouch(seal.public_bytes(self._seal_key.public_key()))
        for rec in await self.store.load_queries():
            self.queries[rec.id] = _HelperQuery(rec, asyncio.Lock())
        log.info("helper started", extra={"queries": len(self.queries)})

    async def stop(self) -> None:
        for q in self.queries.values():
            if q.finalizing is not None and not q.finalizing.done():
                q.finalizing.cancel()

    def _vouch(self, public_key: bytes) -> pb.HelperKey:
        """The seal key, signed with this helper's certificate key (unsigned if insecure)."""
        statement = pb.HelperKey(helper=self.config.name, seal_public_key=public_key)
        tls = self.config.tls
        if tls is not None:
            key = load_pem_private_key(tls.key.read_bytes(), password=None)
            statement.certificate = tls.cert.read_bytes()
            statement.signature = seal.sign_helper_key(self.config.name, public_key, key)  # type: ignore[arg-type]
        return statement

    def _checker(self, q: _HelperQuery) -> HelperChecker:
        """The query protocol's helper half, for this query on this helper."""
        assert self._seal_key is not None
        rec = q.record
        return q.protocol.helper_checker(
            query_id=rec.id,
            fingerprint=rec.fingerprint,
            vector_length=rec.vector_length,
            created=rec.created,
            deadline=rec.deadline,
            helper=self.config.name,
            seal_key=self._seal_key,
            ca_pem=self._ca_pem,
            insecure=self._insecure,
        )

    def _query(self, query_id: str) -> _HelperQuery:
        q = self.queries.get(query_id)
        if q is None:
            raise NotFoundError(f"no query {query_id!r} registered with helper {self.config.name}")
        return q

    @unary
    async def GetInfo(
        self, request: pb.HelperInfoRequest, context: grpc.aio.ServicerContext
    ) -> pb.HelperInfo:
        require(caller(context, insecure=self._insecure), [Role.LEADER], "read helper info")
        return pb.HelperInfo(name=self.config.name, seal_key=self._key_statement)

    @unary
    async def RegisterQuery(
        self, request: pb.RegisterQueryRequest, context: grpc.aio.ServicerContext
    ) -> pb.RegisterQueryResponse:
        require(caller(context, insecure=self._insecure), [Role.LEADER], "register queries")
        if not QUERY_ID.fullmatch(request.query_id) or request.vector_length < 1:
            raise InvalidInputError("a query needs a well-formed id and a positive vector length")
        if len(request.fingerprint) != 32:
            raise InvalidInputError("a query needs its 32-byte fingerprint")
        if request.vector_length > self.config.limits.max_vector_length:
            raise InvalidInputError(
                f"vector length {request.vector_length} exceeds this helper's limit of "
                f"{self.config.limits.max_vector_length}"
            )
        if not lookup(request.spec.protocol).uses_helpers:
            raise InvalidInputError("this query's protocol involves no helper")
        existing = self.queries.get(request.query_id)
        spec = request.spec.SerializeToString()
        response = pb.RegisterQueryResponse(seal_key=self._key_statement)
        if existing is not None:
            rec = existing.record
            if (
                rec.spec != spec
                or rec.analyst != request.analyst
                or rec.fingerprint != bytes(request.fingerprint)
            ):
                raise ConflictError(f"query {request.query_id} is registered with another spec")
            return response
        rec = QueryRecord(
            id=request.query_id,
            analyst=request.analyst,
            spec=spec,
            state=OPEN,
            created=time.time(),
            deadline=request.deadline_unix,
            min_holders=max(request.min_holders, self.config.min_holders),
            vector_length=request.vector_length,
            fingerprint=bytes(request.fingerprint),
        )
        await self.store.insert_query(rec)
        self.queries[rec.id] = _HelperQuery(rec, asyncio.Lock())
        log.info("query registered", extra={"query_id": rec.id, "analyst": rec.analyst})
        return response

    async def _read(
        self, request_iterator: AsyncIterator[pb.FinalizeMessage]
    ) -> tuple[pb.FinalizeHeader, list[pb.SealedContribution]]:
        """The header and the contributors of a Prepare or Finalize stream, checked."""
        stream = request_iterator.__aiter__()
        try:
            first = await stream.__anext__()
        except StopAsyncIteration:
            raise InvalidInputError("empty finalisation stream: expected a header") from None
        if not first.HasField("header"):
            raise InvalidInputError("the first finalisation message must carry its header")
        header = first.header
        items = list(first.contributions)
        async for msg in stream:
            if msg.HasField("header"):
                raise InvalidInputError("only the first finalisation message may carry a header")
            items.extend(msg.contributions)
            if len(items) > header.contributors:
                raise InvalidInputError(
                    f"more than the announced {header.contributors} contributors"
                )
        if len(items) != header.contributors:
            raise InvalidInputError(
                f"finalisation announced {header.contributors} contributors, sent {len(items)}"
            )
        holders = [c.holder for c in items]
        if holders != sorted(set(holders)):
            raise InvalidInputError("contributors must be sorted and unique")
        return header, items

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
        require(caller(context, insecure=self._insecure), [Role.LEADER], "prepare queries")
        header, items = await self._read(request_iterator)
        q = self._query(header.query_id)
        # The work belongs to the helper, not to this call: a caller that gives up
        # never leaves the accepted seeds half-updated.
        refused = await asyncio.shield(asyncio.ensure_future(self._prepare(q, items)))
        return pb.PrepareResponse(
            query_id=q.record.id,
            refused=[pb.Refusal(holder=h, reason=r) for h, r in refused],
            accepted=len(items) - len(refused),
        )

    async def _prepare(
        self, q: _HelperQuery, items: Sequence[pb.SealedContribution]
    ) -> list[tuple[str, str]]:
        assert self._seal_key is not None
        if q.closing or q.record.state != OPEN:
            raise NotReadyError(f"query {q.record.id} is no longer accepting contributions")
        accepted, refused = await asyncio.to_thread(self._checker(q).check, items, dict(q.accepted))
        if q.closing:  # finalisation began meanwhile: it has its own copy; keep it simple
            raise NotReadyError(f"query {q.record.id} is no longer accepting contributions")
        q.accepted.update(accepted)
        return refused

    @unary
    async def Finalize(
        self,
        request_iterator: AsyncIterator[pb.FinalizeMessage],
        context: grpc.aio.ServicerContext,
    ) -> pb.FinalizeResponse:
        require(caller(context, insecure=self._insecure), [Role.LEADER], "finalise queries")
        header, items = await self._read(request_iterator)
        q = self._query(header.query_id)
        if header.abort:
            return await self._abort(q)
        contributors = tuple(c.holder for c in items)
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
                q.finalizing = asyncio.ensure_future(self._finalize(q, items))
                q.finalizing_set = contributors
            elif q.finalizing_set != contributors:
                raise ConflictError(f"query {rec.id} is being finalised over another set")
            task = q.finalizing
        await asyncio.shield(task)
        return pb.FinalizeResponse(query_id=rec.id, contributors=len(contributors))

    async def _finalize(self, q: _HelperQuery, items: Sequence[pb.SealedContribution]) -> None:
        rec = q.record
        assert self._seal_key is not None
        q.closing = True  # no more Prepare: the set is fixed
        # Checking what Prepare did not see, opening and expanding seeds is CPU
        # work: off the event loop and the SQLite thread, as one job.
        data = await asyncio.to_thread(self._checker(q).finalise, items, dict(q.accepted))
        released = q.protocol.release_share(data)
        contributors = tuple(c.holder for c in items)
        done = rec.with_state(READY, contributors=contributors)
        await self.store.finish_query(done, data if released is None else released)
        q.record = done
        q.accepted = {}
        log.info("query finalised", extra={"query_id": rec.id, "contributors": len(contributors)})

    async def _abort(
        self, q: _HelperQuery, reason: str = "aborted_by_leader"
    ) -> pb.FinalizeResponse:
        async with q.lock:
            rec = q.record
            if rec.state == READY or (q.finalizing is not None and not q.finalizing.done()):
                raise ConflictError(f"query {rec.id} is already finalised (or being finalised)")
            if rec.state != FAILED:
                q.closing = True
                failed = rec.with_state(FAILED, failure=reason)
                await self.store.finish_query(failed, None, True)
                q.record = failed
                q.accepted = {}
                log.info("query aborted", extra={"query_id": rec.id})
        return pb.FinalizeResponse(query_id=rec.id)

    @streaming
    async def GetAggregate(
        self, request: pb.QueryRef, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        peer = caller(context, insecure=self._insecure)
        require(peer, [Role.ANALYST], "read query results")
        q = self.queries.get(request.query_id)
        if q is None or not hmac.compare_digest(q.record.analyst.encode(), peer.name.encode()):
            raise NotFoundError(f"no query {request.query_id!r}")
        rec = q.record
        if rec.state != READY:
            raise NotReadyError(f"query {rec.id} is not finalised on helper {self.config.name}")
        data = await self.store.get_aggregate(rec.id)
        assert data is not None
        header = pb.AggregateHeader(
            query_id=rec.id,
            server=self.config.name,
            protocol=q.protocol.wire_id,
            contributors=len(rec.contributors),
            payload_bytes=len(data),
            contributor_names=list(rec.contributors),
        )
        log.info("aggregate released", extra={"query_id": rec.id, "analyst": peer.name})
        for chunk in aggregate_chunks(header, data):
            yield chunk
