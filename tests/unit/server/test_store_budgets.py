"""Privacy budgets in the SQLite store: spent with the noisy share in one transaction.

A refused release (the spend callback raises) leaves the query and the
budget exactly as they were; an accepted one records both; budgets survive
reopening the database; a database of the previous schema version gains the
table by migration. The server's ``[dp]`` table parses into a DpPolicy.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import pytest

from pets.dp import PrivacyBudgetExceededError, PrivacyFilter
from pets.errors import ConfigError
from pets.server.config import parse_config
from pets.server.store import QueryRecord
from pets.server.store.sqlite_database import SqliteDatabase as Store
from pets.server.store.sqlite_schema import SCHEMA_VERSION

OPEN, READY = 1, 3
Q1 = "q-0000000000000001"


def _spend(rho: Fraction, budget: Fraction = Fraction(1, 2)) -> Callable[[str | None], str]:
    def spend(stored: str | None) -> str:
        filt = (
            PrivacyFilter("analyst", "hospitals", budget)
            if stored is None
            else PrivacyFilter.from_json(stored)
        )
        return filt.after_spending(rho).to_json()

    return spend


def _state(store: Store) -> tuple[int, bytes | None, str | None]:
    (rec,) = store.load_queries()
    return rec.state, store.get_aggregate(Q1), store.get_budget("analyst", "hospitals")


def test_a_release_and_its_cost_are_one_transaction(tmp_path: Path) -> None:
    store = Store(tmp_path / "pets.sqlite")
    rec = QueryRecord(Q1, "analyst", b"spec", OPEN, 1.0, 2.0, 2, 4)
    store.insert_query(rec)
    assert store.get_budget("analyst", "hospitals") is None
    done = rec.with_state(READY, contributors=("a", "b"))

    with pytest.raises(PrivacyBudgetExceededError, match="nothing was spent"):
        store.finish_query_spending(done, b"noisy", "analyst", "hospitals", _spend(Fraction(1)))
    assert _state(store) == (OPEN, None, None)  # nothing changed

    store.finish_query_spending(done, b"noisy", "analyst", "hospitals", _spend(Fraction(1, 8)))
    state, share, budget = _state(store)
    assert state == READY and share == b"noisy" and budget is not None
    filt = PrivacyFilter.from_json(budget)
    assert filt.spent_rho == Fraction(1, 8) and filt.releases == 1

    store.close()  # a restart restores the budget exactly
    store = Store(tmp_path / "pets.sqlite")
    assert PrivacyFilter.from_json(store.list_budgets()[0]) == filt


def test_update_budget_is_atomic_and_refusals_change_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "pets.sqlite")
    first = store.update_budget("analyst", "hospitals", _spend(Fraction(1, 4)))
    with pytest.raises(PrivacyBudgetExceededError):
        store.update_budget("analyst", "hospitals", _spend(Fraction(1, 2)))
    assert store.get_budget("analyst", "hospitals") == first
    assert [PrivacyFilter.from_json(s).dataset for s in store.list_budgets()] == ["hospitals"]


def test_a_previous_version_database_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "pets.sqlite"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE privacy_budgets")
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION - 1}")
    db.commit()
    db.close()
    store = Store(path)
    store.update_budget("analyst", "hospitals", _spend(Fraction(1, 8)))
    assert store.get_budget("analyst", "hospitals") is not None


def test_the_dp_table_of_a_server_config(tmp_path: Path) -> None:
    base = {"role": "helper", "name": "helper-1", "schema": "schema.toml"}
    cfg = parse_config(
        {**base, "dp": {"require": True, "max_rho": 0.25, "budget_rho": 1}}, tmp_path, insecure=True
    )
    assert cfg.dp.require and cfg.dp.max_rho == Fraction(1, 4) and cfg.dp.budget_rho == 1
    assert not parse_config(base, tmp_path, insecure=True).dp.require
    with pytest.raises(ConfigError, match="unknown keys"):
        parse_config({**base, "dp": {"budget": 1}}, tmp_path, insecure=True)
    with pytest.raises(ConfigError, match="needs `schema`"):
        parse_config(
            {"role": "helper", "name": "helper-1", "dp": {"require": True}}, tmp_path, insecure=True
        )
