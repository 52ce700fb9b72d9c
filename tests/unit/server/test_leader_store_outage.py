"""A leader whose store goes away mid-query (a database restart, issue 14): a
contribution it could not record is not counted, even when its attempts to
reload the query from the store fail too and the next commit succeeds.

The store is the real SQLite store behind a switch that makes every call raise
:class:`UnavailableError`, as :class:`pets.server.store.postgres.PostgresStore`
does while its database is unreachable.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np

from pets import seal
from pets.errors import UnavailableError
from pets.server.config import Limits, ServerConfig
from pets.server.leader import Leader
from pets.server.store import SqliteStore
from pets.transport import wire
from pets.v1 import aggregation_pb2 as pb
from tests.unit.server.servicer_fakes import Aborted, Context
from tests.unit.server.test_leader_prepare import SCHEMA, SlowHelper


class SwitchedStore:
    """Delegates to a real store, or raises UnavailableError while ``down``."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.down = False

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.store, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.down and name != "close":
                raise UnavailableError("the state database is unavailable (test)")
            return await method(*args, **kwargs)

        return call


def _contribution(query_id: str, value: int, digest: bytes) -> object:
    header = pb.ContributionHeader(
        query_id=query_id,
        payload_bytes=8,
        contribution_digest=digest,
        sealed_seeds=[pb.SealedSeed(helper="helper-1", sealed=bytes(seal.SEALED_BYTES))],
    )
    payload = np.array([value], dtype="<u8").tobytes()
    return wire.decode_contribution_chunk(wire.encode_chunk(header, payload))


async def _outcome(call: Any) -> str:
    try:
        ack = await call
    except Aborted as exc:
        return str(exc)
    return f"ok {ack.contributors}"


def test_an_unrecorded_contribution_is_not_counted_after_the_store_returns(
    tmp_path: Path,
) -> None:
    async def go() -> tuple[list[str], int]:
        config = ServerConfig(
            role="leader",
            name="leader",
            listen="127.0.0.1:0",
            state_dir=tmp_path,
            min_holders=1,
            tls=None,
            limits=Limits(),
        )
        real = SqliteStore(config.database)
        store = SwitchedStore(real)
        leader = Leader(config, store, SCHEMA, [SlowHelper()])  # type: ignore[arg-type]
        await leader.start()
        spec = pb.QuerySpec(
            query_json='{"aggregate":"vector_sum","dataset":"v"}',
            protocol=pb.PROTOCOL_ADDITIVE,
            min_holders=1,
        )
        status = await leader.SubmitQuery(pb.SubmitQueryRequest(spec=spec), Context("analyst/a"))
        qid = status.query_id
        outcomes = []
        store.down = True  # the commit fails, and so does every reload
        outcomes.append(
            await _outcome(
                leader.ContributeOne(_contribution(qid, 1, b"1" * 32), Context("holder/h1"))
            )
        )
        store.down = False  # back: the next commit is another holder's
        outcomes.append(
            await _outcome(
                leader.ContributeOne(_contribution(qid, 10, b"2" * 32), Context("holder/h2"))
            )
        )
        after_h2 = await real.get_aggregate(qid)
        outcomes.append(  # h1's retry
            await _outcome(
                leader.ContributeOne(_contribution(qid, 1, b"1" * 32), Context("holder/h1"))
            )
        )
        final = await real.get_aggregate(qid)
        await leader.stop()
        await real.close()
        assert after_h2 is not None and final is not None
        assert int(np.frombuffer(after_h2, "<u8")[0]) == 10  # h2 alone: h1 was not recorded
        return outcomes, int(np.frombuffer(final, "<u8")[0])

    outcomes, total = asyncio.run(go())
    assert outcomes[0].startswith("StatusCode.UNAVAILABLE"), outcomes
    assert outcomes[1:] == ["ok 1", "ok 2"], outcomes
    assert total == 11  # each holder counted once
