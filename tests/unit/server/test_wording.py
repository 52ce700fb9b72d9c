"""Refusals read as English and name what was refused (issue 15, item 11)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pets.errors import PermissionDeniedError
from pets.identity.certificates import Peer, Role
from pets.server.rpc import require
from pets.v1 import aggregation_pb2 as pb
from tests.unit.server.servicer_fakes import Aborted, Context
from tests.unit.server.test_leader_prepare import _new_leader


def test_the_article_fits_the_role() -> None:
    with pytest.raises(PermissionDeniedError, match=r"only an analyst may$"):
        require(Peer(Role.HOLDER, "h1"), [Role.ANALYST], "submit queries")
    with pytest.raises(PermissionDeniedError, match=r"only a holder may$"):
        require(Peer(Role.ANALYST, "a"), [Role.HOLDER], "contribute")
    with pytest.raises(PermissionDeniedError, match=r"only a leader or an analyst may$"):
        require(Peer(Role.HOLDER, "h1"), [Role.LEADER, Role.ANALYST], "do this")


def test_a_holder_closing_a_query_is_told_it_may_not_close_queries(tmp_path: Path) -> None:
    async def go() -> list[str]:
        leader, store = _new_leader(tmp_path, [])
        await leader.start()
        ref = pb.QueryRef(query_id="q-0000000000000001")
        holder = Context("holder/h1")
        out = []
        for call in (leader.CloseQuery, leader.GetQueryStatus):
            try:
                await call(ref, holder)
            except Aborted as exc:
                out.append(str(exc))
        await leader.stop()
        await store.close()
        return out

    close, status = asyncio.run(go())
    assert "holder 'h1' may not close queries; only an analyst may" in close
    assert "may not read query status; only an analyst may" in status
