"""How an ended ContributeStream call's status reaches the contributions still waiting on it.

A leader killed while a holder writes on its stream can make gRPC's client end
the call with an INTERNAL it made up itself ("Internal error from Core"): that
is the connection's loss, so it must be retried like UNAVAILABLE, while a status
the leader sent (its own INTERNAL included) is passed on unchanged.
"""

from __future__ import annotations

import grpc
import pytest
from grpc.aio import AioRpcError, Metadata

from pets.client.contribution_stream import LOCAL_CORE_FAILURE, ended_status
from pets.client.holder import RETRY_CODES


def _ended(code: grpc.StatusCode, details: str) -> AioRpcError:
    return AioRpcError(code, Metadata(), Metadata(), details=details)


def test_grpc_own_internal_for_a_lost_connection_is_retried() -> None:
    error = ended_status(_ended(grpc.StatusCode.INTERNAL, LOCAL_CORE_FAILURE))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error.code() in RETRY_CODES
    assert "connection to the leader" in error.details()


@pytest.mark.parametrize(
    ("code", "details"),
    [
        (grpc.StatusCode.INTERNAL, "internal error"),  # the leader's own INTERNAL
        (grpc.StatusCode.PERMISSION_DENIED, "only holders may contribute"),
        (grpc.StatusCode.UNAVAILABLE, "Socket closed"),
        (grpc.StatusCode.INVALID_ARGUMENT, LOCAL_CORE_FAILURE),
    ],
)
def test_a_status_the_leader_sent_is_passed_on(code: grpc.StatusCode, details: str) -> None:
    error = ended_status(_ended(code, details))
    assert (error.code(), error.details()) == (code, details)
