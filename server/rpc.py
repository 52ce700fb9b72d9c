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

from pets import errors, wire
from pets.identity import Peer, Role, peer_from_auth_context, validate_name
from pets.status import status_for
from pets.v1 import aggregation_pb2 as pb
from pets.wire import INSECURE_IDENTITY_HEADER

log = logging.getLogger("pets.server")


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


def caller_certificate(context: grpc.aio.ServicerContext) -> bytes:
    """The caller's certificate (PEM) as the TLS handshake verified it."""
    for value in context.auth_context().get("x509_pem_cert") or ():
        return bytes(value)
    raise errors.AuthenticationError("no client certificate presented")


def require(peer: Peer, roles: Iterable[Role], action: str) -> None:
    """Raise PermissionDeniedError unless ``peer`` has one of ``roles``."""
    allowed = tuple(roles)
    if peer.role not in allowed:
        names = " or ".join(r.value for r in allowed)
        raise errors.PermissionDeniedError(
            f"{peer.role.value} {peer.name!r} may not {action}; only a {names} may"
        )


def aggregate_chunks(header: pb.AggregateHeader, data: bytes) -> Iterator[pb.AggregateChunk]:
    """An aggregate share as a stream: the header with the first chunk, then data."""
    for i, chunk in enumerate(wire.chunks(data)):
        yield pb.AggregateChunk(header=header if i == 0 else None, data=bytes(chunk))
