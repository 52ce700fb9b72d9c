"""A close or finalisation that fails (a full disk) is retried until it succeeds, and
the query's status says it is stuck meanwhile (issue 15, item 5); a query that
cannot be stored at submit is refused as such, not as an internal error (item 8).

The store here is the real SQLite store behind a wrapper that fails chosen
methods a few times with SQLite's own "database or disk is full": a test
double of the disk, which then recovers.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any, cast

import pytest

from pets.runtime.backoff import Backoff
from pets.server.config import Limits, ServerConfig
from pets.server.leader import Leader
from pets.server.store import SqliteStore, Store
from pets.v1 import aggregation_pb2 as pb
from tests.unit.server.servicer_fakes import Aborted, Context
from tests.unit.server.test_leader_prepare import SCHEMA, _contribution


class DiskFullStore:
    """A :class:`Store` whose methods named in ``failures`` fail that many times."""

    def __init__(self, store: SqliteStore, failures: dict[str, int]) -> None:
        self.store = store
        self.failures = dict(failures)
        self.failed: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.store, name)
        if name not in self.failures:
            return method

        async def failing(*args: Any, **kwargs: Any) -> Any:
            if self.failures[name] > 0:
                self.failures[name] -= 1
                self.failed.append(name)
                raise sqlite3.OperationalError("database or disk is full")
            return await method(*args, **kwargs)

        return failing


class Helper:
    """A helper link that accepts and finalises everything."""

    name = "helper-1"

    async def register(self, request: pb.RegisterQueryRequest) -> pb.HelperKey:
        return pb.HelperKey(helper=self.name, seal_public_key=bytes(32))

    async def prepare(
        self, query_id: str, contributions: list[pb.SealedContribution], timeout: float
    ) -> pb.PrepareResponse:
        return pb.PrepareResponse(query_id=query_id, accepted=len(contributions))

    async def finalize(self, query_id: str, contributions: list[bytes], timeout: float) -> None:
        pass

    async def abort(self, query_id: str) -> None:
        pass

    async def close(self) -> None:
        pass


def _leader(tmp_path: Path, failures: dict[str, int]) -> tuple[Leader, DiskFullStore]:
    config = ServerConfig(
        role="leader",
        name="leader",
        listen="127.0.0.1:0",
        state_dir=tmp_path,
        min_holders=1,
        tls=None,
        limits=Limits(default_deadline_seconds=0.3),
    )
    store = DiskFullStore(SqliteStore(config.database), failures)
    leader = Leader(config, cast(Store, store), SCHEMA, [Helper()])
    leader.lifecycle.retry_backoff = lambda: Backoff(0.01, 0.05)
    return leader, store


SPEC = pb.QuerySpec(
    query_json='{"aggregate":"vector_sum","dataset":"v"}',
    min_holders=1,
    protocol=pb.PROTOCOL_ADDITIVE,
)


def test_a_failed_deadline_close_and_finalisation_are_retried(tmp_path: Path) -> None:
    async def go() -> tuple[list[pb.QueryStatus], list[str]]:
        # The deadline close fails twice, then recording the result fails once.
        leader, store = _leader(tmp_path, {"close_query": 2, "finish_query": 1})
        await leader.start()
        status = await leader.SubmitQuery(pb.SubmitQueryRequest(spec=SPEC), Context("analyst/a"))
        qid = status.query_id
        await leader.ContributeOne(_contribution(qid), Context("holder/h1"))
        seen: list[pb.QueryStatus] = []

        async def follow() -> None:
            async for s in leader.announcer.watch_status(leader.queries[qid]):
                seen.append(s)

        # Liveness bound only: on success this takes well under a second.
        await asyncio.wait_for(follow(), 30)
        await leader.stop()
        await store.store.close()
        return seen, store.failed

    seen, failed = asyncio.run(go())
    assert failed == ["close_query", "close_query", "finish_query"]
    stuck = [(s.state, s.stuck_attempts, s.stuck_reason) for s in seen if s.stuck_attempts]
    assert (pb.QUERY_STATE_OPEN, 2, "close failed (the server's disk is full); retrying") in stuck
    assert (
        pb.QUERY_STATE_CLOSED,
        1,
        "finalisation failed (the server's disk is full); retrying",
    ) in stuck
    final = seen[-1]
    assert final.state == pb.QUERY_STATE_READY
    assert (final.contributors, final.stuck_attempts, final.stuck_reason) == (1, 0, "")


def test_a_query_that_cannot_be_stored_is_refused_as_such(tmp_path: Path) -> None:
    async def go() -> str:
        leader, store = _leader(tmp_path, {"insert_query": 1})
        await leader.start()
        with pytest.raises(Aborted) as refused:
            await leader.SubmitQuery(pb.SubmitQueryRequest(spec=SPEC), Context("analyst/a"))
        # The disk recovered: the next submission is stored.
        status = await leader.SubmitQuery(pb.SubmitQueryRequest(spec=SPEC), Context("analyst/a"))
        assert status.state == pb.QUERY_STATE_OPEN
        await leader.stop()
        await store.store.close()
        return str(refused.value)

    assert asyncio.run(go()) == (
        "StatusCode.UNAVAILABLE: could not store the query (the server's disk is full); "
        "try again later"
    )
