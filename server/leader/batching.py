"""Batching: the queues in front of the helpers' check (Prepare) and the group commit.

Every state change that touches contributions goes through two loops, so
contributions and closing are serialised without locks:

1. the **prepare loop** takes contributions of protocols that
   :attr:`~pets.protocols.AggregationProtocol.prepares` a batch at a time
   and hands the batch to :class:`~pets.server.leader.prepare.PrepareRound`,
   which has every helper check them (one ``Prepare`` call per helper and
   query, each bounded by
   :data:`~pets.server.leader.prepare.PREPARE_TIMEOUT_SECONDS`); only what every
   helper accepted goes on. A query's close that arrives while some of its
   contributions are being checked queues behind them, in arrival order.
2. the **commit loop** folds whatever is waiting into the running
   aggregates and records it, with the new aggregates, in one store
   transaction (:meth:`pets.server.store.Store.commit_contributions`): the
   cost of a durable commit is paid per batch, not per holder. A close is
   applied between the contributions before and after it.

With replicas on one database (issue 14) each replica's commit writes its own
shard of the aggregate; a commit that lost a race to another replica (the
holder's contribution was recorded there, or the query was closed there) is
refused whole by the store, so the loop re-reads those queries and decides
the same batch once more: known holders on their digest, closed queries
refused, the rest committed.

Contributions of protocols without Prepare (Paillier) go straight to the
commit loop, so they never wait on a slow helper. Neither loop dies: a
failure fails the batch it was working on, not the server
(docs/ARCHITECTURE.md, "The leader").
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import Callable

from pets.errors import (
    ConflictError,
    InvalidInputError,
    NotReadyError,
    PetsError,
    UnavailableError,
)
from pets.runtime.offload import offload
from pets.server.leader.prepare import MAX_VERIFY_BYTES_PER_BATCH, PrepareRound
from pets.server.leader.state import Close, LeaderState, Pending, QueryRuntime, log, reload, settle
from pets.server.query_state import OPEN, TERMINAL
from pets.server.store import ContributionRecord
from pets.server.store.base import QueryFullError, QueryNotOpenError

MAX_BATCH = 512


class Batching:
    """The prepare and commit loops, and the queues in front of them; owns the
    :class:`~pets.server.leader.prepare.PrepareRound` the prepare loop calls."""

    def __init__(self, state: LeaderState) -> None:
        self.state = state
        self._commit_queue: asyncio.Queue[Pending | Close] = asyncio.Queue()
        self._prepare_queue: asyncio.Queue[Pending | Close] = asyncio.Queue()
        self._preparing = False  # a batch is with the helpers
        self._loops: list[asyncio.Task[None]] = []
        self._on_closed: Callable[[QueryRuntime], None] = lambda rt: None
        # The helpers' check of each batch the prepare loop takes (and Prio3's verification).
        self.prepare_round = PrepareRound(state)

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
        if item.seeds is None or await self.prepare_round.leader_verify(item):
            self.enqueue(item)
        return await asyncio.shield(item.future)  # type: ignore[no-any-return]

    def enqueue(self, item: Pending) -> None:
        """Queue a validated contribution whose protocol needs nothing on arrival (no
        Prio3 ``verify_init``: :meth:`submit` runs that first); its future is settled
        once it is decided. The queues are unbounded: this never waits."""
        queue = self._commit_queue if item.seeds is None else self._prepare_queue
        queue.put_nowait(item)

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
            work = self.prepare_round.verify_work(batch[0])
            while (
                not self._prepare_queue.empty()
                and len(batch) < MAX_BATCH
                and work < MAX_VERIFY_BYTES_PER_BATCH
            ):
                batch.append(self._prepare_queue.get_nowait())
                work += self.prepare_round.verify_work(batch[-1])
            pending = [i for i in batch if isinstance(i, Pending)]
            self._preparing = True
            try:
                kept = {id(i) for i in await self.prepare_round.prepare_with_helpers(pending)}
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

    async def _commit(self, items: list[Pending], *, again: bool = True) -> None:
        items = [i for i in items if not i.future.done()]
        if not items:
            return
        staged: dict[tuple[str, str], Pending] = {}
        adding: dict[str, int] = {}  # staged contributions per query
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
            cap = _cap(rt)
            if (
                self.state.replica
                and cap is not None
                and rt.contributors + adding.get(item.query_id, 0) >= cap
            ):  # every replica's contributions count (this shard's cap does not)
                settle(item.future, error=_full(rt.contributors))
                continue
            try:
                await offload(rt.aggregate.payload_bytes, rt.aggregate.add, item.parsed)
            except PetsError as exc:  # e.g. a query already at its max_holders
                settle(item.future, error=exc)
                continue
            staged[(item.query_id, item.holder)] = item
            adding[item.query_id] = adding.get(item.query_id, 0) + 1
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
            caps = {q: c for q, rt in touched.items() if (c := _cap(rt)) is not None}
            try:
                counts = await self.state.store.commit_contributions(records, blobs, caps)
            except (ConflictError, QueryNotOpenError, QueryFullError) as exc:
                if again and self.state.replica:
                    # Another replica recorded one of these holders, closed a query or
                    # filled it: re-read what changed and decide the batch once more.
                    log.info("group commit lost a race to another replica; deciding again")
                    for rt in touched.values():
                        rt.stale = True
                        await self.refresh(rt, closed=isinstance(exc, QueryNotOpenError))
                    await self._commit([*staged.values(), *followers], again=False)
                    return
                await self._failed_commit(touched, [*staged.values(), *followers])
                return
            except UnavailableError as exc:  # the store is down: expected, no traceback
                await self._failed_commit(touched, [*staged.values(), *followers], cause=exc)
                return
            except Exception:
                await self._failed_commit(touched, [*staged.values(), *followers])
                return
            for item in staged.values():
                self.state.queries[item.query_id].holders[item.holder] = item.digest
                settle(item.future, True)
            for qid, n in counts.items():
                touched[qid].committed = n
        for item in followers:
            settle(item.future, False)
        for rt in touched.values():
            await rt.bump()

    async def _failed_commit(
        self,
        touched: dict[str, QueryRuntime],
        items: list[Pending],
        *,
        cause: UnavailableError | None = None,
    ) -> None:
        """Nothing of the batch was recorded. Reloading from the store also brings in
        what another writer recorded meanwhile (a conflicting holder is then known,
        and its retry is decided on its digest). A store that is unavailable (``cause``,
        e.g. the database restarting) is logged as one warning; anything else with its
        traceback."""
        if cause is not None:
            log.warning("could not persist contributions (%s); holders will retry", cause)
        else:
            log.exception("could not persist contributions; reloading state")
        for rt in touched.values():
            rt.stale = True  # until reloaded (which may fail too, if the store is down)
        for rt in touched.values():
            if rt.record.state == OPEN:
                await reload(self.state.store, rt)
        failure = UnavailableError("could not store the contribution; retry")
        for item in items:
            settle(item.future, error=failure)

    async def refresh(self, rt: QueryRuntime, *, closed: bool) -> None:
        """Re-read a query another replica may have changed: its record (if ``closed``)
        and this replica's shard and every replica's holders (if still open)."""
        if closed:
            stored = await self.state.store.load_query(rt.record.id)
            if stored is not None and stored.state != OPEN and rt.record.state == OPEN:
                rt.record = stored
                if rt.deadline_task is not None and not rt.deadline_task.done():
                    rt.deadline_task.cancel()
                await rt.bump()
                self._on_closed(rt)
        if rt.record.state == OPEN:
            await reload(self.state.store, rt)

    async def _apply_close(self, item: Close) -> None:
        rt = self.state.queries[item.query_id]
        if rt.record.state == OPEN:
            # The contributor set as recorded by every replica, fixed under the query
            # row's lock (a single-writer store: exactly this replica's holders).
            rec = await self.state.store.close_query(item.query_id)
            if rec is None:  # cannot happen: queries are never deleted
                raise AssertionError(f"query {item.query_id} vanished from the store")
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


def _cap(rt: QueryRuntime) -> int | None:
    """The most contributions the query's sum can provably hold (its protocol's
    aggregate knows it), or None."""
    cap = getattr(rt.aggregate, "max_contributions", None)
    return cap if isinstance(cap, int) else None


def _full(count: int) -> InvalidInputError:
    return InvalidInputError(
        f"query already has {count} contributions, the most whose sum it can provably hold"
    )
