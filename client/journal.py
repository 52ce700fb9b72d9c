"""The node's own record of every query it saw: answered or refused, why, and when.

One SQLite database in the node's ``state_dir`` (``node.sqlite``; WAL,
``synchronous=FULL``, so a decision survives a crash and a restart). It holds
no values: per query only its id, the analyst who asked, the query's
fingerprint and description, the outcome, the reason for a refusal and the
time. It serves three purposes:

* a restarted node does not answer a query twice (a query with a final
  decision is skipped; one it was still answering is tried again, and the
  derived seeds make the re-sent contribution identical);
* the answer limit (issue 15, item 1): a node answers the same query
  fingerprint from the same analyst at most ``limit`` times per ``window``
  seconds. Asking again with a different ``close_after`` (or hoping for a
  different contributor set) then gets no answer from this node, which is
  what stops holder-level differencing across repeated queries. Every node
  applies its own limit and simply does not contribute, so the analyst sees
  only a smaller contributor count, never which node refused;
* ``pets node history``: what did my node answer?
* single-use Paillier specs (issue 15, item 15): the spec id an analyst
  signed is answered for one query id only (:meth:`Journal.claim_spec`), so a
  leader replaying a signed spec under a new query id gets no second answer;
  an id is kept until its signed ``not_after`` passes (the signature is
  refused from then on anyway).

The former ``answered.json`` (query ids only) is imported once on open.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from pets.errors import ConfigError

ANSWERED = "answered"
REFUSED = "refused"
ANSWERING = "answering"  # reserved before contributing; final once the leader acknowledged
IMPORTED = "seen"  # from answered.json: the old file did not say which

JOURNAL_FILE = "node.sqlite"
LEGACY_FILE = "answered.json"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queries (
    query_id TEXT PRIMARY KEY,
    analyst TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    query TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS queries_by_fingerprint ON queries (analyst, fingerprint, at);
CREATE TABLE IF NOT EXISTS spec_ids (
    spec_id BLOB PRIMARY KEY,
    query_id TEXT NOT NULL,
    not_after REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Entry:
    """One query the node saw (no values)."""

    query_id: str
    analyst: str
    query: str
    outcome: str
    reason: str
    at: float

    def to_json_obj(self) -> dict[str, object]:
        return asdict(self) | {"at": _iso(self.at)}


def _iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


class Journal:
    """The node's decisions, durable in ``state_dir/node.sqlite``."""

    def __init__(self, state_dir: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(state_dir) / JOURNAL_FILE
        self.clock = clock
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # 0600 like the servers' stores (SQLite gives -wal and -shm the same mode);
            # a journal made by an older version is tightened too.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            os.chmod(self.path, 0o600)
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"state_dir {state_dir} cannot hold the node's journal: "
                f"{getattr(exc, 'strerror', None) or exc}"
            ) from None
        self._import_legacy(Path(state_dir) / LEGACY_FILE)

    def close(self) -> None:
        self._db.close()

    def _import_legacy(self, legacy: Path) -> None:
        try:
            ids = json.loads(legacy.read_text())
        except (FileNotFoundError, ValueError):
            return
        at = legacy.stat().st_mtime
        with self._db:
            self._db.executemany(
                "INSERT OR IGNORE INTO queries VALUES (?, '', x'', '', ?, ?, ?)",
                [(str(q), IMPORTED, "recorded before the node kept a history", at) for q in ids],
            )
        legacy.rename(legacy.with_suffix(".json.imported"))

    def decided(self, query_id: str) -> bool:
        """True when the node already answered or refused ``query_id`` (skip it)."""
        row = self._db.execute(
            "SELECT outcome FROM queries WHERE query_id = ?", (query_id,)
        ).fetchone()
        return row is not None and row[0] != ANSWERING

    def answers(self, analyst: str, fingerprint: bytes, window: float, *, other_than: str) -> int:
        """How many other queries with this fingerprint from ``analyst`` the node answered
        (or is answering) within the last ``window`` seconds."""
        (count,) = self._db.execute(
            "SELECT COUNT(*) FROM queries WHERE analyst = ? AND fingerprint = ? AND at > ? "
            "AND outcome IN (?, ?) AND query_id != ?",
            (analyst, fingerprint, self.clock() - window, ANSWERED, ANSWERING, other_than),
        ).fetchone()
        return int(count)

    def record(
        self,
        query_id: str,
        outcome: str,
        *,
        analyst: str = "",
        fingerprint: bytes = b"",
        query: str = "",
        reason: str = "",
    ) -> None:
        """Record (or update) the node's decision on ``query_id``, now."""
        with self._db:
            self._db.execute(
                "INSERT INTO queries VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (query_id) DO UPDATE "
                "SET outcome = excluded.outcome, reason = excluded.reason, at = excluded.at, "
                "analyst = CASE WHEN excluded.analyst = '' THEN analyst ELSE excluded.analyst END,"
                " fingerprint = CASE WHEN excluded.fingerprint = x'' THEN fingerprint "
                "ELSE excluded.fingerprint END, "
                "query = CASE WHEN excluded.query = '' THEN query ELSE excluded.query END",
                (query_id, analyst, fingerprint, query, outcome, reason, self.clock()),
            )

    def claim_spec(self, spec_id: bytes, query_id: str, *, not_after: float) -> str | None:
        """Bind a signed spec id to ``query_id``; return the other query id it is
        already bound to (refuse), or None. Ids past their ``not_after`` are pruned."""
        with self._db:
            self._db.execute("DELETE FROM spec_ids WHERE not_after < ?", (self.clock(),))
            self._db.execute(
                "INSERT OR IGNORE INTO spec_ids VALUES (?, ?, ?)",
                (bytes(spec_id), query_id, not_after),
            )
            (bound,) = self._db.execute(
                "SELECT query_id FROM spec_ids WHERE spec_id = ?", (bytes(spec_id),)
            ).fetchone()
        return None if bound == query_id else str(bound)

    def forget(self, query_id: str) -> None:
        """Drop an unfinished answer (the contribution failed; the node may try again)."""
        with self._db:
            self._db.execute(
                "DELETE FROM queries WHERE query_id = ? AND outcome = ?", (query_id, ANSWERING)
            )

    def history(self) -> list[Entry]:
        """Every query the node saw, oldest first."""
        rows = self._db.execute(
            "SELECT query_id, analyst, query, outcome, reason, at FROM queries "
            "ORDER BY at, query_id"
        ).fetchall()
        return [Entry(*row) for row in rows]
