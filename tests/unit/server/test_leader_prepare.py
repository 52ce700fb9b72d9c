"""The leader commits only contributions every helper gave a verdict on and accepted."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pets.errors import InvalidProofError, NotReadyError, UnavailableError
from pets.query import Schema
from pets.server.config import Limits, ServerConfig
from pets.server.leader import Leader, _Pending
from pets.server.storage import AsyncStore
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


def _verdicts(tmp_path: Path, answers: list[pb.PrepareResponse | Exception]) -> dict:
    async def go() -> dict:
        config = ServerConfig(
            role="leader",
            name="leader",
            listen="127.0.0.1:0",
            state_dir=tmp_path,
            min_holders=1,
            tls=None,
            limits=Limits(),
        )
        store = AsyncStore(config.database)
        helpers = [FakeHelper(f"helper-{i + 1}", a) for i, a in enumerate(answers)]
        schema = Schema.from_toml('[datasets.v]\nkind = "vector"\nlength = 1\nlo = 0\nhi = 1\n')
        leader = Leader(config, store, schema, helpers)  # type: ignore[arg-type]
        group = []
        for holder in ("h2", "h1", "h3"):  # sent sorted, whatever the arrival order
            item = _Pending(QID, holder, b"d" * 32, parsed=None, seeds=[], certificate=b"")
            item.record = pb.SealedContribution(holder=holder)
            group.append(item)
        errors = await leader._prepare(QID, group)
        store.close()
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
    assert "helper-2 refused the seed: does not open" in errors["h2"]


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


async def _leader(tmp_path: Path, helper: SlowHelper) -> tuple[Leader, AsyncStore, str]:
    config = ServerConfig(
        role="leader",
        name="leader",
        listen="127.0.0.1:0",
        state_dir=tmp_path,
        min_holders=1,
        tls=None,
        limits=Limits(),
    )
    store = AsyncStore(config.database)
    schema = Schema.from_toml('[datasets.v]\nkind = "vector"\nlength = 1\nlo = 0\nhi = 1\n')
    leader = Leader(config, store, schema, [helper])  # type: ignore[list-item]
    await leader.start()
    spec = pb.QuerySpec(query_json='{"aggregate":"vector_sum","dataset":"v"}', min_holders=1)
    status = await leader.SubmitQuery(pb.SubmitQueryRequest(spec=spec), Context("analyst/a"))
    return leader, store, status.query_id


def _contribution(query_id: str, digest: bytes = b"d" * 32) -> object:
    from pets import seal, wire

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
        store.close()
        return outcomes, contributors

    outcomes, contributors = asyncio.run(go())
    assert all(o.startswith("ok") for o in outcomes), outcomes
    assert contributors == ("h1", "h2")  # both committed before the close


def test_paillier_and_closes_of_other_queries_need_no_helper(tmp_path: Path) -> None:
    """A helper that hangs holds up only the additive contributions it must check."""

    async def go() -> tuple[bool, str]:
        helper = SlowHelper(delay=5.0)
        leader, store, qid = await _leader(tmp_path, helper)
        stuck = asyncio.ensure_future(
            leader.ContributeOne(_contribution(qid), Context("holder/h1"))
        )
        await asyncio.sleep(0.05)
        # The leader keeps serving: a status call answers at once.
        status = await asyncio.wait_for(
            leader.GetQueryStatus(pb.QueryRef(query_id=qid), Context("analyst/a")), 1.0
        )
        waiting = not stuck.done()
        stuck.cancel()
        await leader.stop()
        store.close()
        return waiting, pb.QueryState.Name(status.state)

    waiting, state = asyncio.run(go())
    assert waiting and state == "QUERY_STATE_OPEN"


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
        store.close()
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
        store.close()
        first.cancel()
        return await asyncio.wait_for(_outcome(second), 2.0)

    assert "shutting down" in asyncio.run(go())
