"""The node's journal: decisions survive a restart, the answer limit counts per analyst
and fingerprint within its window, and nothing but ids, reasons and times is kept."""

from __future__ import annotations

import json
from pathlib import Path

from pets.client.journal import ANSWERED, ANSWERING, REFUSED, Journal

FP = bytes(range(32))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_answers_count_per_analyst_and_fingerprint_within_the_window(tmp_path: Path) -> None:
    clock = Clock()
    journal = Journal(tmp_path, clock=clock)
    journal.record("q1", ANSWERED, analyst="alice", fingerprint=FP, query="sum(cost)")
    journal.record("q2", REFUSED, analyst="alice", fingerprint=FP, reason="small group")
    journal.record("q3", ANSWERING, analyst="bob", fingerprint=FP)
    assert journal.answers("alice", FP, 3600, other_than="q9") == 1  # refusals do not count
    assert journal.answers("bob", FP, 3600, other_than="q9") == 1  # in flight counts
    assert journal.answers("bob", FP, 3600, other_than="q3") == 0  # but not itself
    assert journal.answers("alice", b"\x00" * 32, 3600, other_than="q9") == 0
    clock.now += 3601
    assert journal.answers("alice", FP, 3600, other_than="q9") == 0  # the window passed


def test_decisions_survive_a_restart_and_an_unfinished_answer_is_retried(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.record("q1", ANSWERED, analyst="alice", fingerprint=FP)
    journal.record("q2", ANSWERING, analyst="alice", fingerprint=FP)
    journal.close()
    again = Journal(tmp_path)
    assert again.decided("q1")
    assert not again.decided("q2")  # crashed mid-answer: tried again (same seeds)
    assert again.answers("alice", FP, 60, other_than="q3") == 2
    again.forget("q2")
    again.forget("q1")  # a final decision is never forgotten
    assert [e.query_id for e in again.history()] == ["q1"]


def test_history_has_outcome_reason_and_time_and_the_old_file_is_imported(
    tmp_path: Path,
) -> None:
    (tmp_path / "answered.json").write_text(json.dumps(["q-old"]))
    journal = Journal(tmp_path)
    journal.record("q1", REFUSED, analyst="alice", fingerprint=FP, query="count()", reason="x")
    entries = {e.query_id: e for e in journal.history()}
    assert journal.decided("q-old") and not (tmp_path / "answered.json").exists()
    obj = entries["q1"].to_json_obj()
    assert obj["outcome"] == "refused" and obj["reason"] == "x" and obj["analyst"] == "alice"
    assert str(obj["at"]).endswith("Z")
    assert set(obj) == {"query_id", "analyst", "query", "outcome", "reason", "at"}


def test_a_spec_id_is_answered_for_one_query_only_across_restarts(tmp_path: Path) -> None:
    """Issue 15, item 15: a signed Paillier spec replayed under another query id is
    refused, also after a restart; spent ids are pruned once their not_after passed."""
    clock = Clock()
    spec_id = b"\x07" * 16
    journal = Journal(tmp_path, clock=clock)
    assert journal.claim_spec(spec_id, "q1", not_after=clock.now + 100) is None
    assert journal.claim_spec(spec_id, "q1", not_after=clock.now + 100) is None  # same query
    assert journal.claim_spec(spec_id, "q2", not_after=clock.now + 100) == "q1"
    journal.close()
    again = Journal(tmp_path, clock=clock)
    assert again.claim_spec(spec_id, "q2", not_after=clock.now + 100) == "q1"
    clock.now += 101  # expired: verify_spec refuses it now, so the id may go
    assert again.claim_spec(b"\x08" * 16, "q3", not_after=clock.now + 100) is None
    (count,) = again._db.execute("SELECT COUNT(*) FROM spec_ids").fetchone()
    assert count == 1


def test_the_journal_and_its_wal_are_private_to_the_node(tmp_path: Path) -> None:
    """node.sqlite is 0600 like the servers' stores, also when an older version made it 0644."""
    older = tmp_path / "older"
    older.mkdir()
    (older / "node.sqlite").touch(mode=0o644)
    (older / "node.sqlite").chmod(0o644)
    for state in (tmp_path / "fresh", older):
        journal = Journal(state)
        journal.record("q1", REFUSED, analyst="a", fingerprint=b"f", query="", reason="r")
        files = [p for p in state.iterdir() if p.name.startswith("node.sqlite")]
        assert files and all(p.stat().st_mode & 0o777 == 0o600 for p in files), files
        journal.close()
