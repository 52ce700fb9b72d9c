"""A server's differential privacy: admit a DP query, then noise and charge its release.

Issue 11, docs/DP.md "Noise in the service". Every aggregation server (the
leader and each helper) runs this by itself, with its own ``[dp]``
configuration (:class:`pets.dp.DpPolicy`) and its own durable budgets, so the
release stays private as long as one server is honest (libprio/Janus's
per-aggregator ``dp_strategy``):

1. :meth:`ServerPrivacy.admit` at registration: the query's noise plan from
   the server's own compiled plan (``None`` for a query without DP on a
   server that allows that), refusing what the policy forbids and what the
   (analyst, dataset) budget can no longer pay for — an early refusal that
   spends nothing — and starting to draw the noise, which
   :meth:`ServerPrivacy.prepare` waits for before the query is announced.
2. :meth:`ServerPrivacy.release` at finalisation: takes this server's noise
   (:meth:`pets.dp.NoisePlan.sample`, exact, from the OS CSPRNG; drawn ahead
   in a worker thread by :meth:`ServerPrivacy.prepare` before the query is
   announced, since it does not depend on the data), adds it to
   the final share in the protocol's algebra
   (:meth:`pets.protocols.AggregationProtocol.add_noise`), and stores the
   noisy share and the spent budget in ONE transaction
   (:meth:`pets.server.store.Store.finish_query_spending`). A release that
   would overspend raises :class:`pets.dp.PrivacyBudgetExceededError`
   (PERMISSION_DENIED, naming the remaining budget) and changes nothing.
   Once stored, the noisy share is what every fetch returns: a release never
   draws fresh noise (an analyst could average re-draws), and a failure
   before the commit leaves nothing released and nothing spent.

Budgets are read from the store at every release, so an operator's
``pets budget grant`` takes effect at the next release without a restart.
"""

from __future__ import annotations

import asyncio
import logging
import mmap
import weakref
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np

from pets.dp import NoisePlan, PrivacyFilter
from pets.dp.policy import DpPolicy
from pets.errors import InvalidInputError
from pets.protocols import AggregationProtocol
from pets.query import QueryPlan
from pets.server.store import QueryRecord, Store
from pets.v1 import aggregation_pb2 as pb

log = logging.getLogger("pets.server.privacy")


