"""A query's life on the leader: open, deadline, close, finalise, resume.

1. :meth:`Lifecycle.open` registers an admitted query with every helper (if
   its protocol uses helpers), records it and schedules its deadline; the
   servicer then announces it.
2. At the deadline (or once ``close_after`` holders contributed, or when the
   analyst closes it) the batching loops fix the contributor set
   (:meth:`pets.server.leader.batching.Batching.close`), then
   :meth:`Lifecycle.finalise` streams every helper exactly that set, each
   contributor with its certificate and the seed sealed to that helper.
3. The query becomes READY, or FAILED when fewer than ``min_holders``
   contributed or a helper could not finalise (the helpers are then told the
   query failed). Only READY queries release aggregates, only to their analyst.

:meth:`Lifecycle.resume` reloads every query from the store at start-up and
picks up the open and closing ones where they were.

A close or a finalisation that fails (a full disk, a store that is briefly
unreachable) is retried with :class:`pets.runtime.backoff.Backoff` until it
succeeds (:meth:`Lifecycle.close_until_done`,
:meth:`Lifecycle.finalise_until_done`); meanwhile the query's status carries
``stuck_reason`` and ``stuck_attempts``, so an analyst waiting on it sees why.
(A helper that stays unreachable is different: the query fails after
``finalize_timeout_seconds``.)

Replicas (issue 14): every replica that sees a query CLOSED runs
:meth:`Lifecycle.finalise_until_done`, but only the one holding the query's
finalisation lease (:meth:`pets.server.store.Store.take_lease`, renewed every
third of ``finalise_lease_seconds``) finalises; the others wait and look
again, and take over once the lease lapses (its holder died). A finaliser that
loses its lease stops. The final aggregate is the merge of every replica's
shard (:meth:`pets.protocols.base.RunningAggregate.merge`), and the finish is
conditional in the store, so a release (and a DP budget spend) happens once.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable

from pets.dp import NoisePlan
from pets.errors import (
    InvalidInputError,
    PermissionDeniedError,
    PetsError,
    ThresholdNotMetError,
    UnavailableError,
)
from pets.identity.certificates import Peer
from pets.protocols import RunningAggregate
from pets.query import Query
from pets.query import compile as compile_query
from pets.runtime.backoff import Backoff
from pets.runtime.offload import offload
from pets.server import linked_budget
from pets.server.leader.admission import Admission
from pets.server.leader.announcements import pack_helper_keys
from pets.server.leader.batching import Batching
from pets.server.leader.linkage import LeaderLinkage
from pets.server.leader.replicas import Replicas
from pets.server.leader.state import LeaderState, QueryRuntime, log, reload
from pets.server.metrics import ServerMetrics
from pets.server.privacy import ServerPrivacy
from pets.server.query_state import FAILED, OPEN, READY, TERMINAL
from pets.server.query_state import name as state_name
from pets.server.release_policy import ReleaseGuard
from pets.server.store import QueryRecord
from pets.server.store.base import AlreadyFinishedError
from pets.transport.status import is_disk_full
from pets.v1 import aggregation_pb2 as pb

RETRY_INITIAL_SECONDS = 0.5
RETRY_MAX_SECONDS = 30.0


def _describe(exc: BaseException) -> str:
    """A short, secret-free account of why a close or finalisation failed."""
    if is_disk_full(exc):
        return "the server's disk is full"
    if isinstance(exc, PetsError):
        return str(exc)
    return type(exc).__name__


class Lifecycle:
    """Opening, closing at the deadline, finalising and resuming queries."""

    def __init__(self, state: LeaderState, batching: Batching) -> None:
        self.state = state
        self.batching = batching
        self.metrics = ServerMetrics()  # the server's, set by the servicer
        self.linkage = LeaderLinkage(state)  # record linkage: OPRF relay and join (issue 16)
        # The delays between attempts of a failing close or finalisation (no deadline:
        # they are retried until they succeed). Tests inject shorter ones.
        self.retry_backoff: Callable[[], Backoff] = lambda: Backoff(
            RETRY_INITIAL_SECONDS, RETRY_MAX_SECONDS
        )
        self.privacy = ServerPrivacy(state.config.dp, state.store, state.config.name)
        # The release rule (pets.server.release_policy): no two releases of one
        # fingerprint within the window over different contributor sets.
        self.releases = ReleaseGuard(
            state.store, state.config.limits.release_window_seconds, state.clock
        )
        # What the other replicas on a shared store do (server/leader/replicas.py).
        self.replicas = Replicas(state, self)

    async def resume(self) -> list[QueryRuntime]:
        """Load every query from the store; the unfinished ones, ready to go on."""
        self.state.replica = await self.state.store.replica()
        resumed: list[QueryRuntime] = []
        for rec in await self.state.store.load_queries():
            spec = pb.QuerySpec.FromString(rec.spec)
            rt = QueryRuntime(record=rec, spec=spec, plan=None)
            self.state.queries[rec.id] = rt
            if rec.state in TERMINAL:
                continue
            try:
                rt.plan = compile_query(Query.from_json(spec.query_json), self.state.schema)
                await reload(self.state.store, rt)
            except Exception as exc:
                # The schema changed under an unfinished query, or its state is damaged
                # (e.g. an aggregate file lost to a crash): it cannot be finished.
                log.error("cannot resume query", extra={"query_id": rec.id, "error": repr(exc)})
                rt.record = rec.with_state(
                    FAILED,
                    failure="cannot_resume",
                    failure_detail="the query's saved state could not be resumed",
                )
                await self.state.store.finish_query(rt.record, None, True)
                continue
            resumed.append(rt)
        return resumed

    def go_on(self, resumed: list[QueryRuntime]) -> None:
        """Wait for the open ones' deadlines; finalise the closed ones; with replicas
        on a shared store, follow what the others do (server/leader/replicas.py)."""
        for rt in resumed:
            if rt.record.state == OPEN:
                self.schedule_deadline(rt)
            else:
                self.start_finalise(rt)
        self.replicas.start()

    async def open(self, analyst: Peer, admission: Admission, proven: list[str]) -> QueryRuntime:
        """Open an admitted query: helpers registered, recorded, deadline scheduled."""
        a = admission
        now = self.state.clock()
        query_id = "q-" + secrets.token_hex(8)
        fingerprint = a.plan.fingerprint()
        await self.releases.check_close_after(fingerprint, a.spec.close_after)
        # DP: the policy's checks and an early budget refusal (nothing is spent here).
        noise = await self.privacy.admit(analyst.name, a.plan, a.protocol)
        domain = linked_budget.plan_domain(a.plan)
        if domain is not None:  # linked: the per-domain query budget (kept if it fails)
            await linked_budget.reserve(
                self.state.store, self.state.config.limits, domain, query_id, now
            )
        keys: list[pb.HelperKey] = []
        if a.protocol.uses_helpers:
            register = pb.RegisterQueryRequest(
                query_id=query_id,
                spec=a.spec,
                analyst=analyst.name,
                vector_length=a.vector_length,
                deadline_unix=now + a.deadline_seconds,
                min_holders=a.min_holders,
                fingerprint=fingerprint,
            )
            # Prio3: each helper's request carries the query's fresh verify key.
            requests = await self.batching.prepare_round.register_requests(
                query_id, a.protocol, a.plan, register
            )
            keys = list(
                await asyncio.gather(
                    *(h.register(r) for h, r in zip(self.state.helpers, requests, strict=True))
                )
            )
        record = QueryRecord(
            id=query_id,
            analyst=analyst.name,
            spec=a.spec.SerializeToString(),
            state=OPEN,
            created=now,
            deadline=now + a.deadline_seconds,
            min_holders=a.min_holders,
            vector_length=a.vector_length,
            proven_predicates=tuple(proven),
            fingerprint=fingerprint,
            helper_keys=pack_helper_keys(keys),
        )
        try:
            await self.state.store.insert_query(record)
        except Exception as exc:
            # Say what happened (e.g. the disk is full), not "internal error".
            log.error("could not store a query", extra={"query_id": query_id, "error": repr(exc)})
            if keys:  # best effort: the helpers forget the query that will never open
                await asyncio.gather(
                    *(h.abort(query_id) for h in self.state.helpers), return_exceptions=True
                )
            raise UnavailableError(
                f"could not store the query ({_describe(exc)}); try again later"
            ) from exc
        rt = QueryRuntime(
            record=record,
            spec=a.spec,
            plan=a.plan,
            aggregate=a.protocol.running_aggregate(a.spec, a.vector_length, a.plan),
        )
        self.state.queries[record.id] = rt
        self.schedule_deadline(rt)
        if noise is not None:  # DP: this server's noise, drawn before the query is announced
            await self.privacy.prepare(record.id, noise)
        return rt

    def schedule_deadline(self, rt: QueryRuntime) -> None:
        async def wait() -> None:
            await asyncio.sleep(max(0.0, rt.record.deadline - self.state.clock()))
            await self.close_until_done(rt.record.id, "deadline reached")

        rt.deadline_task = self.state.spawn(wait(), f"deadline-{rt.record.id}")

    def start_finalise(self, rt: QueryRuntime) -> None:
        self.state.spawn(self.finalise_until_done(rt), f"finalize-{rt.record.id}")

    async def close_until_done(self, query_id: str, reason: str) -> None:
        """Close an open query, retrying with backoff while the close fails (say, the
        disk is full): an open query past its deadline is stuck, never forgotten."""
        backoff = self.retry_backoff()
        while True:
            rt = self.state.queries.get(query_id)
            if rt is None or rt.record.state != OPEN:
                return
            try:
                await self.batching.close(query_id, reason)
            except Exception as exc:
                await self._stuck(rt, "close", exc)
                await backoff.sleep()
            else:
                await self._unstuck(rt)
                return

    async def finalise_until_done(self, rt: QueryRuntime) -> None:
        """:meth:`finalise`, retried with backoff until the query is READY or FAILED;
        while it keeps failing, the query's status says why and how often. With
        replicas, only while this one holds the query's lease (see the module
        docstring); one such loop per query and process."""
        if rt.finalising:
            return
        rt.finalising = True
        try:
            backoff = self.retry_backoff()
            await self._unstuck(rt)  # its close went through (and ended its own retries)
            while rt.record.state not in TERMINAL and not self.state.stopping:
                try:
                    if not await self.state.store.take_lease(rt.record.id, self._lease_seconds):
                        await self._await_other_finaliser(rt)
                        continue
                    await self._finalise_leased(rt)
                except AlreadyFinishedError:
                    await self._adopt_finished(rt)
                except Exception as exc:
                    await self._stuck(rt, "finalisation", exc)
                    await backoff.sleep()
            await self._unstuck(rt)
        finally:
            rt.finalising = False

    @property
    def _lease_seconds(self) -> float:
        return self.state.config.limits.finalise_lease_seconds

    async def _finalise_leased(self, rt: QueryRuntime) -> None:
        """:meth:`finalise` while renewing the lease; cancelled if the lease is lost."""
        work = asyncio.ensure_future(self.finalise(rt))

        async def renew() -> None:
            while True:
                await asyncio.sleep(self._lease_seconds / 3)
                try:
                    kept = await self.state.store.renew_lease(rt.record.id, self._lease_seconds)
                except Exception as exc:  # the store is down: keep trying while it lasts
                    log.warning(
                        "could not renew a finalisation lease",
                        extra={"query_id": rt.record.id, "error": repr(exc)},
                    )
                    continue
                if not kept:
                    log.warning(
                        "finalisation lease lost to another replica; stopping",
                        extra={"query_id": rt.record.id},
                    )
                    work.cancel()
                    return

        renewer = asyncio.ensure_future(renew())
        try:
            await work
        except asyncio.CancelledError:
            if not work.cancelled() or self.state.stopping:
                raise
            await self._await_other_finaliser(rt)  # the lease was lost
        finally:
            renewer.cancel()

    async def _await_other_finaliser(self, rt: QueryRuntime) -> None:
        """Another replica holds the lease: wait for news (or a third of a lease),
        then read the query's stored state."""
        seen = rt.version
        async with rt.changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    rt.changed.wait_for(lambda: rt.version != seen), self._lease_seconds / 3
                )
        if rt.record.state not in TERMINAL:
            stored = await self.state.store.load_query(rt.record.id)
            if stored is not None and stored.state in TERMINAL:
                await self.adopt_record(rt, stored)

    async def _adopt_finished(self, rt: QueryRuntime) -> None:
        """Another replica finished the query first: take its stored outcome."""
        stored = await self.state.store.load_query(rt.record.id)
        if stored is not None and stored.state in TERMINAL:
            self.privacy.discard(rt.record.id)
            await self.adopt_record(rt, stored)

    async def adopt_record(self, rt: QueryRuntime, stored: QueryRecord) -> None:
        """Take a query's stored record (another replica changed it)."""
        rt.record = stored
        if stored.state != OPEN and rt.deadline_task is not None and not rt.deadline_task.done():
            rt.deadline_task.cancel()
        if stored.state in TERMINAL:
            rt.aggregate = None
            rt.holders = {}
        await rt.bump()

    async def _stuck(self, rt: QueryRuntime, stage: str, exc: BaseException) -> None:
        rt.stuck_attempts += 1
        self.metrics.finalisations.labels("retried").inc()
        rt.stuck_reason = f"{stage} failed ({_describe(exc)}); retrying"
        log.warning(
            f"{stage} failed; retrying",
            extra={"query_id": rt.record.id, "attempt": rt.stuck_attempts, "error": repr(exc)},
        )
        await rt.bump()

    async def _unstuck(self, rt: QueryRuntime) -> None:
        if rt.stuck_attempts:
            log.info(
                "recovered",
                extra={"query_id": rt.record.id, "failed_attempts": rt.stuck_attempts},
            )
            rt.stuck_reason, rt.stuck_attempts = "", 0
            await rt.bump()

    async def finalise(self, rt: QueryRuntime) -> None:
        """Finish a CLOSED query: READY once every helper summed its share, else FAILED."""
        rec = rt.record
        n = len(rec.contributors)
        if n < rec.min_holders:
            await self._fail(
                rt,
                "below_min_holders",
                f"{n} holder(s) contributed, at least {rec.min_holders} required; nothing released",
            )
            return
        joins = getattr(rt.protocol, "joins", False)  # record linkage (server/leader/linkage.py)
        if joins and (refused := await self.linkage.join(rt)) is not None:
            await self._fail(rt, *refused)  # join, digest or floor refused: nothing released
            return
        if not await self._dp_precheck(rt):
            return
        try:  # before any server sums: a refused release is never computed
            await self.releases.claim(rec.fingerprint, rec.id, rec.contributors)
        except ThresholdNotMetError as exc:
            await self._fail(rt, "release_refused", f"{exc}; nothing released")
            return
        if rt.protocol.uses_helpers and not await self._finalise_helpers(rt):
            return
        await self._finish(rt, READY, "", "")

    def _noise(self, rt: QueryRuntime) -> NoisePlan | None:
        """The query's noise plan under this server's current DP policy (None: no DP)."""
        assert rt.plan is not None
        return self.privacy.policy.admit(rt.plan)

    async def _dp_precheck(self, rt: QueryRuntime) -> bool:
        """Before any helper releases: would this server still admit and pay for the
        release? False (and FAILED, nothing spent) if not."""
        try:
            noise = self._noise(rt)
            if noise is not None:
                assert rt.plan is not None
                budget = await self.privacy.budget(rt.record.analyst, rt.plan.dataset.name)
                budget.after_spending(noise.rho)
        except PermissionDeniedError as exc:
            await self._fail(rt, "privacy_refused", f"{exc}; nothing released")
            return False
        return True

    async def _finalise_helpers(self, rt: QueryRuntime) -> bool:
        """Stream every helper the contributor set, retrying the unreachable ones with
        backoff until ``finalize_timeout_seconds``; False (and FAILED) if one refuses
        or stays unreachable."""
        rec = rt.record
        timeout = self.state.config.limits.finalize_timeout_seconds
        give_up = time.monotonic() + timeout
        sealed = await self.state.store.sealed_contributions(rec.id, rec.contributors)
        pending = list(self.state.helpers)
        backoff = Backoff(0.2, 2.0, deadline=give_up)
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
            if fatal or (pending and backoff.exhausted()):
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
                return False
            if pending:
                await backoff.sleep()
        return True

    async def _merged(self, rt: QueryRuntime) -> RunningAggregate | None:
        """The query's final running aggregate: every replica's shard, merged by the
        protocol (one shard with a single-writer store)."""
        if rt.plan is None:
            rt.plan = compile_query(Query.from_json(rt.spec.query_json), self.state.schema)
        plan, length = rt.plan, rt.record.vector_length
        merged = None
        for data, count in await self.state.store.shards(rt.record.id):
            part = await offload(
                len(data),
                lambda d=data, c=count: rt.protocol.running_aggregate(  # type: ignore[misc]
                    rt.spec, length, plan, d, count=c
                ),
            )
            if merged is None:
                merged = part
            else:
                await offload(len(data), merged.merge, part)
        return merged

    async def _fail(self, rt: QueryRuntime, failure: str, detail: str) -> None:
        self.privacy.discard(rt.record.id)
        await self._finish(rt, FAILED, failure, detail)
        if rt.protocol.uses_helpers:
            # Best effort: helpers learn the query will never be released.
            await asyncio.gather(
                *(h.abort(rt.record.id) for h in self.state.helpers), return_exceptions=True
            )

    async def _finish(self, rt: QueryRuntime, state: int, failure: str, detail: str) -> None:
        rec = rt.record.with_state(state, failure=failure, failure_detail=detail)
        released = None
        # Every replica's committed shard, merged: never what a failed commit left in
        # memory, and the same on whichever replica finalises.
        try:
            aggregate = await self._merged(rt) if state == READY else None
        except InvalidInputError as exc:  # e.g. a linked query's uploads on two replicas
            await self._fail(rt, "shards_not_mergeable", f"{exc}; nothing released")
            return
        if state == READY and aggregate is not None:
            # The protocol's release hook (e.g. noise), once; None keeps the share as it is.
            released = await offload(
                aggregate.payload_bytes,
                lambda: rt.protocol.release_share(aggregate.to_bytes()),
            )
        noise = self._noise(rt) if state == READY and aggregate is not None else None
        if noise is not None and aggregate is not None:
            # DP: this server's noise, stored with the budget it spends, in one transaction.
            assert rt.plan is not None
            share = aggregate.to_bytes() if released is None else released
            try:
                await self.privacy.release(rec, rt.protocol, rt.spec, rt.plan, noise, share)
            except PermissionDeniedError as exc:
                rec = rec.with_state(
                    FAILED, failure="privacy_refused", failure_detail=f"{exc}; nothing released"
                )
                await self.state.store.finish_query(rec, None, True)
                state = FAILED
        else:
            # A failed query's running aggregate is deleted: it will never be released.
            if state == READY and released is None and aggregate is not None:
                released = aggregate.to_bytes()  # the merge of every replica's shard
            await self.state.store.finish_query(rec, released, state == FAILED)
        rt.record = rec
        self.metrics.finalisations.labels("ready" if state == READY else "failed").inc()
        rt.aggregate = None  # the share lives on in the store; free the memory
        rt.holders = {}
        log.info(
            "query finished",
            extra={
                "query_id": rec.id,
                "state": state_name(state),
                "failure": failure,
                "contributors": len(rec.contributors),
                # For the operator only: analysts learn the count, never the names.
                "contributor_names": list(rec.contributors),
            },
        )
        await rt.bump()
