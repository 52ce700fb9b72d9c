"""The Prepare round: the helpers check a batch of contributions before it is committed.

A contribution of a protocol that :attr:`~pets.protocols.AggregationProtocol.prepares`
is committed only once every helper has checked it (docs/ARCHITECTURE.md, "The
additive protocol: sealed seeds, Prepare, finalisation" and "The Prio3 protocol"):
one ``Prepare`` call per helper and query, each bounded by
:data:`PREPARE_TIMEOUT_SECONDS`; only what every helper accepted goes on.

For a verifying protocol (Prio3, draft-irtf-cfrg-vdaf-13 section 7) the round also
carries the verification: the per-query verify key sent to the helpers at
registration (:meth:`PrepareRound.register_requests`), the leader's ``verify_init``
(on arrival, on the verification worker processes of :mod:`pets.vdaf.pool`), the
combination of the verifier shares, and the durable, final rejection of a report that
fails the check.

:class:`PrepareRound` holds no queue: :class:`pets.server.leader.batching.Batching`
owns it, feeds it batches from its prepare loop and commits what it keeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import cache
from typing import Protocol, cast, runtime_checkable

from pets.errors import (
    InvalidInputError,
    InvalidProofError,
    NotReadyError,
    PetsError,
    UnavailableError,
)
from pets.protocols import AggregationProtocol
from pets.protocols.base import PrepareContext
from pets.query import QueryPlan
from pets.server.leader.state import Close, LeaderState, Pending, QueryRuntime, log, settle
from pets.server.query_state import OPEN
from pets.server.store.base import VerifyKey
from pets.v1 import aggregation_pb2 as pb

# Prio3 (issue 12): verification costs CPU in proportion to a report's size (about
# 0.35 s per MB of leader payload on each server, pure Python), so a Prepare batch
# of a verifying protocol holds at most this many payload bytes: a helper checks it
# well within PREPARE_TIMEOUT_SECONDS (and a test cluster's shorter bound).
MAX_VERIFY_BYTES_PER_BATCH = 2 << 20
# How long a helper gets to check one batch of contributions (Prepare); a
# contribution it has not checked by then fails as unavailable and is retried.
PREPARE_TIMEOUT_SECONDS = 10.0


@runtime_checkable
class OffloadsVerifyInit(Protocol):
    """A verifying protocol whose leader ``verify_init`` runs off the event loop by
    itself (Prio3: :func:`pets.protocols.prio3.leader_verify_init`), after which its
    ``prepare_message`` only builds the Prepare message."""

    async def leader_verify_init(
        self, holder: str, parsed: object, context: PrepareContext
    ) -> None: ...


@cache
def _offloads_type(protocol_type: type) -> bool:
    return issubclass(protocol_type, OffloadsVerifyInit)  # a slow check: once per class


def _offloads(protocol: AggregationProtocol) -> bool:
    return _offloads_type(type(protocol))


class PrepareRound:
    """The helpers' check of contributions (Prepare), and Prio3's verification in it."""

    def __init__(self, state: LeaderState) -> None:
        self.state = state
        # Counts Prepare outcomes (outcome, number of contributions): the server's metrics.
        self.on_prepared: Callable[[str, int], None] = lambda outcome, n: None

    async def leader_verify(self, item: Pending) -> bool:
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
        (error,) = await self._leader_verify_init([(item, context)])
        if error is not None:
            await self._reject(rt, item, error)
            return False
        return True

    def verify_work(self, item: Pending | Close) -> int:
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

        def group_for_helpers(item: Pending) -> None:
            rt = self.state.queries[item.query_id]
            if rt.record.state != OPEN or item.holder in rt.holders:
                return  # the commit loop refuses or acknowledges it as recorded
            group = groups.setdefault(item.query_id, {})
            if item.holder in group:  # one at a time per holder: only one is checked
                settle(
                    item.future,
                    error=UnavailableError(
                        f"another contribution from {item.holder} is being checked; retry"
                    ),
                )
                return
            group[item.holder] = item

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
            group_for_helpers(item)
        if verifying:
            for item, error in zip(
                [i for i, _ in verifying],
                await self._leader_verify_init(verifying),
                strict=True,
            ):
                if error is not None:
                    await self._reject(self.state.queries[item.query_id], item, error)
                    continue
                verified.append(item)
        for item in verified:
            group_for_helpers(item)
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

    async def _leader_verify_init(
        self, batch: list[tuple[Pending, PrepareContext]]
    ) -> list[PetsError | None]:
        """The leader's half of verification for each item: on the protocol's own
        verification workers when it has them (Prio3: worker processes, so the event
        loop keeps its interpreter lock), else in a worker thread."""
        if not all(_offloads(self.state.queries[item.query_id].protocol) for item, _ in batch):
            return await asyncio.to_thread(self._verify_init, batch)

        async def one(item: Pending, context: PrepareContext) -> PetsError | None:
            # Checked by _offloads above (a runtime-protocol isinstance per item is slow).
            protocol = cast(OffloadsVerifyInit, self.state.queries[item.query_id].protocol)
            try:
                await protocol.leader_verify_init(item.holder, item.parsed, context)
            except PetsError as exc:
                return exc
            (error,) = self._verify_init([(item, context)])  # only builds the message now
            return error

        return list(await asyncio.gather(*(one(item, context) for item, context in batch)))

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
