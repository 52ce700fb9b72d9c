"""The one error-to-status mapping: client mistakes, a full disk, rate-limited logs."""

from __future__ import annotations

import asyncio
import errno
import logging
import sqlite3
from typing import Any

import grpc
import pytest

from pets.errors import InvalidInputError, UnavailableError
from pets.server.rpc import Malformed, RateLimitedLog, lenient, unary
from pets.transport.status import is_disk_full, status_for, status_for_unexpected
from pets.v1 import aggregation_pb2 as pb
from tests.unit.server.servicer_fakes import Aborted, Context


def test_a_request_that_does_not_parse_becomes_malformed() -> None:
    parse = lenient(pb.QueryRef.FromString, "QueryRef")
    assert parse(pb.QueryRef(query_id="q").SerializeToString()).query_id == "q"  # type: ignore[attr-defined]
    bad = parse(b"\xff\xff\xff")
    assert isinstance(bad, Malformed) and bad.type_name == "QueryRef"


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EDQUOT, "Disk quota exceeded"),
        sqlite3.OperationalError("database or disk is full"),
    ],
)
def test_a_full_disk_is_resource_exhausted(exc: Exception) -> None:
    assert is_disk_full(exc)
    wrapped = UnavailableError("could not store the query")
    wrapped.__cause__ = exc
    assert is_disk_full(wrapped)
    assert status_for(wrapped) == grpc.StatusCode.UNAVAILABLE  # clients retry it
    assert status_for_unexpected(exc)[0] == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_anything_else_unexpected_is_internal() -> None:
    assert not is_disk_full(KeyError("x"))
    assert status_for_unexpected(KeyError("x")) == (grpc.StatusCode.INTERNAL, "internal error")


def test_repeated_lines_are_rate_limited_and_counted() -> None:
    now = [0.0]
    limited = RateLimitedLog(60.0, clock=lambda: now[0], max_keys=2)
    key = ("holder/mallory", "Contribute")
    assert limited.allow(key) == 0
    assert [limited.allow(key) for _ in range(3)] == [None, None, None]
    assert limited.allow(("holder/alice", "Contribute")) == 0  # per caller
    now[0] = 61.0
    assert limited.allow(key) == 3  # the next line says how many were suppressed
    limited.allow(("a", "m"))
    limited.allow(("b", "m"))
    assert len(limited._seen) == 2  # bounded


class Servicer:
    def __init__(self, error: Exception) -> None:
        self.error = error

    @unary
    async def Call(self, request: Any, context: Any) -> Any:
        raise self.error


def _abort(error: Exception, request: Any = None) -> str:
    async def go() -> str:
        with pytest.raises(Aborted) as aborted:
            await Servicer(error).Call(request, Context("holder/h"))
        return str(aborted.value)

    return asyncio.run(go())


def test_servicer_errors_map_in_one_place(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="pets.server")
    disk = OSError(errno.ENOSPC, "No space left on device")
    assert _abort(disk).startswith("StatusCode.RESOURCE_EXHAUSTED: the server's disk is full")
    assert _abort(KeyError("x")) == "StatusCode.INTERNAL: internal error"
    assert _abort(InvalidInputError("bad length")) == "StatusCode.INVALID_ARGUMENT: bad length"
    # A request that did not parse never reaches the method.
    assert _abort(KeyError("unreached"), Malformed("QueryRef")) == (
        "StatusCode.INVALID_ARGUMENT: malformed QueryRef message"
    )
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and all(r.exc_info is None for r in warnings)
