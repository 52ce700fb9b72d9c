"""A holder's persistent ``Leader.ContributeStream``: small contributions at a stream's cost.

A unary mutual-TLS call costs both ends a fixed ~300 µs of gRPC and asyncio
work on a 2-core machine, a message on an open stream under 100 µs (issue
14, item 4). :class:`ContributionStream` keeps one bidirectional stream per
leader channel open, as a node keeps ``WatchQueries`` open, and sends each
one-message contribution on it as a
:class:`~pets.v1.aggregation_pb2.ContributionStreamRequest` with a sequence
number of its own. Each contribution waits for the response carrying its
sequence number, under its own deadline; many are in flight at once.

Failures look like a failed unary call (:class:`MessageError` has the
``code()`` and ``details()`` of a ``grpc.RpcError``), so the holder's one
retry loop and :func:`pets.transport.status.error_for` treat both alike: a
per-message error carries the status the leader put in the response; when
the stream itself ends (the leader restarted or shut down, the connection
broke), every contribution waiting on it fails with the stream's status
(UNAVAILABLE when it ended cleanly) and the next one opens a new stream.
Re-sends are idempotent on the leader, so nothing acknowledged is lost and
nothing is counted twice. A leader without the method (UNIMPLEMENTED) is not
asked again for :data:`RETRY_STREAM_AFTER_SECONDS`; meanwhile
:attr:`ContributionStream.available` is False and the holder uses
``ContributeOne``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Sequence

import grpc

from pets.v1 import aggregation_pb2 as pb

log = logging.getLogger("pets.client.contribution_stream")

METHOD = "/pets.v1.Leader/ContributeStream"
RETRY_STREAM_AFTER_SECONDS = 300.0
_CODES = {code.value[0]: code for code in grpc.StatusCode}


class MessageError(grpc.RpcError):
    """One contribution on the stream failed: the status, as a failed call reports it."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


def status_code(value: int) -> grpc.StatusCode:
    """The ``grpc.StatusCode`` of a :class:`~pets.v1.aggregation_pb2.StreamError` code."""
    return _CODES.get(value, grpc.StatusCode.UNKNOWN)


LOCAL_CORE_FAILURE = "Internal error from Core"
"""The details of an INTERNAL that gRPC's client makes up itself (no server sent it):
e.g. a write racing the connection's loss when the leader is killed mid-stream."""


def ended_status(exc: grpc.aio.AioRpcError) -> MessageError:
    """The failure to give every contribution still waiting on a call that ended with ``exc``.

    A status the leader sent is passed on as it is. gRPC's own INTERNAL for a send
    that failed because the connection went away is UNAVAILABLE, as the same loss
    is reported when no write was under way: the contribution is re-sent on a new
    stream (re-sends are idempotent), not failed for good.
    """
    code, details = exc.code(), exc.details() or ""
    if code == grpc.StatusCode.INTERNAL and details == LOCAL_CORE_FAILURE:
        return MessageError(grpc.StatusCode.UNAVAILABLE, "the connection to the leader was lost")
    return MessageError(code, details)


def falls_back(code: grpc.StatusCode) -> bool:
    """Whether a stream that failed with ``code`` means the leader lacks the method, so
    the contribution goes by ``ContributeOne`` instead."""
    return code == grpc.StatusCode.UNIMPLEMENTED


def _expire(future: asyncio.Future[pb.ContributionStreamResponse], timeout: float) -> None:
    if not future.done():
        future.set_exception(
            MessageError(grpc.StatusCode.DEADLINE_EXCEEDED, f"no answer within {timeout:g} s")
        )


