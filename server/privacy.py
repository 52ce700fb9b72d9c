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
   spends nothing.
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
from collections.abc import Callable
from fractions import Fraction

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

    async def prepare(self, query_id: str, noise: NoisePlan) -> None:
        """Draw this server's noise for an admitted query now, in a worker thread.

        Called before the query is announced (the leader before ``SubmitQuery``
        returns, a helper before it answers ``RegisterQuery``): the noise does
        not depend on the data, so it is drawn off the holders' critical path
        and the release only adds it. This costs submission latency instead
        (10^6 slots: ~15 ms of CPU per server, :mod:`pets.dp.fast`; the bench
        reports ``e2e_submit_seconds`` beside ``e2e_submit_dp_seconds``). The
        sampler's AES key lives only while it draws; the noise stays in memory
        only, until the release adds it to the share and overwrites it with
        zeros: a restart before the release draws again, which is harmless
        because nothing was released with the first draw. A draw that fails
        here is dropped and logged; the release then draws again (and fails
        the query if it fails again). A caller cancelled while it waits leaves
        the draw running: the release takes it.
        """
        if query_id not in self._drawn:
            self._drawn[query_id] = (noise, asyncio.ensure_future(asyncio.to_thread(noise.sample)))
        try:
            # Shielded: a caller that goes away leaves the draw running for the release.
            await asyncio.shield(self._drawn[query_id][1])
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
        return await asyncio.to_thread(noise.sample)

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
        return noise

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
        in the same transaction (or raise PrivacyBudgetExceededError, changing nothing)."""
        analyst, dataset = record.analyst, plan.dataset.name
        # No budget read first: the commit's transaction checks and spends (one store
        # round trip on the release's path, not two); a refusal there changes nothing.
        z = await self._noise_for(record.id, noise)
        # Adding is fast in a ring or field; Paillier encrypts the noise: off the loop.
        try:
            data = await asyncio.to_thread(protocol.add_noise, spec, plan, share, z)
            spend = self._spend(analyst, dataset, noise.rho)
            await self.store.finish_query_spending(record, data, analyst, dataset, spend)
        finally:
            # The draw is spent, or the release failed and it is dropped. Zeroed only now:
            # the additive protocol's noisy share is a view of ``z`` until it is stored.
            z.fill(0)
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
