"""Batching: the helpers' check (Prepare), then one group commit per batch.

Every state change that touches contributions goes through two loops, so
contributions and closing are serialised without locks:

1. the **prepare loop** takes contributions of protocols that
   :attr:`~pets.protocols.AggregationProtocol.prepares` a batch at a time
   and has every helper check them (one ``Prepare`` call per helper and
   query, each bounded by :data:`PREPARE_TIMEOUT_SECONDS`); only what every
   helper accepted goes on. A query's close that arrives while some of its
   contributions are being checked queues behind them, in arrival order.
2. the **commit loop** folds whatever is waiting into the running
   aggregates and records it, with the new aggregates, in one store
   transaction (:meth:`pets.server.store.Store.commit_contributions`): the
   cost of a durable commit is paid per batch, not per holder. A close is
   applied between the contributions before and after it.

Contributions of protocols without Prepare (Paillier) go straight to the
commit loop, so they never wait on a slow helper. Neither loop dies: a
failure fails the batch it was working on, not the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import Callable

from pets.errors import (
    ConflictError,
    InvalidInputError,
    InvalidProofError,
    NotReadyError,
    PetsError,
    UnavailableError,
)
from pets.protocols import AggregationProtocol
from pets.protocols.base import PrepareContext
from pets.query import QueryPlan
from pets.runtime.offload import offload
from pets.server.leader.state import Close, LeaderState, Pending, QueryRuntime, log, reload, settle
from pets.server.query_state import CLOSED, OPEN, TERMINAL
from pets.server.store import ContributionRecord
from pets.server.store.base import VerifyKey
from pets.v1 import aggregation_pb2 as pb

MAX_BATCH = 512
# Prio3 (issue 12): verification costs CPU in proportion to a report's size (about
# 0.35 s per MB of leader payload on each server, pure Python), so a Prepare batch
# of a verifying protocol holds at most this many payload bytes: a helper checks it
# well within PREPARE_TIMEOUT_SECONDS (and a test cluster's shorter bound).
MAX_VERIFY_BYTES_PER_BATCH = 2 << 20
# How long a helper gets to check one batch of contributions (Prepare); a
# contribution it has not checked by then fails as unavailable and is retried.
PREPARE_TIMEOUT_SECONDS = 10.0


class Batching:
    """The prepare and commit loops, and the queues in front of them."""

    def __init__(self, state: LeaderState) -> None:
        self.state = state
        self._commit_queue: asyncio.Queue[Pending | Close] = asyncio.Queue()
        self._prepare_queue: asyncio.Queue[Pending | Close] = asyncio.Queue()
        self._preparing = False  # a batch is with the helpers
        self._loops: list[asyncio.Task[None]] = []
        self._on_closed: Callable[[QueryRuntime], None] = lambda rt: None
        # Counts Prepare outcomes (outcome, number of contributions): the server's metrics.
        self.on_prepared: Callable[[str, int], None] = lambda outcome, n: None

    # -- running -----------------------------------------------------------------
    def start(self, on_closed: Callable[[QueryRuntime], None]) -> None:
        """Start both loops; ``on_closed`` is called with each query the commit loop
        closed (the lifecycle starts its finalisation)."""
        self._on_closed = on_closed
        for loop, name in ((self._commit_loop, "leader-commit"), (self._prepare_loop, "prepare")):
            task = asyncio.create_task(loop(), name=name)
            task.add_done_callback(self._loop_ended)
            self._loops.append(task)

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        if not self.state.stopping:
            log.critical(
                "contribution loop ended; the leader cannot accept contributions",
                extra={"task": task.get_name()},
            )

    async def stop(self) -> None:
        """Stop both loops and answer whatever is still queued."""
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        for queue in (self._prepare_queue, self._commit_queue):
            while not queue.empty():
                settle(queue.get_nowait().future, error=UnavailableError("leader shutting down"))

    # -- entry points ------------------------------------------------------------
    async def submit(self, item: Pending) -> bool:
        """Queue a validated contribution; True once newly committed, False if the
        same contribution was already recorded."""
        if item.seeds is not None and not await self._leader_verify(item):
            return await asyncio.shield(item.future)  # type: ignore[no-any-return]
        # Unbounded queues: never wait.
        queue = self._commit_queue if item.seeds is None else self._prepare_queue
        queue.put_nowait(item)
        return await asyncio.shield(item.future)  # type: ignore[no-any-return]

    async def _leader_verify(self, item: Pending) -> bool:
        """Prio3: the leader's ``verify_init`` as the contribution arrives, in a worker
        thread, so it overlaps with the helper checking earlier batches (the prepare
        loop only relays). False if the contribution was refused (its future set)."""
        rt = self.state.queries.get(item.query_id)
        if rt is None or not rt.protocol.verifies:
            return True
        if rt.record.state != OPEN or item.holder in rt.holders:
            return True  # the commit loop refuses or acknowledges it as recorded
        try:
            context = await self._prepare_context(rt, item.holder)
        except PetsError as exc:
            settle(item.future, error=exc)
            return False
        (error,) = await asyncio.to_thread(self._verify_init, [(item, context)])
        if error is not None:
            await self._reject(rt, item, error)
            return False
        return True

    async def close(self, query_id: str, reason: str) -> None:
        """Fix the contributor set of an open query (no-op if already closed)."""
        item = Close(query_id, reason)
        rt = self.state.queries.get(query_id)
        prepares = rt is not None and rt.protocol.prepares
        # Behind the contributions still waiting for (or in) the helpers' check,
        # so a contribution that arrived before the close is not overtaken by it;
        # straight to the commit loop when there are none (measurably cheaper).
        behind = prepares and (self._preparing or not self._prepare_queue.empty())
        (self._prepare_queue if behind else self._commit_queue).put_nowait(item)
        await asyncio.shield(item.future)

    # -- Prepare -----------------------------------------------------------------
    async def _prepare_loop(self) -> None:
        while True:
            batch = [await self._prepare_queue.get()]
            work = self._verify_work(batch[0])
            while (
                not self._prepare_queue.empty()
                and len(batch) < MAX_BATCH
                and work < MAX_VERIFY_BYTES_PER_BATCH
            ):
                batch.append(self._prepare_queue.get_nowait())
                work += self._verify_work(batch[-1])
            pending = [i for i in batch if isinstance(i, Pending)]
            self._preparing = True
            try:
                kept = {id(i) for i in await self.prepare_with_helpers(pending)}
            except Exception:  # keep serving; fail only this batch's contributions
                log.exception("prepare loop error; failing the batch")
                for item in pending:
                    settle(item.future, error=UnavailableError("internal error; retry"))
                kept = set()
            finally:
                self._preparing = False
            # In arrival order: a close follows the contributions queued before it.
            for queued in batch:
                if isinstance(queued, Close) or id(queued) in kept:
                    self._commit_queue.put_nowait(queued)

    def _verify_work(self, item: Pending | Close) -> int:
        """Payload bytes a queued item adds to a batch's verification (0 if none)."""
        rt = self.state.queries.get(item.query_id)
        if not isinstance(item, Pending) or rt is None or rt.aggregate is None:
            return 0
        return rt.aggregate.payload_bytes if rt.protocol.verifies else 0

    async def prepare_with_helpers(self, items: list[Pending]) -> list[Pending]:
        """Have every helper check the batch's contributions; keep what all accept.

        A contribution is committed only once each helper has checked it
        (for additive: the holder's certificate and signature, and its seed
        opens), so an accepted contribution is complete everywhere. Refused
        contributions fail with the helper's reason; if a helper cannot be
        reached, they fail as unavailable (the holders retry).
        """
        groups: dict[str, dict[str, Pending]] = {}
        verifying: list[tuple[Pending, PrepareContext]] = []
        verified: list[Pending] = []
        for item in items:
            if item.seeds is None:
                continue
            rt = self.state.queries[item.query_id]
            if rt.protocol.verifies:
                # Prio3: the leader's verify_init is CPU work, done below off the loop.
                # (A closed query's or a committed holder's goes straight on: the commit
                # loop refuses it or acknowledges it as recorded.)
                if item.record is not None:  # the leader's half done on arrival (submit)
                    verified.append(item)
                elif rt.record.state == OPEN and item.holder not in rt.holders:
                    try:
                        verifying.append((item, await self._prepare_context(rt, item.holder)))
                    except PetsError as exc:
                        settle(item.future, error=exc)
                continue
            item.record = rt.protocol.prepare_message(
                item.holder, item.certificate, item.seeds, item.parsed
            )
            item.sealed = item.record.SerializeToString()
            if rt.record.state != OPEN or item.holder in rt.holders:
                continue  # the commit loop refuses or acknowledges it as recorded
            group = groups.setdefault(item.query_id, {})
            if item.holder in group:  # one at a time per holder: only one is checked
                settle(
                    item.future,
                    error=UnavailableError(
                        f"another contribution from {item.holder} is being checked; retry"
                    ),
                )
                continue
            group[item.holder] = item
        if verifying:
            for item, error in zip(
                [i for i, _ in verifying],
                await asyncio.to_thread(self._verify_init, verifying),
                strict=True,
            ):
                if error is not None:
                    await self._reject(self.state.queries[item.query_id], item, error)
                    continue
                verified.append(item)
        for item in verified:
            rt = self.state.queries[item.query_id]
            if rt.record.state != OPEN or item.holder in rt.holders:
                continue  # the commit loop refuses or acknowledges it as recorded
            group = groups.setdefault(item.query_id, {})
            if item.holder in group:
                settle(
                    item.future,
                    error=UnavailableError(
                        f"another contribution from {item.holder} is being checked; retry"
                    ),
                )
                continue
            group[item.holder] = item
        verdicts = await asyncio.gather(
            *(
                self.prepare(self.state.queries[qid].protocol, qid, list(group.values()))
                for qid, group in groups.items()
            )
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
                if item.record is not None and item.record.verifier_message:
                    item.sealed = item.record.SerializeToString()  # with the verifier message
                kept.append(item)
            elif self.state.queries[item.query_id].protocol.verifies:
                await self._reject(self.state.queries[item.query_id], item, error)
            else:
                settle(item.future, error=error)
        unavailable = sum(isinstance(e, UnavailableError) for e in refused.values())
        self.on_prepared("accepted", len(kept))
        self.on_prepared("unavailable", unavailable)
        self.on_prepared("refused", len(refused) - unavailable)
        return kept

    # -- Prio3: verification in Prepare ------------------------------------------
    async def register_requests(
        self,
        query_id: str,
        protocol: AggregationProtocol,
        plan: QueryPlan,
        register: pb.RegisterQueryRequest,
    ) -> list[pb.RegisterQueryRequest]:
        """The RegisterQuery for each helper. For a verifying protocol (Prio3) a fresh
        secret verify key is drawn, stored durably first (verification survives a
        restart; erased when the query ends) and sent to each helper only, over the
        servers' mutually authenticated channel, with its aggregator id."""
        helpers = self.state.helpers
        key = protocol.new_verify_key(len(helpers))
        if key is None:
            return [register for _ in helpers]
        bounds = tuple(protocol.circuit_bounds(plan))
        await self.state.store.put_verify_key(query_id, VerifyKey(key, 0, bounds))
        out = []
        for i, _ in enumerate(helpers):
            request = pb.RegisterQueryRequest()
            request.CopyFrom(register)
            request.verify_key = key
            request.aggregator_id = i + 1
            request.prio3_bounds.extend(bounds)
            out.append(request)
        return out

    async def _prepare_context(self, rt: QueryRuntime, holder: str) -> PrepareContext:
        """The query's verify key (from the store on first use); refuses a holder
        whose contribution was already rejected: no second try with other data."""
        reason = rt.rejected.get(holder)
        if reason is not None:
            raise InvalidProofError(
                f"the contribution of {holder} to {rt.record.id} was rejected ({reason}); "
                "a query takes one contribution per holder"
            )
        if rt.verify_key is None:
            stored = await self.state.store.get_verify_key(rt.record.id)
            if stored is None:
                raise NotReadyError(f"query {rt.record.id} has no verify key (it has ended)")
            rt.verify_key = stored.key
        return PrepareContext(rt.record.id, rt.record.fingerprint, rt.verify_key)

    def _verify_init(self, batch: list[tuple[Pending, PrepareContext]]) -> list[PetsError | None]:
        """The leader's half of verification for each item (a worker thread): its
        Prepare message with the verifier share, or why the report is refused."""
        errors: list[PetsError | None] = []
        for item, context in batch:
            rt = self.state.queries[item.query_id]
            assert item.seeds is not None
            try:
                item.record = rt.protocol.prepare_message(
                    item.holder, item.certificate, item.seeds, item.parsed, context=context
                )
            except PetsError as exc:
                errors.append(exc)
                continue
            item.sealed = item.record.SerializeToString()
            errors.append(None)
        return errors

    async def _reject(self, rt: QueryRuntime, item: Pending, error: PetsError) -> None:
        """Refuse a contribution of a verifying protocol. A failed check (not a
        transient failure) is a rejection: recorded durably, with its reason and no
        values, counted in the query's status, and final for that holder."""
        if isinstance(error, (InvalidProofError, InvalidInputError)) and not isinstance(
            error, (UnavailableError, NotReadyError)
        ):
            reason = str(error)
            if item.holder not in rt.rejected:
                try:
                    await self.state.store.record_rejection(rt.record.id, item.holder, reason)
                except Exception:
                    log.exception("could not record a rejection", extra={"query_id": rt.record.id})
                    settle(item.future, error=UnavailableError("could not record; retry"))
                    return
                rt.rejected[item.holder] = reason
                log.info(
                    "contribution rejected",
                    extra={"query_id": rt.record.id, "holder": item.holder, "reason": reason},
                )
                await rt.bump()
            error = InvalidProofError(f"contribution refused: {reason}")
        settle(item.future, error=error)

    async def prepare(
        self, protocol: AggregationProtocol, query_id: str, group: list[Pending]
    ) -> dict[str, PetsError]:
        """Prepare one query's contributions on every helper; the refused ones, with why."""
        group = sorted(group, key=lambda i: i.holder)
        records = [i.record for i in group if i.record is not None]
        helpers = self.state.helpers
        timeout = min(PREPARE_TIMEOUT_SECONDS, self.state.config.limits.finalize_timeout_seconds)
        outcomes = await asyncio.gather(
            *(h.prepare(query_id, records, timeout=timeout) for h in helpers),
            return_exceptions=True,
        )
        answers = {h.name: o for h, o in zip(helpers, outcomes, strict=True)}
        holders = [i.holder for i in group]
        if not protocol.verifies:
            return protocol.prepare_verdicts(query_id, holders, answers)
        # Prio3: combine the verifier shares and finish verification (CPU work).
        return await asyncio.to_thread(
            protocol.prepare_verdicts,
            query_id,
            holders,
            answers,
            parsed={i.holder: i.parsed for i in group},
            records={i.holder: i.record for i in group if i.record is not None},
        )

    # -- the group commit ----------------------------------------------------------
    async def _commit_loop(self) -> None:
        while True:
            batch = [await self._commit_queue.get()]
            while not self._commit_queue.empty() and len(batch) < MAX_BATCH:
                batch.append(self._commit_queue.get_nowait())
            try:
                contributions: list[Pending] = []
                for item in batch:
                    if isinstance(item, Pending):
                        contributions.append(item)
                        continue
                    await self._commit(contributions)
                    contributions = []
                    await self._apply_close(item)
                await self._commit(contributions)
            except Exception as exc:  # keep serving; fail only this batch
                log.exception("commit loop error; failing the batch")
                for item in batch:
                    failure = UnavailableError("internal error; retry")
                    failure.__cause__ = exc  # e.g. a full disk: callers may say so
                    settle(item.future, error=failure)
                    rt = self.state.queries.get(item.query_id)
                    if isinstance(item, Pending) and rt and rt.record.state not in TERMINAL:
                        with contextlib.suppress(Exception):
                            await reload(self.state.store, rt)

    async def _commit(self, items: list[Pending]) -> None:
        if not items:
            return
        staged: dict[tuple[str, str], Pending] = {}
        followers: list[Pending] = []  # same contribution as one staged in this batch
        touched: dict[str, QueryRuntime] = {}
        for item in items:
            rt = self.state.queries[item.query_id]
            if rt.record.state != OPEN or rt.aggregate is None:
                settle(
                    item.future,
                    error=NotReadyError(
                        f"query {item.query_id} closed before the contribution landed"
                    ),
                )
                continue
            if rt.stale:  # a failed commit left it unreloaded: never add to it as it is
                try:
                    await reload(self.state.store, rt)
                except Exception:
                    settle(item.future, error=UnavailableError("the store is unavailable; retry"))
                    continue
            known = rt.holders.get(item.holder)
            first = staged.get((item.query_id, item.holder))
            if known is not None or first is not None:
                recorded = known if known is not None else first.digest  # type: ignore[union-attr]
                if not hmac.compare_digest(recorded, item.digest):
                    settle(
                        item.future,
                        error=ConflictError(
                            f"holder {item.holder} already contributed a different vector "
                            f"to {item.query_id}"
                        ),
                    )
                elif known is not None:
                    settle(item.future, False)
                else:
                    followers.append(item)
                continue
            try:
                await offload(rt.aggregate.payload_bytes, rt.aggregate.add, item.parsed)
            except PetsError as exc:  # e.g. a query already at its max_holders
                settle(item.future, error=exc)
                continue
            staged[(item.query_id, item.holder)] = item
            touched[rt.record.id] = rt
        if staged:
            records = [
                ContributionRecord(i.query_id, i.holder, i.digest, i.sealed)
                for i in staged.values()
            ]
            blobs = {}
            for qid, rt in touched.items():
                assert rt.aggregate is not None
                blobs[qid] = await offload(rt.aggregate.payload_bytes, rt.aggregate.to_bytes)
            try:
                await self.state.store.commit_contributions(records, blobs)
            except Exception:
                # Nothing of the batch was recorded. Reloading from the store also
                # brings in what another writer recorded meanwhile (a conflicting
                # holder is then known, and its retry is decided on its digest).
                log.exception("could not persist contributions; reloading state")
                for rt in touched.values():
                    rt.stale = True  # until reloaded (which may fail too, if the store is down)
                for rt in touched.values():
                    await reload(self.state.store, rt)
                failure = UnavailableError("could not store the contribution; retry")
                for item in [*staged.values(), *followers]:
                    settle(item.future, error=failure)
                return
            for item in staged.values():
                self.state.queries[item.query_id].holders[item.holder] = item.digest
                settle(item.future, True)
        for item in followers:
            settle(item.future, False)
        for rt in touched.values():
            await rt.bump()

    async def _apply_close(self, item: Close) -> None:
        rt = self.state.queries[item.query_id]
        if rt.record.state == OPEN:
            rec = rt.record.with_state(CLOSED, contributors=tuple(sorted(rt.holders)))
            await self.state.store.update_query(rec)
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
            self._on_closed(rt)
        settle(item.future)
