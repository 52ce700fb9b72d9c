"""The SQLite store's schema: its tables, its version and the migrations between versions.

The schema is versioned with SQLite's ``user_version``
(docs/ARCHITECTURE.md, "Storage"): a database of an older version from
:data:`MIGRATABLE_FROM` on is migrated step by step (:data:`MIGRATIONS`), in
one transaction, when it is opened; any other version is refused with a clear
error rather than misread. :func:`ensure_schema` does that and then creates
whatever table is missing (``CREATE TABLE IF NOT EXISTS``), so a fresh
database and a migrated one end up with the same tables.

:class:`Transaction` is the one way :mod:`pets.server.store.sqlite_database`
and the migrations write several statements atomically (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pets.errors import ConfigError

# Bumped whenever the tables change; each bump adds its step to MIGRATIONS.
SCHEMA_VERSION = 5
# The oldest version a migration reaches from (older databases are refused).
MIGRATABLE_FROM = 2
# version -> the SQL that brings a database of version - 1 to it (run in order).
MIGRATIONS: dict[int, str] = {
    3: "CREATE TABLE IF NOT EXISTS privacy_budgets ("
    "analyst TEXT NOT NULL, dataset TEXT NOT NULL, filter TEXT NOT NULL, "
    "PRIMARY KEY (analyst, dataset))",
    4: "CREATE TABLE IF NOT EXISTS releases ("
    "fingerprint BLOB NOT NULL, query_id TEXT NOT NULL, contributor_set BLOB NOT NULL, "
    "contributors INTEGER NOT NULL, released REAL NOT NULL, "
    "PRIMARY KEY (fingerprint, query_id))",
    5: "CREATE TABLE IF NOT EXISTS linked_queries ("
    "domain TEXT NOT NULL, query_id TEXT NOT NULL, reserved REAL NOT NULL, "
    "PRIMARY KEY (domain, query_id))",
}

SCHEMA = """
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
-- The per-domain linked-query budget (pets.server.linked_budget): the linked
-- queries accepted per linkage domain, with when (pruned once out of the window).
CREATE TABLE IF NOT EXISTS linked_queries (
    domain TEXT NOT NULL,
    query_id TEXT NOT NULL,
    reserved REAL NOT NULL,
    PRIMARY KEY (domain, query_id)
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
PRIO3_SCHEMA = """
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


def ensure_schema(db: sqlite3.Connection, path: Path) -> None:
    """Bring the database at ``path`` (open as ``db``) to :data:`SCHEMA_VERSION`:
    create it, or migrate it from an older version; ConfigError (and ``db``
    closed) for a version this code cannot read."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    has_tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if has_tables and MIGRATABLE_FROM <= version < SCHEMA_VERSION:
        with Transaction(db):
            for step in range(version + 1, SCHEMA_VERSION + 1):
                db.execute(MIGRATIONS[step])
    elif has_tables and version != SCHEMA_VERSION:
        db.close()
        raise ConfigError(
            f"{path} was written by another version of pets (schema {version}, this one "
            f"reads {SCHEMA_VERSION}); finish its queries with that version or start "
            "with a fresh state directory"
        )
    db.executescript(SCHEMA)
    # Prio3's tables are additive (CREATE ... IF NOT EXISTS): an existing
    # database of this schema version gains them without a version bump.
    db.executescript(PRIO3_SCHEMA)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


class Transaction:
    """``with Transaction(db):`` runs the block in one immediate transaction; rolled
    back if it raises (or if COMMIT fails, leaving the connection usable)."""

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
