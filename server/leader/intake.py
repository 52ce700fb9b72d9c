"""Intake: one holder's contribution, from its first message to its acknowledgement.

The header is checked before a byte of the payload is read (the query is
open, the size is exactly the query's, the digest is 32 bytes, the sealed
seeds have the protocol's shape); a contribution already committed is
decided on its announced digest alone (idempotent re-send, or a conflict).
The payload is then collected in the protocol's sink, validated by the
query's running aggregate and handed to batching, and the call returns once
it is committed. One stream per holder and query at a time; at most
``max_concurrent_contributions`` streamed contributions are received at once
(memory bound), shared fairly between holders, at most
``max_streams_per_holder`` of them from one holder
(:class:`~pets.server.leader.slots.FairSlots`). A stream that sends nothing
for ``contribution_idle_timeout_seconds`` is dropped, and every stream must
finish within ``contribution_timeout_seconds``: one holder stalling streams
cannot keep the others out (issue 15, item 4).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from pets.errors import ConflictError, InvalidInputError, NotReadyError, UnavailableError
from pets.identity.certificates import Peer
from pets.runtime.offload import OFFLOAD_BYTES, offload
from pets.server.leader.batching import Batching
from pets.server.leader.slots import FairSlots
from pets.server.leader.state import LeaderState, Pending, QueryRuntime, log
from pets.server.metrics import ServerMetrics
from pets.server.query_state import OPEN
from pets.transport import wire
from pets.v1 import aggregation_pb2 as pb


class Intake:
    """Receives, checks and stages contributions."""

    def __init__(
        self,
        state: LeaderState,
        batching: Batching,
        close: Callable[[str, str], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        """``close(query_id, reason)`` closes a query once ``close_after`` holders
        contributed (the lifecycle's, which retries; default: one attempt)."""
        self.state = state
        self.batching = batching
        self.close = close or batching.close
        limits = state.config.limits
        self.slots = FairSlots(limits.max_concurrent_contributions, limits.max_streams_per_holder)
        self.metrics = ServerMetrics()  # the server's, set by the servicer

    async def contribute(
        self,
        peer: Peer,
        certificate: bytes,
        first: pb.ContributionChunk,
        stream: AsyncIterator[pb.ContributionChunk] | None,
    ) -> pb.ContributionAck:
        """One contribution: ``first`` carries the header; ``stream`` the rest (if any)."""
        started = time.perf_counter()
        header = _header(first)
        rt = await self.state.find(header.query_id)  # read through: another replica's query
        admitted = self._admit(rt, peer, header)
        if isinstance(admitted, pb.ContributionAck):
            return admitted
        expected, digest, seeds = admitted
        rt.in_flight.add(peer.name)  # before any await: one stream per holder at a time
        limits = self.state.config.limits
        try:
            if stream is None:  # the whole contribution is in hand: no stream slot needed
                payload = await self._receive(rt, first, None, expected, digest)
                newly = await self._stage(rt, peer, payload, digest, seeds, certificate)
            else:
                async with self.slots.slot(peer.name):
                    async with asyncio.timeout(limits.contribution_timeout_seconds):
                        payload = await self._receive(rt, first, stream, expected, digest)
                    newly = await self._stage(rt, peer, payload, digest, seeds, certificate)
        except TimeoutError:
            raise UnavailableError(
                f"contribution stream took over {limits.contribution_timeout_seconds:g} s"
            ) from None
        finally:
            rt.in_flight.discard(peer.name)
        return self._accepted(rt, peer.name, newly, started)

    def contribute_now(
        self,
        peer: Peer,
        certificate: bytes,
        first: pb.ContributionChunk,
        done: Callable[[pb.ContributionAck | BaseException], object],
    ) -> bool:
        """:meth:`contribute` of a whole small contribution, without a task of its own.

        For ``ContributeStream``, where a task, a coroutine chain and a shielded
        wait per message cost the leader more than the rest of its Python work on
        the message: every check that :meth:`contribute` makes is made here, in
        the same order, synchronously (a refusal raises the same error), and the
        contribution is queued for the helpers' check and the group commit;
        ``done`` is then called once, from the event loop, with the
        acknowledgement or the error :meth:`contribute` would have returned or
        raised. False, with nothing done, when the contribution needs an await
        first: its query is not in memory (read through to the store), its
        protocol verifies on arrival (Prio3), or it is large enough that hashing
        or parsing it belongs off the event loop (:func:`pets.runtime.offload`).
        """
        started = time.perf_counter()
        header = _header(first)
        rt = self.state.queries.get(header.query_id)
        if (
            rt is None
            or len(first.data) >= OFFLOAD_BYTES
            or (rt.aggregate is not None and rt.aggregate.payload_bytes >= OFFLOAD_BYTES)
            or rt.protocol.verifies
        ):
            return False
        admitted = self._admit(rt, peer, header)
        if isinstance(admitted, pb.ContributionAck):
            done(admitted)
            return True
        expected, digest, seeds = admitted
        rt.in_flight.add(peer.name)
        try:
            sink = rt.protocol.payload_sink(expected)
            if first.data:
                sink.add(first.data)
            payload = _finished(sink, digest)
            aggregate = rt.aggregate
            assert aggregate is not None
            item = self._pending(rt, peer, aggregate.validate(payload), digest, seeds, certificate)
            self.batching.enqueue(item)
        except BaseException:
            rt.in_flight.discard(peer.name)
            raise

        def settled(future: asyncio.Future[bool]) -> None:
            rt.in_flight.discard(peer.name)
            if future.cancelled():
                done(UnavailableError("leader shutting down"))
                return
            error = future.exception()
            if error is not None:
                done(error)
                return
            try:
                ack = self._accepted(rt, peer.name, future.result(), started)
            except Exception as exc:  # pragma: no cover - building an ack does not fail
                done(exc)
                return
            done(ack)

        item.future.add_done_callback(settled)
        return True

    def _admit(
        self, rt: QueryRuntime, peer: Peer, header: pb.ContributionHeader
    ) -> pb.ContributionAck | tuple[int, bytes, list[pb.SealedSeed] | None]:
        """The header's checks: the acknowledgement of a contribution already
        committed, or ``(payload bytes, digest, sealed seeds)`` of a new one."""
        aggregate = rt.aggregate
        if rt.record.state != OPEN or aggregate is None:
            raise NotReadyError(f"query {header.query_id} is no longer accepting contributions")
        expected = aggregate.payload_bytes
        sized = getattr(rt.protocol, "contribution_bytes", None)
        if sized is not None:  # record linkage: uploads vary in size (pets.protocols.linkage)
            expected = sized(header, aggregate)
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
                return self.ack(rt, peer.name, newly=False)
            raise ConflictError(
                f"holder {peer.name} already contributed a different vector to {rt.record.id}"
            )
        if peer.name in rt.in_flight:
            raise UnavailableError(
                f"a contribution from {peer.name} to {rt.record.id} is already in progress"
            )
        # Small, in the header: checked before a byte of the payload is read (the
        # helpers check certificates and signatures before the commit).
        seeds = rt.protocol.check_header(header, [h.name for h in self.state.helpers])
        return expected, digest, seeds

    def _accepted(
        self, rt: QueryRuntime, holder: str, newly: bool, started: float
    ) -> pb.ContributionAck:
        """After the commit (or on finding it recorded): count, maybe close, acknowledge."""
        # Per-contribution lines are debug-level: at thousands per second they would
        # cost more than the contribution (even building their fields); "query
        # closed" logs the count.
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "contribution accepted" if newly else "contribution already recorded",
                extra={"query_id": rt.record.id, "holder": holder, "contributors": rt.contributors},
            )
        self.metrics.contribution_seconds.observe(time.perf_counter() - started)
        close_after = rt.spec.close_after
        if newly and close_after and rt.contributors >= close_after and rt.record.state == OPEN:
            reason = f"{close_after} holders contributed"
            self.state.spawn(self.close(rt.record.id, reason), "close")
        return self.ack(rt, holder, newly=newly)

    async def _stage(
        self,
        rt: QueryRuntime,
        peer: Peer,
        payload: bytes | bytearray | list[bytes],
        digest: bytes,
        seeds: list[pb.SealedSeed] | None,
        certificate: bytes,
    ) -> bool:
        """Validate a received payload and hand it to batching; True once newly
        committed, False if the same contribution was already recorded."""
        aggregate = rt.aggregate
        assert aggregate is not None
        if isinstance(payload, list):  # chunks as received: zero-copy views
            parsed = aggregate.validate(payload)
        else:  # one buffer: parsing may be CPU work (big integers)
            parsed = await offload(aggregate.payload_bytes, aggregate.validate, payload)
        del payload
        return await self.batching.submit(
            self._pending(rt, peer, parsed, digest, seeds, certificate)
        )

    @staticmethod
    def _pending(
        rt: QueryRuntime,
        peer: Peer,
        parsed: object,
        digest: bytes,
        seeds: list[pb.SealedSeed] | None,
        certificate: bytes,
    ) -> Pending:
        return Pending(
            query_id=rt.record.id,
            holder=peer.name,
            digest=digest,
            parsed=parsed,
            seeds=seeds,
            certificate=certificate,
        )

    async def _receive(
        self,
        rt: QueryRuntime,
        first: pb.ContributionChunk,
        stream: AsyncIterator[pb.ContributionChunk] | None,
        expected: int,
        digest: bytes,
    ) -> bytes | bytearray | list[bytes]:
        """The payload of a contribution stream, length-checked as it arrives, in the
        protocol's sink; a sink that hashes must match the announced SHA-256."""
        sink = rt.protocol.payload_sink(expected)
        collecting = isinstance(sink, wire.ChunkCollector)
        data = first.data
        while True:
            if data:
                if collecting:
                    sink.add(data)
                else:  # copy and hash large chunks off the event loop
                    await offload(len(data), sink.add, data)
            msg = None if stream is None else await self._next(stream)
            if msg is None:
                break
            if msg.HasField("header"):
                raise InvalidInputError("only the first message may carry a header")
            data = msg.data  # one copy out of the message, not one per access
        return _finished(sink, digest)

    async def _next(
        self, stream: AsyncIterator[pb.ContributionChunk]
    ) -> pb.ContributionChunk | None:
        """The stream's next message, or None at its end; a stream that sends nothing
        for ``contribution_idle_timeout_seconds`` is dropped (its slot freed)."""
        idle = self.state.config.limits.contribution_idle_timeout_seconds
        try:
            return await asyncio.wait_for(anext(stream, None), idle)
        except TimeoutError:
            raise UnavailableError(
                f"contribution stream sent nothing for {idle:g} s; dropped"
            ) from None

    def ack(self, rt: QueryRuntime, holder: str, *, newly: bool) -> pb.ContributionAck:
        return pb.ContributionAck(
            query_id=rt.record.id,
            holder=holder,
            newly_accepted=newly,
            contributors=rt.contributors,
        )


def _header(first: pb.ContributionChunk) -> pb.ContributionHeader:
    if not first.HasField("header"):
        raise InvalidInputError("the first message of a contribution must carry its header")
    return first.header


def _finished(
    sink: wire.ChunkCollector | wire.ChunkAssembler, digest: bytes
) -> bytes | bytearray | list[bytes]:
    """The payload a sink collected; a sink that hashes must match the announced SHA-256."""
    payload = sink.finish()
    if isinstance(sink, wire.ChunkAssembler) and not hmac.compare_digest(sink.digest(), digest):
        raise InvalidInputError("payload does not match its announced SHA-256 digest")
    return payload
