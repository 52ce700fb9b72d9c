"""A server's noise drawn at admission (pets.server.privacy.ServerPrivacy), on a real SQLite store.

The draw starts in ``admit`` and ``prepare`` takes that very draw; two
admissions of equal plans never share one (reused noise would cancel out in a
difference of releases); an admission that fails drops its draw with its
noise object; and a release adds exactly the noise that was drawn.
"""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import numpy as np

from pets.dp.policy import DpPolicy
from pets.protocols import lookup
from pets.query import Query, Schema
from pets.query import compile as compile_query
from pets.server.privacy import ServerPrivacy
from pets.server.store import SqliteStore
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
