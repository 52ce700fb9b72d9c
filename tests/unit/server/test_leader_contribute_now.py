"""``Intake.contribute_now``: a streamed small contribution without a task of its own.

It must decide exactly as ``Intake.contribute`` does (server/leader/intake.py):
the same refusals, raised before anything is queued; a re-send of a committed
contribution acknowledged at once; a new one acknowledged once committed; and
anything that needs an await first (a query this process has not loaded, a
verifying protocol) left to ``contribute`` (False, nothing done).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pets.errors import ConflictError, InvalidInputError, NotReadyError, UnavailableError
from pets.identity.certificates import Peer, Role
from pets.transport import wire
from pets.v1 import aggregation_pb2 as pb
from tests.unit.server.test_leader_prepare import SlowHelper, _contribution, _leader

H1 = Peer(Role.HOLDER, "h1")


class Outcomes:
    """Collects what ``done`` is called with."""

    def __init__(self) -> None:
        self.got: list[pb.ContributionAck | BaseException] = []
        self.event = asyncio.Event()

    def __call__(self, outcome: pb.ContributionAck | BaseException) -> None:
        self.got.append(outcome)
        self.event.set()

    async def one(self) -> pb.ContributionAck | BaseException:
        await asyncio.wait_for(self.event.wait(), 5.0)
        assert len(self.got) == 1
        return self.got[0]


def test_a_new_contribution_is_acknowledged_once_committed_and_a_resend_at_once(
    tmp_path: Path,
) -> None:
    async def go() -> None:
        helper = SlowHelper(delay=0.05)
        leader, store, qid = await _leader(tmp_path, helper)
        try:
            first = Outcomes()
            assert leader.intake.contribute_now(H1, b"", _contribution(qid), first)
            assert first.got == []  # with the helper, not yet committed
            with pytest.raises(UnavailableError, match="already in progress"):
                leader.intake.contribute_now(H1, b"", _contribution(qid), Outcomes())
            ack = await first.one()
            assert isinstance(ack, pb.ContributionAck)
            assert ack.newly_accepted and ack.contributors == 1 and ack.holder == "h1"
            assert helper.batches == [["h1"]]
            again = Outcomes()
            assert leader.intake.contribute_now(H1, b"", _contribution(qid), again)
            resent = again.got[0]  # decided on the digest alone, synchronously
            assert isinstance(resent, pb.ContributionAck) and not resent.newly_accepted
            with pytest.raises(ConflictError, match="different vector"):
                leader.intake.contribute_now(
                    H1, b"", _contribution(qid, digest=b"e" * 32), Outcomes()
                )
            assert helper.batches == [["h1"]]  # nothing more was sent for checking
        finally:
            await leader.stop()
            await store.close()

    asyncio.run(go())


def test_refusals_are_those_of_contribute(tmp_path: Path) -> None:
    async def go() -> None:
        leader, store, qid = await _leader(tmp_path, SlowHelper())
        try:
            header = pb.ContributionHeader(
                query_id=qid, payload_bytes=16, contribution_digest=b"d" * 32
            )
            wrong_size = wire.decode_contribution_chunk(wire.encode_chunk(header, bytes(16)))
            no_header = wire.decode_contribution_chunk(wire.encode_chunk(None, bytes(8)))
            for chunk, error in (
                (wrong_size, InvalidInputError),
                (no_header, InvalidInputError),
            ):
                with pytest.raises(error):
                    leader.intake.contribute_now(H1, b"", chunk, Outcomes())
                with pytest.raises(error):
                    await leader.intake.contribute(H1, b"", chunk, None)
            assert "h1" not in leader.queries[qid].in_flight
            await leader.close(qid, "closed by test")
            with pytest.raises(NotReadyError):
                leader.intake.contribute_now(H1, b"", _contribution(qid), Outcomes())
            with pytest.raises(NotReadyError):
                await leader.intake.contribute(H1, b"", _contribution(qid), None)
        finally:
            await leader.stop()
            await store.close()

    asyncio.run(go())


def test_a_query_not_in_memory_is_left_to_contribute(tmp_path: Path) -> None:
    async def go() -> None:
        leader, store, _ = await _leader(tmp_path, SlowHelper())
        try:
            done = Outcomes()
            unknown = _contribution("q-00000000000000ff")
            assert not leader.intake.contribute_now(H1, b"", unknown, done)
            assert done.got == []
        finally:
            await leader.stop()
            await store.close()

    asyncio.run(go())
