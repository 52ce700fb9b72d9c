"""A helper's queries: registration, Prepare, finalisation, abort.

Per open query the helper holds the seeds Prepare accepted (memory only,
about 300 bytes per contributor); Finalize uses them without checking again
and checks and opens anything else (say, after a restart). One finalisation
per query, owned by the helper: a leader that gives up on a call never
interrupts it, and a retry joins it. The checks and the sum are the query
protocol's helper half (:meth:`pets.protocols.AggregationProtocol.helper_checker`).

**Replicas** (issue 14, item 2; docs/ARCHITECTURE.md, "The helper"): several
processes of one helper may share its PostgreSQL database, behind one name.
Any of them serves any call: a query registered through another replica is
loaded from the store on first use (:meth:`HelperQueries.get`); a replica that
did not see a contribution's Prepare checks and opens its sealed seed at
Finalize, as after a restart; and a query is finished once across replicas,
because the store's finish is conditional on the query still being open
(:class:`~pets.server.store.base.AlreadyFinishedError`): the replica that
loses the race stores nothing, spends no privacy budget and answers with the
winner's stored result. :mod:`pets.server.helper.replicas` keeps each
replica's memory in step with what the others did.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import x25519

from pets.dp import NoisePlan
from pets.errors import (
    ConfigError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    NotReadyError,
    ThresholdNotMetError,
)
from pets.protocols import AggregationProtocol, lookup
from pets.protocols.base import HelperChecker, HelperQueryContext
from pets.query import Query, QueryPlan, Schema
from pets.query import compile as compile_query
from pets.server import linked_budget
from pets.server.config import ServerConfig
from pets.server.helper import checking
from pets.server.privacy import ServerPrivacy
from pets.server.query_state import FAILED, OPEN, READY
from pets.server.release_policy import ReleaseGuard
from pets.server.store import QUERY_ID, QueryRecord, Store
from pets.server.store.base import AlreadyFinishedError, VerifyKey
from pets.v1 import aggregation_pb2 as pb

log = logging.getLogger("pets.server.helper")


@dataclass
class HelperQuery:
    """One query on this helper."""

    record: QueryRecord
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    finalizing: asyncio.Future[None] | None = None
    finalizing_set: tuple[str, ...] = ()
    # Seeds accepted by Prepare, memory only: holder -> (sealed bytes, seed).
    # Finalize uses them without checking again; after a restart they are gone
    # and Finalize checks and opens what the leader sends.
    accepted: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)
    closing: bool = False  # finalisation started (or aborted): Prepare refuses
    # Prio3 (issue 12): the query's verify key, aggregator id and circuit bounds, as
    # the leader registered them (stored; erased when the query ends).
    verify_key: VerifyKey | None = None
    # DP (issue 11): this helper's own plan and noise plan for the query
    # (HelperQueries._dp_plan), kept from the registration so that finalisation does
    # not compile the query again on its critical path; ``dp_known`` False (a replica
    # that loaded the query from the store) computes it there.
    dp: tuple[QueryPlan, NoisePlan | None] | None = None
    dp_known: bool = False

    @functools.cached_property
    def protocol(self) -> AggregationProtocol:
        return lookup(pb.QuerySpec.FromString(self.record.spec).protocol)


def _asks_for_dp(query_json: str) -> bool:
    """Whether a query's JSON carries a ``dp`` request (without compiling it)."""
    try:
        doc = json.loads(query_json)
    except ValueError:
        return False
    return isinstance(doc, dict) and doc.get("dp") is not None