class _Session:
    """One open ``ContributeStream`` call, its reader and writer, and the
    contributions it owes an answer.

    One writer task per call sends the queued requests in order (gRPC allows one
    write at a time); a contribution waits only for its answer, so its deadline
    never interrupts a write, which would cancel the whole call. A request whose
    contribution gave up (deadline) before its turn is not sent.
    """

    def __init__(self, call: grpc.aio.StreamStreamCall) -> None:
        self.call = call
        self.loop = asyncio.get_running_loop()  # looked up once, not per message
        self.pending: dict[int, asyncio.Future[pb.ContributionStreamResponse]] = {}
        self.ended: MessageError | None = None
        self._queue: collections.deque[
            tuple[pb.ContributionStreamRequest, asyncio.Future[pb.ContributionStreamResponse]]
        ] = collections.deque()
        self._wake: asyncio.Future[None] | None = None  # set while the writer waits
        self.reader = asyncio.create_task(self._read())
        self.writer = asyncio.create_task(self._write())

    def send(
        self, sequence: int, request: pb.ContributionStreamRequest
    ) -> asyncio.Future[pb.ContributionStreamResponse]:
        """Queue ``request``; the future of its answer (failed if the call ended)."""
        future: asyncio.Future[pb.ContributionStreamResponse] = self.loop.create_future()
        if self.ended is not None:
            future.set_exception(self.ended)
            return future
        self.pending[sequence] = future
        self._queue.append((request, future))
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)
        return future

    async def _write(self) -> None:
        loop = self.loop
        queue = self._queue
        try:
            while self.ended is None:
                while queue:
                    request, future = queue.popleft()
                    if not future.done():
                        await self.call.write(request)
                self._wake = loop.create_future()
                await self._wake
                self._wake = None
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            pass  # the call ended: the reader fails every pending contribution with its status
        except Exception as exc:  # anything else ends the call, so nobody waits for a writer
            log.warning("contribution stream write failed", extra={"error": type(exc).__name__})
            self.call.cancel()

    async def _read(self) -> None:
        error = MessageError(grpc.StatusCode.UNAVAILABLE, "the leader ended the stream")
        try:
            while True:
                response = await self.call.read()
                if response is grpc.aio.EOF:
                    break
                future = self.pending.pop(response.sequence, None)
                if future is not None and not future.done():
                    future.set_result(response)
        except grpc.aio.AioRpcError as exc:
            error = ended_status(exc)
        except asyncio.CancelledError:
            error = MessageError(grpc.StatusCode.CANCELLED, "the stream was closed")
        finally:
            self.ended = error
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(error)
            self.pending.clear()
            self._queue.clear()
            self.writer.cancel()

    async def close(self) -> None:
        self.call.cancel()
        self.reader.cancel()
        self.writer.cancel()
        for task in (self.reader, self.writer):
            with contextlib.suppress(BaseException):
                await task


class ContributionStream:
    """One holder's persistent contribution stream to the leader (opened on first use)."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        metadata: Sequence[tuple[str, str]] = (),
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._open = channel.stream_stream(
            METHOD,
            request_serializer=pb.ContributionStreamRequest.SerializeToString,
            response_deserializer=pb.ContributionStreamResponse.FromString,
        )
        self._metadata = tuple(metadata)
        self._clock = clock
        self._session: _Session | None = None
        self._sequence = itertools.count(1)
        self._unimplemented_until = float("-inf")

    @property
    def available(self) -> bool:
        """False for a while after the leader answered UNIMPLEMENTED."""
        return self._clock() >= self._unimplemented_until

    def _current(self) -> _Session:
        session = self._session
        if session is None or session.ended is not None:
            session = self._session = _Session(self._open(metadata=self._metadata))
        return session

    async def contribute(
        self, chunk: pb.ContributionChunk, *, timeout: float
    ) -> pb.ContributionAck:
        """Send one whole contribution; its acknowledgement, or :class:`MessageError`."""
        session = self._current()
        sequence = next(self._sequence)
        future = session.send(
            sequence, pb.ContributionStreamRequest(sequence=sequence, contribution=chunk)
        )
        # The deadline fails the answer's future (one timer, no task cancellation);
        # a request still queued then is not sent.
        timer = session.loop.call_later(timeout, _expire, future, timeout)
        try:
            response = await future
        except MessageError as exc:
            if falls_back(exc.code()):
                self._unimplemented_until = self._clock() + RETRY_STREAM_AFTER_SECONDS
            raise
        finally:
            timer.cancel()
            session.pending.pop(sequence, None)
        if response.HasField("error"):
            raise MessageError(status_code(response.error.code), response.error.message)
        return response.ack

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
