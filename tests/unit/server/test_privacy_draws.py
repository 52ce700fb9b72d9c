"""A server's noise drawn at admission (pets.server.privacy.ServerPrivacy), on a real SQLite store.

The draw starts in ``admit`` and ``prepare`` takes that very draw; two
admissions of equal plans never share one (reused noise would cancel out in a
difference of releases); an admission that fails drops its draw with its
noise object; and a release adds exactly the noise that was drawn.
"""

from __future__ import annotations

import asyncio
import gc
import mmap
from pathlib import Path

import numpy as np

from pets.dp.policy import DpPolicy
from pets.protocols import lookup
from pets.query import Query, Schema
from pets.query import compile as compile_query
from pets.server.privacy import ServerPrivacy
from pets.server.store import QueryRecord, SqliteStore
from pets.v1 import aggregation_pb2 as pb

SCHEMA = Schema.from_toml('[datasets.v]\nkind = "vector"\nlength = 1000\nlo = 0\nhi = 10\n')
PLAN = compile_query(Query.parse("vector_sum() from v dp epsilon 1"), SCHEMA)
ADDITIVE = lookup(pb.PROTOCOL_ADDITIVE)


def test_prepare_takes_the_draw_started_at_admission(tmp_path: Path) -> None:
    async def run() -> None:
        store = SqliteStore(tmp_path / "pets.sqlite")
        try:
            privacy = ServerPrivacy(DpPolicy(), store, "leader")
            first = await privacy.admit("alice", PLAN, ADDITIVE)
            second = await privacy.admit("alice", PLAN, ADDITIVE)
            assert first is not None and second is not None and first == second
            assert len(privacy._pending) == 2  # equal plans, two draws
            started = privacy._pending[id(first)]
            await privacy.prepare("q-1", first)
            assert privacy._drawn["q-1"][1] is started and id(first) not in privacy._pending
            await privacy.prepare("q-2", second)
            one, two = (privacy._drawn[q][1].result() for q in ("q-1", "q-2"))
            assert one.shape == two.shape == (1000,) and not np.array_equal(one, two)
            # Each draw is held in its own anonymous mapping, outside malloc's arenas.
            assert isinstance(one.base, memoryview) and isinstance(one.base.obj, mmap.mmap)
            assert one.flags.writeable and one.any()
            # An admission that fails after admit() drops its noise object: once the draw
            # (which holds the object while it runs) is done, the draw goes with it.
            dropped = await privacy.admit("alice", PLAN, ADDITIVE)
            assert dropped is not None and id(dropped) in privacy._pending
            key = id(dropped)
            await asyncio.wait([privacy._pending[key]])
            del dropped
            gc.collect()
            assert key not in privacy._pending
        finally:
            await store.close()

    asyncio.run(run())


QID = "q-0123456789abcdef"  # the store's query id format


class _GatedStore(SqliteStore):
    """A real SQLite store whose release transaction waits for a gate (a slow disk)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def finish_query_spending(self, record, aggregate, analyst, dataset, spend):  # type: ignore[no-untyped-def, override]
        self.entered.set()
        await self.gate.wait()
        await super().finish_query_spending(record, aggregate, analyst, dataset, spend)


def test_a_release_cancelled_while_storing_stores_the_whole_noisy_share(tmp_path: Path) -> None:
    """The additive noisy share is a view of the noise vector until it is stored: a
    release whose caller is cancelled mid-store (a lost lease, a shutdown) must not zero
    the noise under the store's feet; it is zeroed once the store is done."""

    async def run() -> None:
        store = _GatedStore(tmp_path / "pets.sqlite")
        try:
            privacy = ServerPrivacy(DpPolicy(), store, "leader")
            noise = await privacy.admit("alice", PLAN, ADDITIVE)
            assert noise is not None
            await privacy.prepare(QID, noise)
            z = privacy._drawn[QID][1].result()
            drawn = z.copy()
            spec = pb.QuerySpec(protocol=pb.PROTOCOL_ADDITIVE, query_json=PLAN.query.to_json())
            record = QueryRecord(
                id=QID,
                analyst="alice",
                spec=spec.SerializeToString(),
                state=pb.QUERY_STATE_OPEN,
                created=0.0,
                deadline=1e12,
                min_holders=1,
                vector_length=1000,
            )
            await store.insert_query(record)
            share = np.arange(1000, dtype=np.uint64)
            ready = record.with_state(pb.QUERY_STATE_READY)
            release = asyncio.create_task(
                privacy.release(ready, ADDITIVE, spec, PLAN, noise, share.tobytes())
            )
            await store.entered.wait()
            release.cancel()
            await asyncio.sleep(0.05)
            expected = share + drawn.view(np.uint64)  # the ring Z_2^64: wraps
            # The noisy share, added in place into the noise, is not zeroed mid-store.
            assert np.array_equal(z.view(np.uint64), expected) and drawn.any()
            store.gate.set()
            for _ in range(200):
                if not z.any():
                    break
                await asyncio.sleep(0.01)
            assert not z.any()  # zeroed once the store was done
            stored = await store.get_aggregate(QID)
            assert stored is not None
            assert np.array_equal(np.frombuffer(stored, dtype=np.uint64), expected)
        finally:
            await store.close()

    asyncio.run(run())
