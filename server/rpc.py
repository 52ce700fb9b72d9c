"""The one place where pets errors become gRPC status codes, and callers become peers.

Servicer methods raise :class:`pets.errors.PetsError` subclasses; the
decorators here turn them into ``context.abort`` with the mapped status code
(:mod:`pets.transport.status`) and the error's message (which never contains
secret material by the convention of :mod:`pets.errors`). Anything else is
logged with its traceback and reported to the caller as a bare ``INTERNAL``
(or ``RESOURCE_EXHAUSTED`` when the disk is full).

A client's mistake is not the server's fault: a request that does not even
parse (garbage bytes) reaches the servicer as a :class:`Malformed` marker
instead of failing inside gRPC, and is refused with ``INVALID_ARGUMENT`` like
any other :class:`pets.errors.InvalidInputError`. Such refusals are logged
as one WARNING line without the payload, at most one per caller and method
every :data:`WARNING_INTERVAL_SECONDS` (the next line says how many were
suppressed), so no caller can flood the logs; unexpected errors are
rate-limited the same way.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from pets import errors
from pets.identity.certificates import Peer, Role, validate_name
from pets.transport import wire
from pets.transport.peer import peer_from_auth_context
from pets.transport.status import status_for, status_for_unexpected
from pets.transport.wire import INSECURE_IDENTITY_HEADER
from pets.v1 import aggregation_pb2 as pb

log = logging.getLogger("pets.server")

WARNING_INTERVAL_SECONDS = 60.0

M = TypeVar("M", bound=Message)


class Malformed:
    """A request message that did not parse; the servicer refuses it (INVALID_ARGUMENT)."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name


def lenient(decode: Callable[[bytes], object], type_name: str) -> Callable[[bytes], object]:
    """``decode``, but a request that does not parse becomes :class:`Malformed`
    rather than an exception inside gRPC (which would answer INTERNAL or UNKNOWN)."""

    def parse(raw: bytes) -> object:
        try:
            return decode(raw)
        except Exception:
            return Malformed(type_name)

    return parse


class RateLimitedLog:
    """At most one line per key every ``interval`` seconds; the next line allowed
    says how many were suppressed meanwhile. Keeps at most ``max_keys`` keys."""

    def __init__(
        self,
        interval: float = WARNING_INTERVAL_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 4096,
    ) -> None:
        self.interval = interval
        self.clock = clock
        self.max_keys = max_keys
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def allow(self, key: tuple[str, str]) -> int | None:
        """The number of lines suppressed since the last one, if a line may be
        written now for ``key``; None (and one more suppressed) if not."""
        now = self.clock()
        last = self._seen.get(key)
        if last is not None and now - last[0] < self.interval:
            self._seen[key] = (last[0], last[1] + 1)
            return None
        self._seen.pop(key, None)
        self._seen[key] = (now, 0)
        while len(self._seen) > self.max_keys:
            del self._seen[next(iter(self._seen))]
        return 0 if last is None else last[1]


_rejections = RateLimitedLog()
_failures = RateLimitedLog()


def _peer_label(context: grpc.aio.ServicerContext) -> str:
    """Who called, for a log line: the certificate's identity, else the address."""
    with contextlib.suppress(Exception):  # no TLS, or a certificate that names nobody
        auth = context.auth_context()
        if auth.get("x509_pem_cert"):
            peer = peer_from_auth_context(auth)
            return f"{peer.role.value}/{peer.name}"
    try:
        address = str(context.peer())
    except Exception:
        return "unknown"
    return address.rsplit(":", 1)[0] if address.count(":") > 1 else address


def _screen(request: Any) -> Any:
    """Refuse a request that did not parse; screen a request stream message by message."""
    if isinstance(request, Malformed):
        raise errors.InvalidInputError(f"malformed {request.type_name} message")
    if hasattr(request, "__aiter__"):
        return _screened(request)
    return request


