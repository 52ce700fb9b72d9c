"""The helper's finalisation survives cancelled and retried Finalize calls.

These tests drive the real ``Helper`` servicer and its SQLite store in this
process, with the ``--insecure`` identity header standing in for a client
certificate (the integration tests cover the same flows over mutual TLS).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import numpy as np

from pets import sharing, wire
from pets.server.config import Limits, ServerConfig
from pets.server.helper import Helper
from pets.server.storage import AsyncStore
from pets.v1 import aggregation_pb2 as pb

LENGTH = 1_000_000
QID = "q-00000000000000aa"


class Aborted(Exception):
    pass


class Context:
    """The two things the servicers use of a grpc.aio.ServicerContext."""

    def __init__(self, identity: str) -> None:
        self.identity = identity

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return [(wire.INSECURE_IDENTITY_HEADER, self.identity)]

    async def abort(self, code: object, message: str) -> None:
        raise Aborted(f"{code}: {message}")


async def _helper_with_seeds(tmp_path: Path, holders: int) -> tuple[Helper, AsyncStore, dict]:
    config = ServerConfig(
        role="helper",
        name="helper-1",
        listen="127.0.0.1:0",
        state_dir=tmp_path,
        min_holders=1,
        tls=None,
        limits=Limits(max_vector_length=10**7),
    )
    store = AsyncStore(config.database)
    helper = Helper(config, store)
    await helper.start()
    leader = Context("leader/leader")
    await helper.RegisterQuery(
        pb.RegisterQueryRequest(
            query_id=QID,
            spec=pb.QuerySpec(query_json="{}"),
            analyst="alice",
            vector_length=LENGTH,
            deadline_unix=time.time() + 3600,
            min_holders=1,
        ),
        leader,
    )
    seeds = {}
    for i in range(holders):
        name = f"h{i:03d}"
        seeds[name] = os.urandom(32)
        await helper.SubmitSeed(
            pb.SeedSubmission(query_id=QID, seed=seeds[name]), Context(f"holder/{name}")
        )
    return helper, store, seeds


def test_cancelled_finalize_then_retries_give_the_right_share(tmp_path: Path) -> None:
    async def go() -> tuple[bool, int]:
        helper, store, seeds = await _helper_with_seeds(tmp_path, 40)
        q = helper.queries[QID]
        for _ in range(200):  # let the expander fold what arrived, then forget it
            if len(q.included) == len(seeds):
                break
            await asyncio.sleep(0.02)
        async with q.sum_lock:
            q.running, q.included = None, set()  # as after a restart: all must be expanded
        request = pb.FinalizeRequest(query_id=QID, contributors=sorted(seeds))
        leader = Context("leader/leader")
        first = asyncio.ensure_future(helper.Finalize(request, leader))
        await asyncio.sleep(0.01)
        first.cancel()  # the leader's deadline passed: gRPC cancels the handler
        for _ in range(50):  # the leader retries with short deadlines
            attempt = asyncio.ensure_future(helper.Finalize(request, leader))
            try:
                await asyncio.wait_for(asyncio.shield(attempt), 0.05)
                break
            except TimeoutError:
                attempt.cancel()
        else:
            await helper.Finalize(request, leader)
        got = wire.vector_from_bytes(store.store.get_aggregate(QID), LENGTH)
        want = sharing.aggregate_seeds(seeds.values(), LENGTH)
        state = helper.queries[QID].record.state
        await helper.stop()
        store.close()
        return bool(np.array_equal(got, want)), state

    correct, state = asyncio.run(go())
    assert state == pb.QUERY_STATE_READY
    assert correct


def test_late_seeds_do_not_leave_a_running_sum_behind(tmp_path: Path) -> None:
    async def go() -> tuple[bool, object]:
        helper, store, seeds = await _helper_with_seeds(tmp_path, 3)
        leader = Context("leader/leader")
        request = pb.FinalizeRequest(query_id=QID, contributors=sorted(seeds))
        finalizing = asyncio.ensure_future(helper.Finalize(request, leader))
        late = [
            asyncio.ensure_future(
                helper.SubmitSeed(
                    pb.SeedSubmission(query_id=QID, seed=os.urandom(32)), Context(f"holder/late{i}")
                )
            )
            for i in range(3)
        ]
        await finalizing
        await asyncio.gather(*late, return_exceptions=True)
        await asyncio.sleep(0.2)  # let the expander run
        q = helper.queries[QID]
        ready = q.record.state == pb.QUERY_STATE_READY
        running = q.running
        await helper.stop()
        store.close()
        return ready, running

    ready, running = asyncio.run(go())
    assert ready
    assert running is None
