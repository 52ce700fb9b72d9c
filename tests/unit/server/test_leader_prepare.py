"""The leader commits only contributions every helper gave a verdict on and accepted."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pets.errors import InvalidProofError, NotReadyError, UnavailableError
from pets.protocols import lookup
from pets.query import Schema
from pets.server.config import Limits, ServerConfig
from pets.server.leader import Leader
from pets.server.leader.state import Pending
from pets.server.store import SqliteStore
from pets.v1 import aggregation_pb2 as pb
from tests.unit.server.servicer_fakes import Aborted, Context

QID = "q-00000000000000cc"


class FakeHelper:
    """A helper link that answers Prepare with a canned response (or error)."""

    def __init__(self, name: str, answer: pb.PrepareResponse | Exception) -> None:
        self.name = name
        self.answer = answer
        self.calls: list[list[str]] = []

    async def prepare(
        self, query_id: str, contributions: list[pb.SealedContribution], timeout: float
    ) -> pb.PrepareResponse:
        self.calls.append([c.holder for c in contributions])
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    async def close(self) -> None:
        pass


SCHEMA = Schema.from_toml('[datasets.v]\nkind = "vector"\nlength = 1\nlo = 0\nhi = 1\n')


def _new_leader(tmp_path: Path, helpers: list) -> tuple[Leader, SqliteStore]:  # type: ignore[type-arg]
    """A real leader (insecure, SQLite in ``tmp_path``) with fake helper links."""
    config = ServerConfig(
        role="leader",
        name="leader",
        listen="127.0.0.1:0",
        state_dir=tmp_path,
        min_holders=1,
        tls=None,
        limits=Limits(),
    )
    store = SqliteStore(config.database)
    return Leader(config, store, SCHEMA, helpers), store


def _verdicts(tmp_path: Path, answers: list[pb.PrepareResponse | Exception]) -> dict:
    async def go() -> dict:
        helpers = [FakeHelper(f"helper-{i + 1}", a) for i, a in enumerate(answers)]
        leader, store = _new_leader(tmp_path, helpers)
        group = []
        for holder in ("h2", "h1", "h3"):  # sent sorted, whatever the arrival order
            item = Pending(QID, holder, b"d" * 32, parsed=None, seeds=[], certificate=b"")
            item.record = pb.SealedContribution(holder=holder)
            group.append(item)
        errors = await leader.batching.prepare_round.prepare(
            lookup(pb.PROTOCOL_ADDITIVE), QID, group
        )
        await store.close()
        assert all(h.calls == [["h1", "h2", "h3"]] for h in helpers)
        return {holder: type(e).__name__ + ": " + str(e) for holder, e in errors.items()}

    return asyncio.run(go())


def test_all_accepted_commits_all(tmp_path: Path) -> None:
    ok = pb.PrepareResponse(query_id=QID, accepted=3)
    assert _verdicts(tmp_path, [ok, ok]) == {}


def test_a_refusal_by_any_helper_refuses_that_holder(tmp_path: Path) -> None:
    ok = pb.PrepareResponse(query_id=QID, accepted=3)
    no = pb.PrepareResponse(
        query_id=QID, accepted=2, refused=[pb.Refusal(holder="h2", reason="does not open")]
    )
    errors = _verdicts(tmp_path, [ok, no])
    assert list(errors) == ["h2"]
    assert errors["h2"].startswith(InvalidProofError.__name__)
    assert "helper-2 refused the contribution: does not open" in errors["h2"]


def test_an_answer_that_does_not_add_up_commits_nothing(tmp_path: Path) -> None:
    """E.g. a helper of another version whose reply has no verdicts: not acceptance."""
    silent = pb.PrepareResponse(query_id=QID)
    errors = _verdicts(tmp_path, [silent])
    assert set(errors) == {"h1", "h2", "h3"}
    assert all(e.startswith(UnavailableError.__name__) for e in errors.values())
    other_query = pb.PrepareResponse(query_id="q-00000000000000dd", accepted=3)
    assert set(_verdicts(tmp_path, [other_query])) == {"h1", "h2", "h3"}


def test_an_unreachable_or_closing_helper(tmp_path: Path) -> None:
    down = _verdicts(tmp_path, [UnavailableError("helper-1 is down")])
    assert all(
        e.startswith("UnavailableError: helper helper-1 could not check") for e in down.values()
    )
    closing = _verdicts(tmp_path, [NotReadyError(f"query {QID} is no longer accepting")])
    assert all(e.startswith("NotReadyError") for e in closing.values())


# --------------------------------------------------------------------------- the loops


class SlowHelper:
    """Accepts every contribution after ``delay`` seconds, or raises ``error``."""

    name = "helper-1"

    def __init__(self, delay: float = 0.0, error: Exception | None = None) -> None:
        self.delay = delay
        self.error = error
        self.batches: list[list[str]] = []

    async def register(self, request: pb.RegisterQueryRequest) -> pb.HelperKey:
        return pb.HelperKey(helper=self.name, seal_public_key=bytes(32))

    async def prepare(
        self, query_id: str, contributions: list[pb.SealedContribution], timeout: float
    ) -> pb.PrepareResponse:
        self.batches.append([c.holder for c in contributions])
        await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return pb.PrepareResponse(query_id=query_id, accepted=len(contributions))

    async def close(self) -> None:
        pass


async def _leader(tmp_path: Path, helper: SlowHelper) -> tuple[Leader, SqliteStore, str]:
    leader, store = _new_leader(tmp_path, [helper])
    await leader.start()
    spec = pb.QuerySpec(
        query_json='{"aggregate":"vector_sum","dataset":"v"}',
        protocol=pb.PROTOCOL_ADDITIVE,
        min_holders=1,
    )
    status = await leader.SubmitQuery(pb.SubmitQueryRequest(spec=spec), Context("analyst/a"))
    return leader, store, status.query_id


def _contribution(query_id: str, digest: bytes = b"d" * 32) -> object:
    from pets import seal
    from pets.transport import wire

    header = pb.ContributionHeader(
        query_id=query_id,
        payload_bytes=8,
        contribution_digest=digest,
        sealed_seeds=[pb.SealedSeed(helper="helper-1", sealed=bytes(seal.SEALED_BYTES))],
    )
    return wire.decode_contribution_chunk(wire.encode_chunk(header, bytes(8)))


async def _outcome(call: object) -> str:
    try:
        ack = await call  # type: ignore[misc]
    except Aborted as exc:
        return str(exc)
    return f"ok {ack.contributors}"


def test_a_close_does_not_overtake_contributions_being_checked(tmp_path: Path) -> None:
    async def go() -> tuple[list[str], tuple[str, ...]]:
        helper = SlowHelper(delay=0.3)
        leader, store, qid = await _leader(tmp_path, helper)
        calls = [
            asyncio.ensure_future(leader.ContributeOne(_contribution(qid), Context(f"holder/{h}")))
            for h in ("h1", "h2")
        ]
        await asyncio.sleep(0.05)  # both are with the (slow) helper now
        await leader.close(qid, "closed by test")
        outcomes = [await _outcome(c) for c in calls]
        contributors = leader.queries[qid].record.contributors
        await leader.stop()
        await store.close()
        return outcomes, contributors

    outcomes, contributors = asyncio.run(go())
    assert all(o.startswith("ok") for o in outcomes), outcomes
    assert contributors == ("h1", "h2")  # both committed before the close


def test_a_hung_helper_holds_up_only_the_additive_contributions_it_checks(
    tmp_path: Path,
) -> None:
    """While the helper sits on an additive contribution, a Paillier query (no
    helper involved) still takes a contribution and closes: the helpers' check
    has its own loop, ahead of the commit loop."""
    import hashlib

    import numpy as np

    from pets.protocols.paillier import encrypt_contribution, prepare_key
    from pets.query import Query
    from pets.query import compile as compile_query

    async def go() -> tuple[bool, str, str]:
        helper = SlowHelper(delay=5.0)
        leader, store, qid = await _leader(tmp_path, helper)
        stuck = asyncio.ensure_future(
            leader.ContributeOne(_contribution(qid), Context("holder/h1"))
        )
        await asyncio.sleep(0.05)  # with the (hung) helper now
        _, public = await asyncio.to_thread(prepare_key, None, 2048)
        spec = pb.QuerySpec(
            query_json='{"aggregate":"vector_sum","dataset":"v"}',
            protocol=pb.PROTOCOL_PAILLIER,
            min_holders=1,
            max_holders=4,
            paillier_public_key=public,
        )
        status = await leader.SubmitQuery(pb.SubmitQueryRequest(spec=spec), Context("analyst/a"))
        ann = leader.announcement(leader.queries[status.query_id])
        plan = compile_query(Query.from_json(spec.query_json), SCHEMA)
        payload = encrypt_contribution(ann, plan, np.array([1], dtype=np.int64))
        header = pb.ContributionHeader(
            query_id=status.query_id,
            payload_bytes=len(payload),
            contribution_digest=hashlib.sha256(payload).digest(),
        )
        from pets.transport import wire

        message = wire.decode_contribution_chunk(wire.encode_chunk(header, payload))
        ack = await asyncio.wait_for(leader.ContributeOne(message, Context("holder/h2")), 2.0)
        await asyncio.wait_for(leader.close(status.query_id, "closed by test"), 2.0)
        state = pb.QueryState.Name(leader.queries[status.query_id].record.state)
        waiting = not stuck.done()
        stuck.cancel()
        await leader.stop()
        await store.close()
        return waiting, f"ok {ack.contributors}", state

    waiting, ack, state = asyncio.run(go())
    assert waiting  # the additive contribution is still with the helper
    assert ack == "ok 1"
    assert state in ("QUERY_STATE_CLOSED", "QUERY_STATE_READY")


def test_a_failing_check_fails_only_its_contributions_and_the_close_still_happens(
    tmp_path: Path,
) -> None:
    async def go() -> tuple[str, str]:
        helper = SlowHelper(delay=0.1, error=RuntimeError("boom"))
        leader, store, qid = await _leader(tmp_path, helper)
        call = asyncio.ensure_future(leader.ContributeOne(_contribution(qid), Context("holder/h1")))
        await asyncio.sleep(0.02)
        await asyncio.wait_for(leader.close(qid, "closed by test"), 5.0)
        outcome = await _outcome(call)
        state = pb.QueryState.Name(leader.queries[qid].record.state)
        await leader.stop()
        await store.close()
        return outcome, state

    outcome, state = asyncio.run(go())
    assert "UNAVAILABLE" in outcome and "could not check" in outcome
    assert state in ("QUERY_STATE_CLOSED", "QUERY_STATE_FAILED")  # closed, nothing counted


def test_stop_answers_contributions_still_queued(tmp_path: Path) -> None:
    async def go() -> str:
        helper = SlowHelper(delay=5.0)
        leader, store, qid = await _leader(tmp_path, helper)
        first = asyncio.ensure_future(
            leader.ContributeOne(_contribution(qid), Context("holder/h1"))
        )
        await asyncio.sleep(0.05)  # h1 is with the helper: h2 waits in the queue
        second = asyncio.ensure_future(
            leader.ContributeOne(_contribution(qid), Context("holder/h2"))
        )
        await asyncio.sleep(0.05)
        await leader.stop()
        await store.close()
        first.cancel()
        return await asyncio.wait_for(_outcome(second), 2.0)

    assert "shutting down" in asyncio.run(go())
