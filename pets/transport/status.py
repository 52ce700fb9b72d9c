"""The one mapping between pets errors and gRPC status codes, both directions.

Servers abort calls with :func:`status_for` (``pets.server.rpc``); clients
turn a failed call back into the matching :class:`pets.errors.PetsError`
with :func:`error_for`, keeping the server's message. Only the enum of
``grpc`` is used here; the core opens no sockets.
"""

from __future__ import annotations

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
)

_ERROR: dict[grpc.StatusCode, type[errors.PetsError]] = {
    grpc.StatusCode.UNAUTHENTICATED: errors.AuthenticationError,
    grpc.StatusCode.PERMISSION_DENIED: errors.PermissionDeniedError,
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidInputError,
    grpc.StatusCode.NOT_FOUND: errors.NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: errors.ConflictError,
    grpc.StatusCode.FAILED_PRECONDITION: errors.NotReadyError,
    grpc.StatusCode.UNAVAILABLE: errors.UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.UnavailableError,
    grpc.StatusCode.CANCELLED: errors.UnavailableError,
}


def status_for(exc: errors.PetsError) -> grpc.StatusCode:
    """The status code a server answers with for ``exc``."""
    for cls, code in _STATUS:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.UNKNOWN


def error_for(exc: grpc.RpcError, what: str) -> errors.PetsError:
    """A pets error for a failed call; ``what`` names the call for the message."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = exc.details() if hasattr(exc, "details") else str(exc)
    cls = _ERROR.get(code, errors.PetsError)
    return cls(f"{what}: {details} [{code.name}]")
