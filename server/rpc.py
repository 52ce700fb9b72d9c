"""The one place where pets errors become gRPC status codes, and callers become peers.

Servicer methods raise :class:`pets.errors.PetsError` subclasses; the
decorators here turn them into ``context.abort`` with the mapped status code
and the error's message (which never contains secret material by the
convention of :mod:`pets.errors`). Anything else is logged with its traceback
and reported to the caller as a bare ``INTERNAL``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Any

import grpc

from pets import errors
from pets.identity.certificates import Peer, Role, validate_name
from pets.transport import wire
from pets.transport.peer import peer_from_auth_context
from pets.transport.status import status_for
from pets.transport.wire import INSECURE_IDENTITY_HEADER
from pets.v1 import aggregation_pb2 as pb

log = logging.getLogger("pets.server")


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
        handlers[method.name] = kind(
            getattr(servicer, method.name),
            request_deserializer=decoders.get(method.name, request.FromString),
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
            return await fn(self, request, context)
        except errors.PetsError as exc:
            await context.abort(status_for(exc), str(exc))
        except Exception:
            log.exception("internal error in %s", fn.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")

    return wrapper


def streaming(fn: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    """Wrap a server-streaming servicer method (an async generator)."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            async for item in fn(self, request, context):
                yield item
        except errors.PetsError as exc:
            await context.abort(status_for(exc), str(exc))
        except Exception:
            log.exception("internal error in %s", fn.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")

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
