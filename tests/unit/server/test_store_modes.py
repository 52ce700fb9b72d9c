"""The state directory's secrets are never readable by others, not even for a moment.

The SQLite database holds a helper's seal key and the slot directory the
aggregates: the database is created 0600 *before* SQLite opens it (SQLite
gives its -wal/-shm files the database's mode), and the slot directory is
0700 even when it existed with a wider mode.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

from pets.server.store import slots as slots_module
from pets.server.store import sqlite_database as sqlite_module
from pets.server.store.slots import AggregateSlots


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_database_is_0600_from_the_moment_sqlite_opens_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    real_connect = sqlite3.connect

    def connect(path: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = real_connect(path, *args, **kwargs)
        seen.append(_mode(Path(path)))  # the mode the file has once SQLite holds it open
        return conn

    monkeypatch.setattr(sqlite_module.sqlite3, "connect", connect)
    old = os.umask(0o022)
    try:
        db = sqlite_module.SqliteDatabase(tmp_path / "state" / "server.db")
    finally:
        os.umask(old)
    db.close()
    assert seen and seen[0] == 0o600
    for name in ("server.db", "server.db-wal", "server.db-shm"):
        if (tmp_path / "state" / name).exists():
            assert _mode(tmp_path / "state" / name) & 0o077 == 0, name


def test_an_existing_slot_directory_is_narrowed_to_0700(tmp_path: Path) -> None:
    directory = tmp_path / "aggregates"
    directory.mkdir(mode=0o755)
    os.chmod(directory, 0o755)
    AggregateSlots(directory)
    assert _mode(directory) == 0o700
    assert slots_module.AggregateSlots(tmp_path / "fresh") and _mode(tmp_path / "fresh") == 0o700
