"""Each server applies its protocol's release hook (where differential-privacy noise
will go) exactly once, at finalisation, and stores and serves what it returns."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import numpy as np
import pytest

from pets.protocols import by_name
from pets.protocols.additive import AdditiveProtocol
from pets.protocols.paillier import PaillierProtocol, encrypt_contribution, prepare_key
from pets.query import Query
from pets.query import compile as compile_query
from pets.server.query_state import READY
from pets.transport import wire
from pets.v1 import aggregation_pb2 as pb
from tests.unit.server.servicer_fakes import Context
from tests.unit.server.test_helper_finalize import (
    QID,
    _finalize_messages,
    _helper,
    _sealed_items,
    _stream,
)
from tests.unit.server.test_leader_prepare import SCHEMA, _new_leader


class Released:
    """A release hook that records its calls and marks the share it releases."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, share: bytes | memoryview) -> bytes:
        self.calls.append(len(share))
        return b"released:" + bytes(share)


def test_a_helper_stores_what_the_hook_released(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = Released()
    monkeypatch.setattr(AdditiveProtocol, "release_share", lambda _, share: hook(share))

    async def go() -> bytes | None:
        helper, store, key = await _helper(tmp_path)
        items, _ = _sealed_items(key, 3)
        leader = Context("leader/leader")
        for _ in range(2):  # a retried Finalize does not release twice
            await helper.Finalize(_stream(_finalize_messages(items)), leader)
        data = await store.get_aggregate(QID)
        await helper.stop()
        await store.close()
        return data

    data = asyncio.run(go())
    assert hook.calls == [1_000_000 * 8]
    assert data is not None and data.startswith(b"released:")


def test_the_leader_stores_what_the_hook_released(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = Released()
    monkeypatch.setattr(PaillierProtocol, "release_share", lambda _, share: hook(share))

    async def go() -> tuple[int, bytes | None, bytes]:
        leader, store = _new_leader(tmp_path, [])
        await leader.start()
        _, public = await asyncio.to_thread(prepare_key, None, 2048)
        spec = pb.QuerySpec(
            query_json='{"aggregate":"vector_sum","dataset":"v"}',
            protocol=pb.PROTOCOL_PAILLIER,
            min_holders=1,
            max_holders=4,
            paillier_public_key=public,
        )
        status = await leader.SubmitQuery(pb.SubmitQueryRequest(spec=spec), Context("analyst/a"))
        qid = status.query_id
        rt = leader.queries[qid]
        plan = compile_query(Query.from_json(spec.query_json), SCHEMA)
        payload = encrypt_contribution(leader.announcement(rt), plan, np.array([1]))
        header = pb.ContributionHeader(
            query_id=qid,
            payload_bytes=len(payload),
            contribution_digest=hashlib.sha256(payload).digest(),
        )
        message = wire.decode_contribution_chunk(wire.encode_chunk(header, payload))
        await leader.ContributeOne(message, Context("holder/h1"))
        running = bytes(rt.aggregate.to_bytes())  # type: ignore[union-attr]
        await leader.close(qid, "closed by test")
        async with rt.changed:
            await asyncio.wait_for(rt.changed.wait_for(lambda: rt.record.state == READY), 30)
        data = await store.get_aggregate(qid)
        await leader.stop()
        await store.close()
        return rt.record.state, data, running

    state, data, running = asyncio.run(go())
    assert state == READY
    assert hook.calls == [len(running)]
    assert data == b"released:" + running
    assert by_name("paillier").uses_helpers is False