class ServerPrivacy:
    """One server's DP policy over its store's budgets."""

    def __init__(self, policy: DpPolicy, store: Store, server: str) -> None:
        self.policy = policy
        self.store = store
        self.server = server
        # Noise drawn ahead, while a query is open: query id -> (plan, draw).
        self._drawn: dict[str, tuple[NoisePlan, asyncio.Future[np.ndarray]]] = {}
        # Draws started at admission, before the query has an id: id(noise) -> draw.
        self._pending: dict[int, asyncio.Future[np.ndarray]] = {}

    async def prepare(self, query_id: str, noise: NoisePlan) -> None:
        """Wait for this server's noise for an admitted query (drawn in a worker thread,
        started by :meth:`admit`, or now).

        Called before the query is announced (the leader before ``SubmitQuery``
        returns, a helper before it answers ``RegisterQuery``): the noise does
        not depend on the data, so it is drawn off the holders' critical path
        and the release only adds it. This costs submission latency instead
        (10^6 slots: ~15 ms of CPU per server, :mod:`pets.dp.fast`; the leader's
        draw overlaps the helpers' registration; the bench reports
        ``e2e_submit_seconds`` beside ``e2e_submit_dp_seconds``). The
        sampler's AES key lives only while it draws; the noise stays in memory
        only, until the release adds it to the share and overwrites it with
        zeros: a restart before the release draws again, which is harmless
        because nothing was released with the first draw. A draw that fails
        here is dropped and logged; the release then draws again (and fails
        the query if it fails again). A caller cancelled while it waits leaves
        the draw running: the release takes it.
        """
        if query_id not in self._drawn:
            started = self._pending.pop(id(noise), None)  # by admit(), for this very object
            if started is None:
                started = asyncio.ensure_future(asyncio.to_thread(_draw, noise))
            self._drawn[query_id] = (noise, started)
        draw = self._drawn[query_id][1]
        try:
            # Shielded: a caller that goes away leaves the draw running for the release.
            await asyncio.shield(draw)
        except asyncio.CancelledError:
            if not draw.cancelled():
                raise  # the caller itself was cancelled
            # discard() dropped the draw meanwhile (the query failed): nothing to wait for.
        except Exception as exc:
            self.discard(query_id)
            extra = {"query_id": query_id, "error": repr(exc)}
            log.warning("drawing noise ahead failed", extra=extra)

    def discard(self, query_id: str) -> None:
        """Forget a query's noise drawn ahead (it failed: nothing will be released)."""
        drawn = self._drawn.pop(query_id, None)
        if drawn is not None:
            drawn[1].cancel()

    async def _noise_for(self, query_id: str, noise: NoisePlan) -> np.ndarray:
        drawn = self._drawn.pop(query_id, None)
        if drawn is not None and drawn[0] == noise:
            try:
                return await drawn[1]
            except asyncio.CancelledError:
                pass
        return await asyncio.to_thread(_draw, noise)

    async def budget(self, analyst: str, dataset: str) -> PrivacyFilter:
        """The stored filter of (analyst, dataset), or a fresh one at the policy's budget."""
        stored = await self.store.get_budget(analyst, dataset)
        if stored is None:
            return self.policy.new_filter(analyst, dataset)
        return PrivacyFilter.from_json(stored)

    async def admit(
        self, analyst: str, plan: QueryPlan, protocol: AggregationProtocol
    ) -> NoisePlan | None:
        """The noise plan of an admitted query (None: no DP), or PermissionDeniedError
        (InvalidInputError if the protocol cannot add noise)."""
        noise = self.policy.admit(plan)
        if noise is not None and not protocol.supports_dp:
            raise InvalidInputError(
                f"the {protocol.name} protocol does not support differential privacy yet"
            )
        if noise is not None:
            # Refuse early, spending nothing, what the budget cannot pay for now.
            (await self.budget(analyst, plan.dataset.name)).after_spending(noise.rho)
            self._start_drawing(noise)
        return noise

    def _start_drawing(self, noise: NoisePlan) -> None:
        """Start drawing an admitted query's noise now, so that it overlaps the rest of
        the admission (the leader: the helpers' registration, which draws theirs).

        Kept by the identity of this ``noise`` object (two queries with equal plans
        never share a draw: reused noise would cancel in a difference of releases)
        until :meth:`prepare` takes it; if the admission fails and drops the
        object, the draw is forgotten with it once it is done (it holds the object
        while it runs).
        """
        key = id(noise)
        if key not in self._pending:
            draw = asyncio.ensure_future(asyncio.to_thread(_draw, noise))
            draw.add_done_callback(_retrieved)  # a dropped draw's failure is not "unread"
            self._pending[key] = draw
            weakref.finalize(noise, self._pending.pop, key, None)

    def _spend(self, analyst: str, dataset: str, rho: Fraction) -> Callable[[str | None], str]:
        def spend(stored: str | None) -> str:
            filt = (
                self.policy.new_filter(analyst, dataset)
                if stored is None
                else PrivacyFilter.from_json(stored)
            )
            return filt.after_spending(rho).to_json()

        return spend

    async def release(
        self,
        record: QueryRecord,
        protocol: AggregationProtocol,
        spec: pb.QuerySpec,
        plan: QueryPlan,
        noise: NoisePlan,
        share: bytes | memoryview,
    ) -> None:
        """Noise ``share`` and store it as ``record``'s final share, spending the budget
        in the same transaction (or raise PrivacyBudgetExceededError, changing nothing
        in the store). A writable ``share`` may get the noise added in place
        (:meth:`pets.protocols.AggregationProtocol.add_noise`): pass the server's own
        final aggregate, not a buffer anything else reads."""
        analyst, dataset = record.analyst, plan.dataset.name
        # No budget read first: the commit's transaction checks and spends (one store
        # round trip on the release's path, not two); a refusal there changes nothing.
        z = await self._noise_for(record.id, noise)
        spend = self._spend(analyst, dataset, noise.rho)

        async def add_and_store() -> None:
            # Adding is fast in a ring or field; Paillier encrypts the noise: off the loop.
            data = await asyncio.to_thread(protocol.add_noise, spec, plan, share, z)
            await self.store.finish_query_spending(record, data, analyst, dataset, spend)

        # A read-only share gets the sum written into ``z`` (the additive protocol then
        # returns a view of ``z``), and a store may still be writing it from a thread
        # after this caller is cancelled (say, its lease was lost): so the work is
        # shielded, and ``z`` is zeroed (the draw spent, or dropped with a failed
        # release) only once the work has ended.
        work = asyncio.ensure_future(add_and_store())
        work.add_done_callback(lambda done: _zero_after(done, z))
        await asyncio.shield(work)
        log.info(
            "noisy share released",
            extra={
                "query_id": record.id,
                "analyst": analyst,
                "dataset": dataset,
                "mechanism": noise.mechanism.value,
                "rho": str(noise.rho),
            },
        )


def _draw(noise: NoisePlan) -> np.ndarray:
    """One exact draw of ``noise`` (run in a worker thread), held in its own anonymous
    memory mapping for the rest of the query's life.

    The noise lives from admission to release. Left where numpy allocated it, in the
    malloc arena of the worker thread that drew it, that long-lived block pinned the
    arena, which the same worker threads then use for the query's aggregation: the
    helper's seed expansion at finalisation took 4.5-7 ms more CPU per 10^6 slots
    (18 ms without DP) mapping fresh memory, measured with the additive protocol. Its
    own mapping (an 8 MB copy, in the untimed submission) leaves the arenas as a
    query without DP leaves them, is returned to the system when the noise is
    dropped, and is kept out of core dumps where the platform allows
    (``MADV_DONTDUMP``).
    """
    drawn = noise.sample()
    mapping = mmap.mmap(-1, max(drawn.nbytes, 1))
    dontdump = getattr(mmap, "MADV_DONTDUMP", None)
    if dontdump is not None:
        try:
            mapping.madvise(dontdump)
        except OSError:  # a hardening hint; a kernel or sandbox without it still draws
            log.debug("MADV_DONTDUMP refused for a noise mapping")
    z = np.frombuffer(mapping, dtype=drawn.dtype, count=drawn.size)
    z[:] = drawn
    drawn.fill(0)
    return z


def _retrieved(done: asyncio.Future[Any]) -> None:
    """Mark a finished draw's exception as read (whoever takes the draw sees it again)."""
    if not done.cancelled():
        done.exception()


def _zero_after(done: asyncio.Future[None], z: np.ndarray) -> None:
    """Zero the noise once its release has ended, however it ended.

    In a worker thread (numpy's fill releases the interpreter lock): 8 MB per 10^6
    slots is up to a millisecond of memory writes, which would otherwise run on the
    event loop before the release's caller resumes, on the query's critical path.
    Nothing reads ``z`` any more, so zeroing it a moment later changes nothing else.
    """
    _retrieved(done)
    try:
        zeroing = asyncio.get_running_loop().run_in_executor(None, z.fill, 0)
    except RuntimeError:  # the loop's executor is shutting down: zero it here
        z.fill(0)
        return
    zeroing.add_done_callback(_retrieved)
