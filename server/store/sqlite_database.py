"""The embedded store's synchronous half: one server's SQLite database and its slot files.

One database file per server (WAL, ``synchronous=FULL``) holds its queries
and, on the leader, the per-holder records of who contributed: a digest
identifying each contribution and the holder's seeds sealed to the helpers
(with the holder's certificate), relayed to the helpers at finalisation. A
helper stores only its queries and its seal key. Aggregates live in slot
files (:mod:`pets.server.store.slots`) whose current generation is recorded
in the same transaction as the contributions that produced it
(docs/ARCHITECTURE.md, "Storage"). The tables and their migrations are in
:mod:`pets.server.store.sqlite_schema`; the servers reach this class only
through :class:`pets.server.store.sqlite.SqliteStore`.

Privacy budgets (``privacy_budgets``, one exact :class:`pets.dp.PrivacyFilter`
JSON per (analyst, dataset)) are spent in the same transaction that stores a
query's noisy final share (:meth:`SqliteDatabase.finish_query_spending`), so
a share is never released without its cost recorded, and a refused release
changes nothing.

The database file is made 0600 right after SQLite creates it (a helper's
seal key lives in it). It is a database that SQLite keeps writing, not a
one-shot file, so :func:`pets.runtime.atomicfile.write_atomic` does not apply.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from pets.server.query_state import CLOSED, OPEN, TERMINAL
from pets.server.store.base import (
    QUERY_COLUMNS,
    AlreadyFinishedError,
    ContributionRecord,
    QueryRecord,
    ReleaseRecord,
    VerifyKey,
)
from pets.server.store.slots import AggregateSlots
from pets.server.store.sqlite_schema import Transaction, ensure_schema


def _json_names(value: str) -> tuple[str, ...]:
    """A names column as SQLite stores it (a JSON list)."""
    return tuple(json.loads(value))


def _json_list(names: tuple[str, ...]) -> str:
    """A names column as SQLite stores it (a JSON list)."""
    return json.dumps(list(names))


class SqliteDatabase:
    """Synchronous access to one server's SQLite database and its slot files."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Created 0600 before SQLite opens it (a helper's seal key lives here);
        # SQLite gives the -wal and -shm files the database file's mode.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._slots = AggregateSlots(path.parent / "aggregates")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        ensure_schema(self._db, path)

    def close(self) -> None:
        self._db.close()

    # -- settings -----------------------------------------------------------
    def get_setting(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def put_setting(self, key: str, value: bytes) -> None:
        self._db.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, value))

    def put_setting_if_absent(self, key: str, value: bytes) -> bytes:
        self._db.execute("INSERT OR IGNORE INTO settings VALUES (?, ?)", (key, value))
        stored = self.get_setting(key)
        assert stored is not None  # inserted above or earlier
        return stored

    # -- the per-domain linked-query budget -----------------------------------
    def reserve_linked_query(
        self, domain: str, query_id: str, now: float, window: float, limit: int
    ) -> bool:
        with self._transaction():  # BEGIN IMMEDIATE: one writer counts at a time
            self._db.execute(
                "DELETE FROM linked_queries WHERE domain=? AND reserved <= ?",
                (domain, now - window),
            )
            if self._db.execute(
                "SELECT 1 FROM linked_queries WHERE domain=? AND query_id=?", (domain, query_id)
            ).fetchone():
                return True
            used = self._db.execute(
                "SELECT count(*) FROM linked_queries WHERE domain=?", (domain,)
            ).fetchone()[0]
            if used >= limit:
                return False
            self._db.execute("INSERT INTO linked_queries VALUES (?, ?, ?)", (domain, query_id, now))
            return True

    def linked_query_slot_frees(self, domain: str, now: float, window: float) -> float | None:
        row = self._db.execute(
            "SELECT min(reserved) FROM linked_queries WHERE domain=? AND reserved > ?",
            (domain, now - window),
        ).fetchone()
        return None if row is None or row[0] is None else float(row[0]) + window

    # -- Prio3 ---------------------------------------------------------------
    def put_verify_key(self, query_id: str, key: VerifyKey) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO verify_keys VALUES (?, ?, ?, ?)",
            (query_id, key.key, key.aggregator_id, json.dumps(list(key.bounds))),
        )

    def get_verify_key(self, query_id: str) -> VerifyKey | None:
        row = self._db.execute(
            "SELECT verify_key, aggregator_id, bounds FROM verify_keys WHERE query_id=?",
            (query_id,),
        ).fetchone()
        if row is None:
            return None
        return VerifyKey(bytes(row[0]), int(row[1]), tuple(json.loads(row[2])))

    def drop_verify_key(self, query_id: str) -> None:
        self._db.execute("DELETE FROM verify_keys WHERE query_id=?", (query_id,))

    def record_rejection(self, query_id: str, holder: str, reason: str) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO rejections VALUES (?, ?, ?)", (query_id, holder, reason)
        )

    def rejections(self, query_id: str) -> dict[str, str]:
        rows = self._db.execute(
            "SELECT holder, reason FROM rejections WHERE query_id=?", (query_id,)
        ).fetchall()
        return {str(h): str(r) for h, r in rows}

    # -- queries ------------------------------------------------------------
    def insert_query(self, q: QueryRecord) -> None:
        self._db.execute(
            "INSERT INTO queries VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", q.to_row(_json_list)
        )

    def update_query(self, q: QueryRecord) -> None:
        self._db.execute(
            "UPDATE queries SET state=?, failure=?, failure_detail=?, contributors=? WHERE id=?",
            (q.state, q.failure, q.failure_detail, json.dumps(list(q.contributors)), q.id),
        )

    def load_queries(self) -> list[QueryRecord]:
        """Every stored query, oldest first (ties in ``id`` order)."""
        rows = self._db.execute(
            f"SELECT {QUERY_COLUMNS} FROM queries ORDER BY created, id"  # noqa: S608 (constant)
        ).fetchall()
        return [QueryRecord.from_row(r, _json_names) for r in rows]

    def load_query(self, query_id: str) -> QueryRecord | None:
        row = self._db.execute(
            f"SELECT {QUERY_COLUMNS} FROM queries WHERE id=?",  # noqa: S608 (constant)
            (query_id,),
        ).fetchone()
        return None if row is None else QueryRecord.from_row(row, _json_names)

    def close_query(self, query_id: str) -> QueryRecord | None:
        """CLOSED with the recorded contributors (sorted), if still OPEN."""
        with self._transaction():
            q = self.load_query(query_id)
            if q is not None and q.state == OPEN:
                q = q.with_state(CLOSED, contributors=tuple(sorted(self.contributions(query_id))))
                self.update_query(q)
        return q

    def own_shard(self, query_id: str) -> tuple[bytes | None, int]:
        """The running aggregate and its count (one writer: the only shard)."""
        (count,) = self._db.execute(
            "SELECT count(*) FROM contributions WHERE query_id=?", (query_id,)
        ).fetchone()
        return self.get_aggregate(query_id), int(count)

    def _finishing(self, q: QueryRecord) -> None:
        """Refuse to finish a query twice (AlreadyFinishedError: nothing changes)."""
        row = self._db.execute("SELECT state FROM queries WHERE id=?", (q.id,)).fetchone()
        if row is not None and int(row[0]) in TERMINAL:
            raise AlreadyFinishedError(f"query {q.id} is already finished")

    # -- aggregates ---------------------------------------------------------
    def get_aggregate(self, query_id: str) -> bytes | None:
        """The query's current aggregate (running or final), or None."""
        generation = self._generation(query_id)
        if generation is None:
            return None
        return self._slots.read(query_id, generation)

    def _generation(self, query_id: str) -> int | None:
        row = self._db.execute(
            "SELECT generation FROM aggregate_files WHERE query_id=?", (query_id,)
        ).fetchone()
        return None if row is None else int(row[0])

    def _write_next(self, query_id: str, data: bytes | memoryview) -> int:
        """Write the next generation's file durably; it is current once recorded."""
        generation = (self._generation(query_id) or 0) + 1
        self._slots.write(query_id, generation, data)
        return generation

    # -- leader: contributions ---------------------------------------------
    def contributions(self, query_id: str) -> dict[str, bytes]:
        rows = self._db.execute(
            "SELECT holder, digest FROM contributions WHERE query_id=?", (query_id,)
        )
        return {h: bytes(d) for h, d in rows}

    def commit_contributions(
        self,
        records: Iterable[ContributionRecord],
        aggregates: Mapping[str, bytes | memoryview],
    ) -> None:
        """Record contributions and the running aggregates they produced, atomically
        (the generation protocol of :mod:`pets.server.store.slots`)."""
        generations = {qid: self._write_next(qid, data) for qid, data in aggregates.items()}
        with self._transaction():
            self._db.executemany(
                "INSERT INTO contributions VALUES (?,?,?,?)",
                [(r.query_id, r.holder, r.digest, r.sealed) for r in records],
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO aggregate_files VALUES (?, ?)",
                list(generations.items()),
            )

    def sealed_contributions(self, query_id: str, holders: Iterable[str]) -> list[bytes]:
        """The stored sealed seeds of ``holders`` (in that order); KeyError if one is missing."""
        rows = dict(
            self._db.execute(
                "SELECT holder, sealed FROM contributions WHERE query_id=?", (query_id,)
            ).fetchall()
        )
        return [bytes(rows[h]) for h in holders]

    # -- both: closing ------------------------------------------------------
    def finish_query(
        self, q: QueryRecord, aggregate: bytes | memoryview | None, drop: bool = False
    ) -> None:
        """Store a query's final state, in one transaction with its aggregate share:
        ``aggregate`` replaces it, ``drop`` deletes it. Sealed seeds are cleared."""
        self._finishing(q)
        generation = None if aggregate is None else self._write_next(q.id, aggregate)
        with self._transaction():
            self.update_query(q)
            # The helpers have what they need (or the query failed): the leader keeps
            # who contributed and the digests, not the sealed seeds.
            self._db.execute("UPDATE contributions SET sealed=x'' WHERE query_id=?", (q.id,))
            # The query ended: its Prio3 verify key is no longer needed (erased).
            self._db.execute("DELETE FROM verify_keys WHERE query_id=?", (q.id,))
            if generation is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO aggregate_files VALUES (?, ?)", (q.id, generation)
                )
            elif drop:
                self._db.execute("DELETE FROM aggregate_files WHERE query_id=?", (q.id,))
        if drop:
            self._slots.remove(q.id)
        else:  # finished: the spare slot (the previous generation) is no longer needed
            current = generation if generation is not None else self._generation(q.id)
            if current is not None:
                self._slots.remove(q.id, current - 1)

    # -- both: privacy budgets (pets.dp.PrivacyFilter as exact JSON) ------------
    def get_budget(self, analyst: str, dataset: str) -> str | None:
        row = self._db.execute(
            "SELECT filter FROM privacy_budgets WHERE analyst=? AND dataset=?", (analyst, dataset)
        ).fetchone()
        return None if row is None else str(row[0])

    def list_budgets(self) -> list[str]:
        rows = self._db.execute("SELECT filter FROM privacy_budgets ORDER BY analyst, dataset")
        return [str(r[0]) for r in rows]

    def update_budget(self, analyst: str, dataset: str, update: Callable[[str | None], str]) -> str:
        """Read-modify-write one budget in one transaction; ``update`` may raise (no change)."""
        with self._transaction():
            new = update(self.get_budget(analyst, dataset))
            self._put_budget(analyst, dataset, new)
        return new

    def _put_budget(self, analyst: str, dataset: str, filter_json: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO privacy_budgets VALUES (?, ?, ?)",
            (analyst, dataset, filter_json),
        )

    def finish_query_spending(
        self,
        q: QueryRecord,
        aggregate: bytes | memoryview,
        analyst: str,
        dataset: str,
        spend: Callable[[str | None], str],
    ) -> None:
        """:meth:`finish_query` with ``aggregate`` and, in the SAME transaction, the
        budget ``spend`` returns from the stored one. If ``spend`` raises (the
        release would overspend), nothing changes: neither the query nor the budget."""
        self._finishing(q)
        generation = self._write_next(q.id, aggregate)
        with self._transaction():
            self._put_budget(analyst, dataset, spend(self.get_budget(analyst, dataset)))
            self.update_query(q)
            self._db.execute("UPDATE contributions SET sealed=x'' WHERE query_id=?", (q.id,))
            # The query ended: its Prio3 verify key is no longer needed (erased).
            self._db.execute("DELETE FROM verify_keys WHERE query_id=?", (q.id,))
            self._db.execute(
                "INSERT OR REPLACE INTO aggregate_files VALUES (?, ?)", (q.id, generation)
            )
        self._slots.remove(q.id, generation - 1)

    # -- both: releases (pets.server.release_policy) ---------------------------
    def releases(self, fingerprint: bytes, since: float) -> list[ReleaseRecord]:
        rows = self._db.execute(
            "SELECT fingerprint, query_id, contributor_set, contributors, released "
            "FROM releases WHERE fingerprint=? AND released>=? ORDER BY released, query_id",
            (fingerprint, since),
        ).fetchall()
        return [ReleaseRecord(bytes(r[0]), r[1], bytes(r[2]), r[3], r[4]) for r in rows]

    def record_release(
        self,
        release: ReleaseRecord,
        since: float,
        check: Callable[[list[ReleaseRecord]], None],
    ) -> None:
        """Forget releases before ``since``, ``check`` the fingerprint's others, record
        ``release``: one transaction (the store interface's contract)."""
        r = release
        with self._transaction():
            self._db.execute("DELETE FROM releases WHERE released<?", (since,))
            others = [p for p in self.releases(r.fingerprint, since) if p.query_id != r.query_id]
            check(others)
            self._db.execute(
                "INSERT OR IGNORE INTO releases VALUES (?, ?, ?, ?, ?)",
                (r.fingerprint, r.query_id, r.contributor_set, r.contributors, r.released),
            )

    def _transaction(self) -> Transaction:
        return Transaction(self._db)