async def _screened(stream: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for item in stream:
        if isinstance(item, Malformed):
            raise errors.InvalidInputError(f"malformed {item.type_name} message")
        yield item


async def _abort(context: grpc.aio.ServicerContext, method: str, exc: Exception) -> None:
    """End the call with the status ``exc`` maps to, logging it as it deserves."""
    if isinstance(exc, errors.PetsError):
        code, message = status_for(exc), str(exc)
        if code == grpc.StatusCode.INVALID_ARGUMENT:  # the caller's mistake: a warning
            peer = _peer_label(context)
            suppressed = _rejections.allow((peer, method))
            if suppressed is not None:
                log.warning(
                    "request refused",
                    extra={
                        "method": method,
                        "peer": peer,
                        "code": code.name,
                        "error": message,
                        "suppressed": suppressed,
                    },
                )
    else:
        code, message = status_for_unexpected(exc)
        peer = _peer_label(context)
        suppressed = _failures.allow((peer, method))
        if suppressed is not None:
            log.error(
                "internal error in %s",
                method,
                exc_info=exc,
                extra={"peer": peer, "code": code.name, "suppressed": suppressed},
            )
    await context.abort(code, message)


_HANDLER_KINDS = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def add_service(
    server: grpc.aio.Server,
    servicer: object,
    service: str,
    *,
    request_decoders: dict[str, Callable[[bytes], object]] | None = None,
    encoded_responses: Iterable[str] = (),
) -> None:
    """Register ``servicer`` for the ``pets.v1`` service ``service``.

    What the generated ``add_<Service>Servicer_to_server`` does, built from
    the service descriptor, except that ``request_decoders`` may replace a
    method's request parser (the leader reads contribution chunks with
    :func:`pets.transport.wire.decode_contribution_chunk`, which does not copy the data)
    and the methods in ``encoded_responses`` yield messages already encoded
    (:func:`pets.transport.wire.encode_chunk`), passed to gRPC as they are.
    """
    encoded = set(encoded_responses)
    descriptor = pb.DESCRIPTOR.services_by_name[service]
    decoders = request_decoders or {}
    handlers = {}
    for method in descriptor.methods:
        request = getattr(pb, method.input_type.name)
        response = getattr(pb, method.output_type.name)
        kind = _HANDLER_KINDS[(method.client_streaming, method.server_streaming)]
        decode = decoders.get(method.name, request.FromString)
        handlers[method.name] = kind(
            getattr(servicer, method.name),
            request_deserializer=lenient(decode, method.input_type.name),
            response_serializer=None if method.name in encoded else response.SerializeToString,
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(descriptor.full_name, handlers),)
    )
    server.add_registered_method_handlers(descriptor.full_name, handlers)


def unary(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Wrap a unary-response servicer method (unary or client-streaming request)."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await fn(self, _screen(request), context)
        except Exception as exc:
            await _abort(context, fn.__name__, exc)

    return wrapper


def streaming(fn: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    """Wrap a server-streaming servicer method (an async generator)."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            async for item in fn(self, _screen(request), context):
                yield item
        except Exception as exc:
            await _abort(context, fn.__name__, exc)

    return wrapper


def caller(context: grpc.aio.ServicerContext, *, insecure: bool) -> Peer:
    """The authenticated identity of the caller.

    With mutual TLS it comes from the client certificate (role and name
    bound by the project CA). In ``--insecure`` mode, for local experiments
    only, the client *claims* it in the ``x-pets-identity: role/name``
    header and nothing is authenticated.
    """
    if not insecure:
        return peer_from_auth_context(context.auth_context())
    for key, value in context.invocation_metadata() or ():
        if key == INSECURE_IDENTITY_HEADER:
            role, _, name = str(value).partition("/")
            try:
                return Peer(role=Role(role), name=validate_name(name))
            except (ValueError, errors.PetsError):
                break
    raise errors.AuthenticationError(
        f"no identity: in --insecure mode clients send the {INSECURE_IDENTITY_HEADER} header"
    )


def caller_and_certificate(
    context: grpc.aio.ServicerContext, *, insecure: bool
) -> tuple[Peer, bytes]:
    """:func:`caller` and the certificate (PEM) the TLS handshake verified.

    One look at the auth context for both; the certificate is ``b""`` in
    ``--insecure`` mode, where there is none.
    """
    if insecure:
        return caller(context, insecure=True), b""
    auth = context.auth_context()
    peer = peer_from_auth_context(auth)
    for value in auth.get("x509_pem_cert") or ():
        return peer, bytes(value)
    raise errors.AuthenticationError("no client certificate presented")  # pragma: no cover


def require(peer: Peer, roles: Iterable[Role], action: str) -> None:
    """Raise PermissionDeniedError unless ``peer`` has one of ``roles``."""
    allowed = tuple(roles)
    if peer.role not in allowed:
        names = " or ".join(_with_article(r.value) for r in allowed)
        raise errors.PermissionDeniedError(
            f"{peer.role.value} {peer.name!r} may not {action}; only {names} may"
        )


def _with_article(noun: str) -> str:
    """``noun`` after its indefinite article: "an analyst", "a holder"."""
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def aggregate_chunks(header: pb.AggregateHeader, data: bytes) -> Iterator[bytes]:
    """An aggregate share as a stream of encoded ``AggregateChunk`` messages: the
    header with the first chunk, then data (:func:`pets.transport.wire.encode_chunk`; the
    servers register ``GetAggregate`` with a pass-through serializer)."""
    for i, chunk in enumerate(wire.chunks(data)):
        yield wire.encode_chunk(header if i == 0 else None, chunk)


async def opened_with_header(
    requests: AsyncIterator[M], stream_name: str
) -> tuple[M, AsyncIterator[M]]:
    """A client stream's first message, which must carry its header, and the rest of
    the stream. An empty stream or a first message without one is refused
    (INVALID_ARGUMENT): "``stream_name`` starts with its header"."""
    stream = requests.__aiter__()
    first = await anext(stream, None)
    if first is None or not first.HasField("header"):
        raise errors.InvalidInputError(f"{stream_name} starts with its header")
    return first, stream
