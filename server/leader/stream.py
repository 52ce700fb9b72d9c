"""``Leader.ContributeStream``: many one-message contributions over one long-lived stream.

Why: on a 2-core machine a unary mutual-TLS call costs the leader about
310 µs of fixed gRPC and asyncio work, a message on an open stream about
90 µs (issue 14, item 4). A node keeps one such stream open to the leader,
as it keeps ``WatchQueries`` open, and sends each small contribution as one
:class:`~pets.v1.aggregation_pb2.ContributionStreamRequest`.

Each request is handled exactly as ``ContributeOne`` handles its message:
the caller is authenticated once, from its mutual-TLS certificate, when the
stream opens (a caller that is no holder is refused with PERMISSION_DENIED
and the stream ends); every request then goes through
:meth:`pets.server.leader.intake.Intake.contribute` with no stream slot,
so admission, idempotent re-sends (acknowledged with ``newly_accepted =
False``), conflicts and batching are the very same code. Each request gets
exactly one response carrying its ``sequence``: the acknowledgement, or
the status ``ContributeOne`` would have ended with
(:func:`pets.transport.status.status_for`, the error's message, which never
holds secrets). A failed request leaves the stream open; a request whose
bytes do not parse is answered INVALID_ARGUMENT under the sequence number
read from its first field, if any (:func:`decode_request`).

Requests are processed concurrently, so one batch of the group commit
(:mod:`pets.server.leader.batching`) takes many of them; at most
:data:`MAX_IN_FLIGHT` per stream are being processed or waiting for their
response to be sent. Past that the leader stops reading the stream, and
HTTP/2 flow control pushes back on the holder: memory stays bounded
whatever the holder sends. When the leader shuts down it stops reading new
requests, answers the ones it took, and ends the stream with OK; the node
re-sends the rest on a new stream. A request larger than the server's gRPC
message limit ends the whole stream with gRPC's own RESOURCE_EXHAUSTED (gRPC
refuses it before pets sees it); a contribution that large belongs on
``Contribute``, which the node uses for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc

from pets.errors import InvalidInputError, PetsError
from pets.identity.certificates import Peer
from pets.server.leader.intake import Intake
from pets.server.rpc import RateLimitedLog
from pets.transport.status import status_for, status_for_unexpected
from pets.v1 import aggregation_pb2 as pb

log = logging.getLogger("pets.server")

MAX_IN_FLIGHT = 128
"""Requests of one stream being processed or answered at once (back-pressure bound)."""

MESSAGE_METHOD = "pets.v1.Leader/ContributeStream.message"
"""The ``method`` label under which ``pets_rpcs`` counts each request of a stream by the
code of its answer (the stream itself is counted once, as ``.../ContributeStream``)."""

_rejections = RateLimitedLog()
_failures = RateLimitedLog()


class GarbledRequest:
    """A request whose bytes do not parse; ``sequence`` as read from its first field."""

    __slots__ = ("sequence",)

    def __init__(self, sequence: int) -> None:
        self.sequence = sequence


def decode_request(raw: bytes) -> pb.ContributionStreamRequest | GarbledRequest:
    """The request, or a :class:`GarbledRequest` (never an exception), so one bad
    message is answered on its own instead of ending the stream."""
    try:
        return pb.ContributionStreamRequest.FromString(raw)
    except Exception:
        return GarbledRequest(_leading_sequence(raw))


def _leading_sequence(raw: bytes) -> int:
    """Field 1 (``sequence``, a varint) if the message starts with it, else 0."""
    if raw[:1] != b"\x08":
        return 0
    value = 0
    for i, byte in enumerate(raw[1:11]):
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value & 0xFFFF_FFFF_FFFF_FFFF
    return 0


def error_response(sequence: int, exc: BaseException) -> pb.ContributionStreamResponse:
    """The response for a request that failed with ``exc``: its status code and a safe
    message (a pets error's own; a bare INTERNAL for anything else)."""
    if isinstance(exc, PetsError):
        code, message = status_for(exc), str(exc)
    else:
        code, message = status_for_unexpected(exc)
    return pb.ContributionStreamResponse(
        sequence=sequence, error=pb.StreamError(code=code.value[0], message=message)
    )


class ContributionStreams:
    """Serves the leader's ``ContributeStream`` calls and ends them at shutdown."""

    def __init__(self, intake: Intake, *, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self.intake = intake
        self.max_in_flight = max_in_flight
        self._stopping = False
        self._readers: set[asyncio.Task[None]] = set()
        self._counters: dict[str, Any] = {}  # pets_rpcs children by code name ...
        self._counted: object = None  # ... of this counter

    def shutdown(self) -> None:
        """Stop reading every open stream; each answers what it took, then ends."""
        self._stopping = True
        for reader in list(self._readers):
            reader.cancel()

    def _count(self, code: str) -> None:
        """Count one answered request under :data:`MESSAGE_METHOD` (the labelled
        counter looked up once per code, not per message)."""
        rpcs = self.intake.metrics.rpcs  # the server's (the servicer sets it at start)
        counter = self._counters.get(code)
        if counter is None or self._counted is not rpcs:
            if self._counted is not rpcs:
                self._counters.clear()
                self._counted = rpcs
            counter = self._counters[code] = rpcs.labels(MESSAGE_METHOD, code)
        counter.inc()

    async def serve(
        self,
        peer: Peer,
        certificate: bytes,
        requests: AsyncIterator[pb.ContributionStreamRequest | GarbledRequest],
    ) -> AsyncIterator[pb.ContributionStreamResponse]:
        """The responses to an authenticated holder's requests, as they complete.

        A whole small contribution is handled without a task of its own
        (:meth:`pets.server.leader.intake.Intake.contribute_now`): its checks run
        as it is read and its response is queued when the group commit decides
        it; any other request gets a task running
        :meth:`~pets.server.leader.intake.Intake.contribute`. Either way it gets
        exactly one response.
        """
        if self._stopping:
            return
        responses: asyncio.Queue[pb.ContributionStreamResponse | None] = asyncio.Queue()
        room = asyncio.Semaphore(self.max_in_flight)  # released once a response is sent
        tasks: set[asyncio.Task[None]] = set()
        owed = 0  # requests taken without a task whose response is not queued yet

        def respond(sequence: int, outcome: pb.ContributionAck | BaseException) -> None:
            nonlocal owed
            owed -= 1
            responses.put_nowait(self._response(peer, sequence, outcome))
            if reader.done() and not tasks and not owed:
                responses.put_nowait(None)  # after every response: the end of the stream

        async def answer(request: pb.ContributionStreamRequest | GarbledRequest) -> None:
            responses.put_nowait(await self._answer(peer, certificate, request))

        async def read() -> None:
            nonlocal owed
            # Cancelled by shutdown(): no more requests are taken, the taken ones answered.
            async for request in requests:
                await room.acquire()
                if not isinstance(request, GarbledRequest) and request.HasField("contribution"):
                    owed += 1
                    done = functools.partial(respond, request.sequence)
                    try:
                        taken = self.intake.contribute_now(
                            peer, certificate, request.contribution, done
                        )
                    except Exception as exc:
                        done(exc)
                        continue
                    if taken:
                        continue
                    owed -= 1
                task = asyncio.create_task(answer(request))
                tasks.add(task)
                task.add_done_callback(answered)

        def answered(task: asyncio.Task[None]) -> None:
            tasks.discard(task)
            if reader.done() and not tasks and not owed:
                responses.put_nowait(None)  # after every response: the end of the stream

        reader = asyncio.create_task(read())
        self._readers.add(reader)
        reader.add_done_callback(lambda _: answered(reader))
        try:
            while (response := await responses.get()) is not None:
                yield response
                room.release()
            if not reader.cancelled():
                reader.result()  # re-raises a failure to read the stream
        finally:
            self._readers.discard(reader)
            reader.cancel()
            for task in list(tasks):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):  # the call ends either way
                await asyncio.gather(reader, *tasks, return_exceptions=True)

    async def _answer(
        self, peer: Peer, certificate: bytes, request: pb.ContributionStreamRequest | GarbledRequest
    ) -> pb.ContributionStreamResponse:
        """The response to a request that takes :meth:`Intake.contribute` (or is refused)."""
        outcome: pb.ContributionAck | BaseException
        try:
            if isinstance(request, GarbledRequest):
                raise InvalidInputError("malformed ContributionStreamRequest message")
            if not request.HasField("contribution"):
                raise InvalidInputError("a stream request must carry a contribution")
            outcome = await self.intake.contribute(peer, certificate, request.contribution, None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            outcome = exc
        return self._response(peer, request.sequence, outcome)

    def _response(
        self, peer: Peer, sequence: int, outcome: pb.ContributionAck | BaseException
    ) -> pb.ContributionStreamResponse:
        """The response carrying ``sequence``: the acknowledgement, or the error's status
        (a refusal logged as it deserves); counted by its code."""
        if isinstance(outcome, BaseException):
            _log_refusal(peer, outcome)
            response = error_response(sequence, outcome)
            self._count(_code_name(response.error.code))
            return response
        self._count("OK")
        return pb.ContributionStreamResponse(sequence=sequence, ack=outcome)


_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


def _code_name(value: int) -> str:
    return _CODE_NAMES.get(value, "UNKNOWN")


def _log_refusal(peer: Peer, exc: BaseException) -> None:
    """A client mistake as a WARNING, an unexpected error as an ERROR with its traceback;
    each at most once a minute per holder (:class:`pets.server.rpc.RateLimitedLog`)."""
    key = (f"{peer.role.value}/{peer.name}", "ContributeStream")
    if isinstance(exc, PetsError):
        if status_for(exc) != grpc.StatusCode.INVALID_ARGUMENT:
            return  # conflicts, closed queries, busy: the holder's answer, not a warning
        suppressed = _rejections.allow(key)
        if suppressed is not None:
            log.warning(
                "request refused",
                extra={
                    "method": "ContributeStream",
                    "peer": key[0],
                    "code": "INVALID_ARGUMENT",
                    "error": str(exc),
                    "suppressed": suppressed,
                },
            )
        return
    suppressed = _failures.allow(key)
    if suppressed is not None:
        log.error(
            "internal error in ContributeStream",
            exc_info=exc,
            extra={"peer": key[0], "suppressed": suppressed},
        )
