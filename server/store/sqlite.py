"""The embedded store: SQLite (WAL, ``synchronous=FULL``) plus aggregate slot files.

One database file per server holds its queries and, on the leader, the
per-holder records of who contributed: a digest identifying each
contribution and the holder's seeds sealed to the helpers (with the
holder's certificate), relayed to the helpers at finalisation. A helper
stores only its queries and its seal key. Aggregates live in slot files
(:mod:`pets.server.store.slots`) whose current generation is recorded in the
same transaction as the contributions that produced it.

:class:`SqliteDatabase` is synchronous; :class:`SqliteStore` runs it on one
dedicated thread, so SQLite never blocks the event loop and all writes are
serialised, and is what the servers use (:class:`pets.server.store.Store`).
The schema is versioned: a database of an older version from
``_MIGRATABLE_FROM`` on is migrated step by step (``_MIGRATIONS``), any other
is refused with a clear error rather than misread.

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

import asyncio
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from pets.errors import ConfigError, ConflictError
from pets.server.store.base import ContributionRecord, QueryRecord, ReleaseRecord, VerifyKey
from pets.server.store.slots import AggregateSlots

T = TypeVar("T")

# Bumped whenever the tables change; each bump adds its step to _MIGRATIONS.
SCHEMA_VERSION = 4
# The oldest version a migration reaches from (older databases are refused).
_MIGRATABLE_FROM = 2
# version -> the SQL that brings a database of version - 1 to it (run in order).
_MIGRATIONS: dict[int, str] = {
    3: "CREATE TABLE IF NOT EXISTS privacy_budgets ("
    "analyst TEXT NOT NULL, dataset TEXT NOT NULL, filter TEXT NOT NULL, "
    "PRIMARY KEY (analyst, dataset))",
    4: "CREATE TABLE IF NOT EXISTS releases ("
    "fingerprint BLOB NOT NULL, query_id TEXT NOT NULL, contributor_set BLOB NOT NULL, "
    "contributors INTEGER NOT NULL, released REAL NOT NULL, "
    "PRIMARY KEY (fingerprint, query_id))",
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queries (
    id TEXT PRIMARY KEY,
    analyst TEXT NOT NULL,
    spec BLOB NOT NULL,
    state INTEGER NOT NULL,
    created REAL NOT NULL,
    deadline REAL NOT NULL,
    min_holders INTEGER NOT NULL,
    vector_length INTEGER NOT NULL,
    failure TEXT NOT NULL DEFAULT '',
    failure_detail TEXT NOT NULL DEFAULT '',
    contributors TEXT NOT NULL DEFAULT '[]',
    proven_predicates TEXT NOT NULL DEFAULT '[]',
    fingerprint BLOB NOT NULL DEFAULT x'',
    helper_keys BLOB NOT NULL DEFAULT x''
);
CREATE TABLE IF NOT EXISTS contributions (
    query_id TEXT NOT NULL,
    holder TEXT NOT NULL,
    digest BLOB NOT NULL,
    sealed BLOB NOT NULL,
    PRIMARY KEY (query_id, holder)
);
CREATE TABLE IF NOT EXISTS aggregate_files (
    query_id TEXT PRIMARY KEY,
    generation INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS privacy_budgets (
    analyst TEXT NOT NULL,
    dataset TEXT NOT NULL,
    filter TEXT NOT NULL,  -- pets.dp.PrivacyFilter.to_json(), exact
    PRIMARY KEY (analyst, dataset)
);
-- The release rule (pets.server.release_policy): recent releases per query
-- fingerprint, with a digest of the contributor set (never the names).
CREATE TABLE IF NOT EXISTS releases (
    fingerprint BLOB NOT NULL,
    query_id TEXT NOT NULL,
    contributor_set BLOB NOT NULL,
    contributors INTEGER NOT NULL,
    released REAL NOT NULL,
    PRIMARY KEY (fingerprint, query_id)
);
"""


