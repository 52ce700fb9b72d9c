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
