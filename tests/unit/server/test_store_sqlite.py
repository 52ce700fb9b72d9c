"""The SQLite store's database: the aggregate generation protocol, sealed seeds,
transactions, versions (the async interface on top: test_store_interface.py)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from pets.server.store import ContributionRecord, QueryRecord
from pets.server.store.sqlite_database import SqliteDatabase as Store

OPEN, READY, FAILED = 1, 3, 4
Q1, QDONE = "q-0000000000000001", "q-00000000000000d0"


def _query(store: Store, qid: str = Q1, state: int = OPEN) -> QueryRecord:
    rec = QueryRecord(qid, "analyst", b"spec", state, 1.0, 2.0, 2, 4)
    store.insert_query(rec)
    return rec


def _files(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "aggregates").iterdir())


def test_each_commit_makes_one_current_generation(tmp_path: Path) -> None:
    store = Store(tmp_path / "pets.sqlite")
    _query(store)
    store.commit_contributions([ContributionRecord(Q1, "a", b"d" * 32, b"")], {Q1: b"one"})
    assert store.get_aggregate(Q1) == b"one"
    store.commit_contributions(
        [ContributionRecord(Q1, "b", b"e" * 32, b"")], {Q1: memoryview(b"two")}
    )
    assert store.get_aggregate(Q1) == b"two"
    assert _files(tmp_path) == [f"{Q1}.0", f"{Q1}.1"]  # two alternating slots
    store.commit_contributions([ContributionRecord(Q1, "c", b"f" * 32, b"")], {Q1: b"3"})
    assert store.get_aggregate(Q1) == b"3"  # a shorter payload truncates the slot
    assert store.contributions(Q1) == {"a": b"d" * 32, "b": b"e" * 32, "c": b"f" * 32}
    assert os.stat(tmp_path / "aggregates" / f"{Q1}.0").st_mode & 0o077 == 0


def test_a_crash_before_the_transaction_leaves_the_old_generation(tmp_path: Path) -> None:
    store = Store(tmp_path / "pets.sqlite")
    _query(store)
    store.commit_contributions([ContributionRecord(Q1, "a", b"d" * 32, b"")], {Q1: b"one"})
    # The next generation's slot was being written when the process died.
    (tmp_path / "aggregates" / f"{Q1}.0").write_bytes(b"half-done")
    store.close()
    store = Store(tmp_path / "pets.sqlite")
    assert store.get_aggregate(Q1) == b"one"
    assert store.contributions(Q1) == {"a": b"d" * 32}
    store.commit_contributions([ContributionRecord(Q1, "b", b"e" * 32, b"")], {Q1: b"two"})
    assert store.get_aggregate(Q1) == b"two"


def test_a_failed_transaction_records_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "pets.sqlite")
    _query(store)
    store.commit_contributions([ContributionRecord(Q1, "a", b"d" * 32, b"")], {Q1: b"one"})
    with pytest.raises(sqlite3.IntegrityError):  # same holder twice: primary key
        store.commit_contributions([ContributionRecord(Q1, "a", b"x" * 32, b"")], {Q1: b"bad"})
    assert store.get_aggregate(Q1) == b"one"
    assert store.contributions(Q1) == {"a": b"d" * 32}


def test_sealed_seeds_come_back_in_the_order_asked(tmp_path: Path) -> None:
    store = Store(tmp_path / "pets.sqlite")
    _query(store)
    store.commit_contributions(
        [
            ContributionRecord(Q1, "b", b"e" * 32, b"sealed-b"),
            ContributionRecord(Q1, "a", b"d" * 32, b"sealed-a"),
        ],
        {Q1: b"sum"},
    )
    assert store.sealed_contributions(Q1, ["a", "b"]) == [b"sealed-a", b"sealed-b"]
    with pytest.raises(KeyError):
        store.sealed_contributions(Q1, ["a", "c"])
    # Once the query is finished the sealed seeds are gone; who and the digests stay.
    store.finish_query(QueryRecord(Q1, "analyst", b"spec", READY, 1.0, 2.0, 2, 4), b"final")
    assert store.sealed_contributions(Q1, ["a", "b"]) == [b"", b""]
    assert store.contributions(Q1) == {"a": b"d" * 32, "b": b"e" * 32}


def test_a_database_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    from pets.errors import ConfigError

    store = Store(tmp_path / "pets.sqlite")
    _query(store)
    store.close()
    db = sqlite3.connect(tmp_path / "pets.sqlite")
    db.execute("PRAGMA user_version=1")
    db.close()
    with pytest.raises(ConfigError, match="another version of pets"):
        Store(tmp_path / "pets.sqlite")
    Store(tmp_path / "fresh" / "pets.sqlite").close()  # a new database is fine


def test_dropping_a_failed_query_removes_its_aggregate(tmp_path: Path) -> None:
    store = Store(tmp_path / "pets.sqlite")
    rec = _query(store)
    store.commit_contributions([ContributionRecord(Q1, "a", b"d" * 32, b"")], {Q1: b"one"})
    store.finish_query(rec.with_state(FAILED), None, drop=True)
    assert store.get_aggregate(Q1) is None
    assert _files(tmp_path) == []
    assert store.load_queries()[0].state == FAILED


def test_query_ids_cannot_name_paths(tmp_path: Path) -> None:
    from pets.errors import InvalidInputError

    store = Store(tmp_path / "pets.sqlite")
    victim = tmp_path / "victim.log.0"
    victim.write_text("keep me")
    rec = QueryRecord("../victim.log", "a", b"", OPEN, 1.0, 2.0, 2, 4)
    store.insert_query(rec)
    with pytest.raises(InvalidInputError, match="malformed query id"):
        store.finish_query(rec.with_state(FAILED), None, drop=True)
    assert victim.read_text() == "keep me"


def test_finished_query_keeps_one_slot(tmp_path: Path) -> None:
    store = Store(tmp_path / "pets.sqlite")
    rec = _query(store)
    for i, holder in enumerate("ab"):
        store.commit_contributions(
            [ContributionRecord(Q1, holder, bytes([i]) * 32, b"")], {Q1: bytes([i]) * 8}
        )
    store.finish_query(rec.with_state(READY), None)
    assert _files(tmp_path) == [f"{Q1}.0"]
    assert store.get_aggregate(Q1) == bytes([1]) * 8