class HelperQueries:
    """Every query this helper knows, and what the leader may do with them."""

    def __init__(self, config: ServerConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self.queries: dict[str, HelperQuery] = {}
        self._ca_pem = None if config.tls is None else config.tls.ca.read_bytes()
        self._seal_key: x25519.X25519PrivateKey | None = None
        # DP: this helper derives each DP query's noise itself, from its own schema.
        self.privacy = ServerPrivacy(config.dp, store, config.name)
        # The release rule (pets.server.release_policy), checked at every finalisation.
        self.releases = ReleaseGuard(store, config.limits.release_window_seconds, time.time)
        self._schema: Schema | None = None
        if config.schema is not None:
            try:
                self._schema = Schema.from_toml(config.schema.read_text())
            except FileNotFoundError:
                raise ConfigError(f"schema file {config.schema} does not exist") from None

    async def load(self, seal_key: x25519.X25519PrivateKey) -> None:
        self._seal_key = seal_key
        for rec in await self.store.load_queries():
            await self._remember(rec)

    async def _remember(self, rec: QueryRecord) -> HelperQuery:
        """Keep a stored query in memory (with its Prio3 verify key); the one already
        kept if another call got there first."""
        q = HelperQuery(rec)
        if q.protocol.verifies and rec.state == OPEN:
            q.verify_key = await self.store.get_verify_key(rec.id)
        return self.queries.setdefault(rec.id, q)

    def stop(self) -> None:
        for q in self.queries.values():
            if q.finalizing is not None and not q.finalizing.done():
                q.finalizing.cancel()

    async def find(self, query_id: str) -> HelperQuery | None:
        """A query from memory or, registered through another replica, from the store."""
        q = self.queries.get(query_id)
        if q is None and QUERY_ID.fullmatch(query_id):
            rec = await self.store.load_query(query_id)
            if rec is not None:
                q = await self._remember(rec)
        return q

    async def get(self, query_id: str) -> HelperQuery:
        q = await self.find(query_id)
        if q is None:
            raise NotFoundError(f"no query {query_id!r} registered with helper {self.config.name}")
        return q

    async def refresh(self, q: HelperQuery) -> QueryRecord:
        """The query as stored now: another replica may have finalised or aborted it
        (then this replica's seeds and noise for it are dropped). A finalisation
        running here is left alone."""
        if q.record.state == OPEN and (q.finalizing is None or q.finalizing.done()):
            stored = await self.store.load_query(q.record.id)
            if stored is not None and stored.state != OPEN:
                self._ended_elsewhere(q, stored)
        return q.record

    def _ended_elsewhere(self, q: HelperQuery, stored: QueryRecord) -> None:
        """Another replica finished the query: adopt its record, forget what only
        a finalisation here would have needed."""
        dropped = len(q.accepted)
        q.record = stored
        q.closing = True
        q.accepted = {}
        q.verify_key = None
        q.dp, q.dp_known = None, False
        self.privacy.discard(stored.id)
        log.info(
            "query ended on another replica",
            extra={"query_id": stored.id, "state": stored.state, "dropped_seeds": dropped},
        )

    def _checker(self, q: HelperQuery) -> HelperChecker:
        """The query protocol's helper half, for this query on this helper."""
        assert self._seal_key is not None
        rec = q.record
        checker = q.protocol.helper_checker(
            HelperQueryContext(
                query_id=rec.id,
                fingerprint=rec.fingerprint,
                vector_length=rec.vector_length,
                created=rec.created,
                deadline=rec.deadline,
                helper=self.config.name,
                seal_key=self._seal_key,
                ca_pem=self._ca_pem,
                insecure=self.config.tls is None,
            )
        )
        if not q.protocol.verifies:
            return checker
        key = q.verify_key
        if key is None:  # the query ended (the key is erased) or was never keyed
            raise NotReadyError(f"helper {self.config.name} holds no verify key for {rec.id}")
        return q.protocol.keyed_checker(checker, key.key, key.aggregator_id, key.bounds)

    def _dp_plan(
        self, spec: pb.QuerySpec, fingerprint: bytes
    ) -> tuple[QueryPlan, NoisePlan | None] | None:
        """The helper's own plan and noise for a query (None: no DP and none required).

        The plan is compiled from this helper's schema and must have the fingerprint
        the leader registered, so both derive the same noise from the same bounds.
        """
        if not self.config.dp.require and not _asks_for_dp(spec.query_json):
            return None
        query = Query.from_json(spec.query_json)
        if self._schema is None:
            raise InvalidInputError(
                f"helper {self.config.name} has no schema, so it cannot derive the noise of a "
                "differentially private query; configure `schema` on the helper"
            )
        plan = compile_query(query, self._schema)
        if plan.fingerprint() != fingerprint:
            raise ConflictError(
                f"helper {self.config.name} compiles this query to another plan: its schema "
                "differs from the leader's"
            )
        return plan, self.config.dp.admit(plan)

    # -- registration ------------------------------------------------------------
    async def register(self, request: pb.RegisterQueryRequest) -> None:
        """Record a query the leader registers (again: a no-op if it is the same)."""
        limit = self.config.limits.max_vector_length
        if not QUERY_ID.fullmatch(request.query_id) or request.vector_length < 1:
            raise InvalidInputError("a query needs a well-formed id and a positive vector length")
        if len(request.fingerprint) != 32:
            raise InvalidInputError("a query needs its 32-byte fingerprint")
        if request.vector_length > limit:
            raise InvalidInputError(
                f"vector length {request.vector_length} exceeds this helper's limit of {limit}"
            )
        if request.spec.protocol == pb.PROTOCOL_UNSPECIFIED:
            raise InvalidInputError("the query must name its protocol")
        if not lookup(request.spec.protocol).uses_helpers:
            raise InvalidInputError("this query's protocol involves no helper")
        dp = self._dp_plan(request.spec, bytes(request.fingerprint))
        # Registered already (here, or through another replica): the same is a no-op
        # (checked first: admitting starts drawing the query's noise, ~50 ms of CPU at
        # 10^6 Gaussian slots, which a retried registration must not pay again).
        existing = await self.find(request.query_id)
        spec = request.spec.SerializeToString()
        if existing is not None:
            self._same_registration(existing.record, request, spec)
            return
        noise = None
        if dp is not None:  # the policy, and an early budget refusal (nothing spent)
            noise = await self.privacy.admit(request.analyst, dp[0], lookup(request.spec.protocol))
        if request.spec.protocol == pb.PROTOCOL_LINKAGE:  # this helper's own count
            domain = linked_budget.spec_domain(request.spec.query_json, self._schema)
            await linked_budget.reserve(
                self.store, self.config.limits, domain, request.query_id, time.time()
            )
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
        key = None
        if lookup(request.spec.protocol).verifies:  # Prio3: keep the query's verify key
            key = self._verify_key(request)
            await self.store.put_verify_key(rec.id, key)
        try:
            await self.store.insert_query(rec)
        except ConflictError:  # another replica recorded it a moment ago
            stored = await self.find(rec.id)
            if stored is None:
                raise
            self._same_registration(stored.record, request, spec)
            return
        self.queries[rec.id] = HelperQuery(rec, verify_key=key, dp=dp, dp_known=True)
        if noise is not None:  # DP: this helper's noise, drawn before it answers
            await self.privacy.prepare(rec.id, noise)
        log.info("query registered", extra={"query_id": rec.id, "analyst": rec.analyst})

    @staticmethod
    def _same_registration(rec: QueryRecord, request: pb.RegisterQueryRequest, spec: bytes) -> None:
        """A query registered again must be registered the same (ConflictError)."""
        if (
            rec.spec != spec
            or rec.analyst != request.analyst
            or rec.fingerprint != bytes(request.fingerprint)
        ):
            raise ConflictError(f"query {request.query_id} is registered with another spec")

    # -- Prepare -----------------------------------------------------------------
    @staticmethod
    def _verify_key(request: pb.RegisterQueryRequest) -> VerifyKey:
        """The Prio3 verify key a RegisterQuery carries, checked."""
        if len(request.verify_key) != 32 or request.aggregator_id < 1:
            raise InvalidInputError("a prio3 query needs a 32-byte verify key and an aggregator id")
        from pets.protocols.prio3 import checked_vdaf  # loads the VDAF only when used

        bounds = tuple(int(b) for b in request.prio3_bounds)
        checked_vdaf(bounds, request.vector_length)
        return VerifyKey(bytes(request.verify_key), int(request.aggregator_id), bounds)

    async def prepare(
        self,
        q: HelperQuery,
        items: Sequence[pb.SealedContribution],
        verifier_shares: dict[str, bytes] | None = None,
    ) -> list[tuple[str, str]]:
        """Check and open what Prepare relays; keep what is accepted; the refused
        holders with why. A verifying protocol's (Prio3) verifier shares of the
        accepted holders go into ``verifier_shares``."""
        if q.closing or q.record.state != OPEN:
            raise NotReadyError(f"query {q.record.id} is no longer accepting contributions")
        checker = self._checker(q)
        accepted, refused = await checking.check(
            checker, items, dict(q.accepted), in_thread=q.protocol.verifies
        )
        if q.closing:  # finalisation began meanwhile: it has its own copy; keep it simple
            raise NotReadyError(f"query {q.record.id} is no longer accepting contributions")
        q.accepted.update(accepted)
        if verifier_shares is not None:
            verifier_shares.update(getattr(checker, "verifier_shares", {}))
        return refused

    # -- finalisation ------------------------------------------------------------
    async def finalise(self, q: HelperQuery, items: Sequence[pb.SealedContribution]) -> None:
        """Finalise over exactly ``items`` (joining a finalisation already running)."""
        contributors = tuple(c.holder for c in items)
        async with q.lock:
            # Another replica may have finalised or aborted it meanwhile.
            rec = await self.refresh(q)
            if rec.state == FAILED:
                raise NotReadyError(f"query {rec.id} was aborted by the leader")
            if rec.state == READY:
                if rec.contributors != contributors:
                    raise ConflictError(f"query {rec.id} was finalised over another set")
                return
            if q.finalizing is None or (q.finalizing.done() and q.finalizing.exception()):
                if len(contributors) < rec.min_holders:
                    raise ThresholdNotMetError(
                        f"{len(contributors)} contributor(s) is below min_holders {rec.min_holders}"
                    )
                # The release rule, enforced by this helper itself (whatever the leader
                # did): ThresholdNotMetError if the set could isolate a holder.
                await self.releases.claim(rec.fingerprint, rec.id, contributors)
                # One finalisation per query, owned by the helper: a caller that gives
                # up (a cancelled RPC) never interrupts it, and a retry joins it.
                q.finalizing = asyncio.ensure_future(self._finalise(q, items))
                q.finalizing_set = contributors
            elif q.finalizing_set != contributors:
                raise ConflictError(f"query {rec.id} is being finalised over another set")
            task = q.finalizing
        await asyncio.shield(task)

    async def _finalise(self, q: HelperQuery, items: Sequence[pb.SealedContribution]) -> None:
        rec = q.record
        q.closing = True  # no more Prepare: the set is fixed
        # Checking what Prepare did not see, opening and expanding seeds is CPU
        # work: off the event loop and the store's thread, as one job.
        data = await asyncio.to_thread(self._checker(q).finalise, items, dict(q.accepted))
        released = q.protocol.release_share(data)
        contributors = tuple(c.holder for c in items)
        done = rec.with_state(READY, contributors=contributors)
        spec = pb.QuerySpec.FromString(rec.spec)
        dp = q.dp if q.dp_known else self._dp_plan(spec, rec.fingerprint)
        try:
            if dp is not None and dp[1] is not None:
                # This helper's own noise, stored with the budget it spends (one
                # transaction); PrivacyBudgetExceededError (PERMISSION_DENIED) leaves
                # both as they were.
                share = data if released is None else released
                await self.privacy.release(done, q.protocol, spec, dp[0], dp[1], share)
            else:
                await self.store.finish_query(done, data if released is None else released)
        except AlreadyFinishedError:
            # Another replica finished it first: its share (and noise, and spend) stands.
            await self._adopt_winner(q, contributors)
            return
        q.record = done
        q.accepted = {}
        q.dp, q.dp_known = None, False  # a later Finalize of the same set returns early
        log.info(
            "query finalised",
            # The names are for the operator's log only: analysts learn the count.
            extra={
                "query_id": rec.id,
                "contributors": len(contributors),
                "contributor_names": list(contributors),
            },
        )

    async def _adopt_winner(self, q: HelperQuery, contributors: tuple[str, ...]) -> None:
        """After losing the finish to another replica: its stored record, if it
        finalised over the same set (ConflictError, NotReadyError otherwise)."""
        stored = await self.store.load_query(q.record.id)
        if stored is None:  # not possible while queries are never deleted
            raise NotFoundError(f"query {q.record.id} vanished from the store")
        self._ended_elsewhere(q, stored)
        if stored.state == FAILED:
            raise NotReadyError(f"query {stored.id} was aborted by the leader")
        if stored.contributors != contributors:
            raise ConflictError(f"query {stored.id} was finalised over another set")
        log.info(
            "query finalised by another replica",
            extra={"query_id": stored.id, "contributors": len(contributors)},
        )

    async def abort(self, q: HelperQuery, reason: str = "aborted_by_leader") -> None:
        """The leader failed the query: nothing will be released for it."""
        async with q.lock:
            rec = await self.refresh(q)
            if rec.state == READY or (q.finalizing is not None and not q.finalizing.done()):
                raise ConflictError(f"query {rec.id} is already finalised (or being finalised)")
            if rec.state != FAILED:
                q.closing = True
                failed = rec.with_state(FAILED, failure=reason)
                self.privacy.discard(rec.id)
                try:
                    await self.store.finish_query(failed, None, True)
                except AlreadyFinishedError:  # another replica finalised or aborted it
                    stored = await self.store.load_query(rec.id)
                    assert stored is not None
                    self._ended_elsewhere(q, stored)
                    if stored.state == READY:
                        raise ConflictError(f"query {rec.id} is already finalised") from None
                    return
                q.record = failed
                q.accepted = {}
                q.dp, q.dp_known = None, False
                log.info("query aborted", extra={"query_id": rec.id})
