"""The one mapping between pets errors and gRPC status codes, both directions.

Servers abort calls with :func:`status_for` (``pets.server.rpc``); clients
turn a failed call back into the matching :class:`pets.errors.PetsError`
with :func:`error_for`, keeping the server's message. Only the enum of
``grpc`` is used here; the core opens no sockets.

A full disk is the server's trouble, not the caller's, but neither is it an
internal error: :func:`is_disk_full` recognises it (``OSError`` ENOSPC or
EDQUOT, SQLite's "database or disk is full", PostgreSQL's SQLSTATE 53100) in
an exception or its causes: :func:`status_for_unexpected` answers
``RESOURCE_EXHAUSTED`` for it, ``INTERNAL`` for anything else that is no pets
error. (A server that wraps a failed write in
:class:`pets.errors.UnavailableError`, e.g. "could not store the query",
answers ``UNAVAILABLE``, which clients retry.)
"""

from __future__ import annotations

import errno

import grpc

from pets import errors

_STATUS: tuple[tuple[type[errors.PetsError], grpc.StatusCode], ...] = (
    (errors.AuthenticationError, grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED),
    (errors.InvalidProofError, grpc.StatusCode.PERMISSION_DENIED),
    (errors.InvalidInputError, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFoundError, grpc.StatusCode.NOT_FOUND),
    (errors.ConflictError, grpc.StatusCode.ALREADY_EXISTS),
    (errors.ThresholdNotMetError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.NotReadyError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.OverflowDetectedError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.UnavailableError, grpc.StatusCode.UNAVAILABLE),
    (errors.ConfigError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.QuotaExceededError, grpc.StatusCode.RESOURCE_EXHAUSTED),
)

_ERROR: dict[grpc.StatusCode, type[errors.PetsError]] = {
    grpc.StatusCode.UNAUTHENTICATED: errors.AuthenticationError,
    grpc.StatusCode.PERMISSION_DENIED: errors.PermissionDeniedError,
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidInputError,
    grpc.StatusCode.NOT_FOUND: errors.NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: errors.ConflictError,
    grpc.StatusCode.FAILED_PRECONDITION: errors.NotReadyError,
    grpc.StatusCode.UNAVAILABLE: errors.UnavailableError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.UnavailableError,
    grpc.StatusCode.CANCELLED: errors.UnavailableError,
}


_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_DISK_FULL_TEXTS = ("database or disk is full", "no space left on device", "disk quota exceeded")


def is_disk_full(exc: BaseException) -> bool:
    """True if ``exc`` or one of its causes says the disk (or quota) is full."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _DISK_FULL_ERRNOS:
            return True
        if getattr(current, "sqlstate", None) == "53100":  # PostgreSQL disk_full
            return True
        text = str(current).lower()
        if any(t in text for t in _DISK_FULL_TEXTS):
            return True
        current = current.__cause__ or current.__context__
    return False


def status_for(exc: errors.PetsError) -> grpc.StatusCode:
    """The status code a server answers with for ``exc``."""
    for cls, code in _STATUS:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.UNKNOWN


def status_for_unexpected(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status and message for an exception that is no pets error: a full disk is
    ``RESOURCE_EXHAUSTED``, anything else a bare ``INTERNAL``."""
    if is_disk_full(exc):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, "the server's disk is full; try again later"
    return grpc.StatusCode.INTERNAL, "internal error"


def error_for(exc: grpc.RpcError, what: str) -> errors.PetsError:
    """A pets error for a failed call; ``what`` names the call for the message."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = exc.details() if hasattr(exc, "details") else str(exc)
    cls = _ERROR.get(code, errors.PetsError)
    return cls(f"{what}: {details} [{code.name}]")