# Prio3 (issue 12): a query's secret verify key (erased when it ends) and the
# holders whose contribution the servers refused (a reason, never values).
_PRIO3_SCHEMA = """
CREATE TABLE IF NOT EXISTS verify_keys (
    query_id TEXT PRIMARY KEY,
    verify_key BLOB NOT NULL,
    aggregator_id INTEGER NOT NULL,
    bounds TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS rejections (
    query_id TEXT NOT NULL,
    holder TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (query_id, holder)
);
"""


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
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        has_tables = self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if has_tables and _MIGRATABLE_FROM <= version < SCHEMA_VERSION:
            with self._transaction():
                for step in range(version + 1, SCHEMA_VERSION + 1):
                    self._db.execute(_MIGRATIONS[step])
        elif has_tables and version != SCHEMA_VERSION:
            self._db.close()
            raise ConfigError(
                f"{path} was written by another version of pets (schema {version}, this one "
                f"reads {SCHEMA_VERSION}); finish its queries with that version or start "
                "with a fresh state directory"
            )
        self._db.executescript(_SCHEMA)
        # Prio3's tables are additive (CREATE ... IF NOT EXISTS): an existing
        # database of this schema version gains them without a version bump.
        self._db.executescript(_PRIO3_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    # -- settings -----------------------------------------------------------
    def get_setting(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def put_setting(self, key: str, value: bytes) -> None:
        self._db.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, value))

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
            "INSERT INTO queries VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                q.id,
                q.analyst,
                q.spec,
                q.state,
                q.created,
                q.deadline,
                q.min_holders,
                q.vector_length,
                q.failure,
                q.failure_detail,
                json.dumps(list(q.contributors)),
                json.dumps(list(q.proven_predicates)),
                q.fingerprint,
                q.helper_keys,
            ),
        )

    def update_query(self, q: QueryRecord) -> None:
        self._db.execute(
            "UPDATE queries SET state=?, failure=?, failure_detail=?, contributors=? WHERE id=?",
            (q.state, q.failure, q.failure_detail, json.dumps(list(q.contributors)), q.id),
        )

    def load_queries(self) -> list[QueryRecord]:
        rows = self._db.execute(
            "SELECT id, analyst, spec, state, created, deadline, min_holders, vector_length, "
            "failure, failure_detail, contributors, proven_predicates, fingerprint, helper_keys "
            "FROM queries ORDER BY created"
        ).fetchall()
        return [
            QueryRecord(
                id=r[0],
                analyst=r[1],
                spec=bytes(r[2]),
                state=r[3],
                created=r[4],
                deadline=r[5],
                min_holders=r[6],
                vector_length=r[7],
                failure=r[8],
                failure_detail=r[9],
                contributors=tuple(json.loads(r[10])),
                proven_predicates=tuple(json.loads(r[11])),
                fingerprint=bytes(r[12]),
                helper_keys=bytes(r[13]),
            )
            for r in rows
        ]

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

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is not None:
            self._db.execute("ROLLBACK")
            return
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error:
            if self._db.in_transaction:  # leave the connection usable
                self._db.execute("ROLLBACK")
            raise


class SqliteStore:
    """:class:`pets.server.store.Store` over :class:`SqliteDatabase`, whose every call
    runs on one dedicated thread, off the event loop."""

    def __init__(self, path: Path) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pets-sqlite")
        self._db = self._pool.submit(SqliteDatabase, path).result()

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def close(self) -> None:
        await self._run(self._db.close)
        self._pool.shutdown(wait=True)

    def close_now(self) -> None:
        """:meth:`close` for callers outside an event loop."""
        self._pool.submit(self._db.close).result()
        self._pool.shutdown(wait=True)

    async def get_setting(self, key: str) -> bytes | None:
        return await self._run(self._db.get_setting, key)

    async def put_setting(self, key: str, value: bytes) -> None:
        await self._run(self._db.put_setting, key, value)

    async def insert_query(self, record: QueryRecord) -> None:
        await self._run(self._db.insert_query, record)

    async def update_query(self, record: QueryRecord) -> None:
        await self._run(self._db.update_query, record)

    async def load_queries(self) -> list[QueryRecord]:
        return await self._run(self._db.load_queries)

    async def contributions(self, query_id: str) -> dict[str, bytes]:
        return await self._run(self._db.contributions, query_id)

    async def commit_contributions(
        self,
        records: Sequence[ContributionRecord],
        aggregates: Mapping[str, bytes | memoryview],
    ) -> None:
        try:
            await self._run(self._db.commit_contributions, records, aggregates)
        except sqlite3.IntegrityError:
            raise ConflictError("a contribution of this batch is already recorded") from None

    async def sealed_contributions(self, query_id: str, holders: Iterable[str]) -> list[bytes]:
        return await self._run(self._db.sealed_contributions, query_id, list(holders))

    async def get_aggregate(self, query_id: str) -> bytes | None:
        return await self._run(self._db.get_aggregate, query_id)

    async def finish_query(
        self, record: QueryRecord, aggregate: bytes | memoryview | None, drop: bool = False
    ) -> None:
        await self._run(self._db.finish_query, record, aggregate, drop)

    async def put_verify_key(self, query_id: str, key: VerifyKey) -> None:
        await self._run(self._db.put_verify_key, query_id, key)

    async def get_verify_key(self, query_id: str) -> VerifyKey | None:
        return await self._run(self._db.get_verify_key, query_id)

    async def drop_verify_key(self, query_id: str) -> None:
        await self._run(self._db.drop_verify_key, query_id)

    async def record_rejection(self, query_id: str, holder: str, reason: str) -> None:
        await self._run(self._db.record_rejection, query_id, holder, reason)

    async def rejections(self, query_id: str) -> dict[str, str]:
        return await self._run(self._db.rejections, query_id)

    async def get_budget(self, analyst: str, dataset: str) -> str | None:
        return await self._run(self._db.get_budget, analyst, dataset)

    async def list_budgets(self) -> list[str]:
        return await self._run(self._db.list_budgets)

    async def update_budget(
        self, analyst: str, dataset: str, update: Callable[[str | None], str]
    ) -> str:
        return await self._run(self._db.update_budget, analyst, dataset, update)

    async def finish_query_spending(
        self,
        record: QueryRecord,
        aggregate: bytes | memoryview,
        analyst: str,
        dataset: str,
        spend: Callable[[str | None], str],
    ) -> None:
        await self._run(self._db.finish_query_spending, record, aggregate, analyst, dataset, spend)

    async def releases(self, fingerprint: bytes, since: float) -> list[ReleaseRecord]:
        return await self._run(self._db.releases, fingerprint, since)

    async def record_release(
        self,
        release: ReleaseRecord,
        since: float,
        check: Callable[[list[ReleaseRecord]], None],
    ) -> None:
        await self._run(self._db.record_release, release, since, check)
