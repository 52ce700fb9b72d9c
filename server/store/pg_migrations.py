"""The PostgreSQL store's schema, as numbered migration steps applied on start.

``MIGRATIONS[i]`` takes a database from schema version ``i`` to ``i + 1``;
the version a database is at lives in the one-row table ``pets_schema``. On
start :func:`migrate` applies the missing steps in one transaction, under a
transaction-scoped advisory lock so replicas starting together migrate once,
and refuses a database at a *newer* version than this code knows (it would be
misread) with a clear :class:`~pets.errors.ConfigError`.

To change the schema, append a step: never edit a released one. A step must
work on a database written by any earlier version (PostgreSQL DDL is
transactional, so a failed step leaves the database as it was).

Aggregates are ``bytea`` rows, not files as in the SQLite store
(:mod:`pets.server.store.slots`): replicas of a server share the database and
no disk. ``STORAGE EXTERNAL`` keeps them out of compression (they are
uniformly random ring elements or ciphertexts), stored out of line (TOAST).
"""

from __future__ import annotations

from typing import LiteralString

from psycopg import AsyncConnection

from pets.errors import ConfigError

# Any constant works; it names the lock that serialises migrations across replicas.
_MIGRATION_LOCK = 0x70657473  # "pets"

MIGRATIONS: tuple[LiteralString, ...] = (
    # 1: the tables of the SQLite store, with aggregates in the database.
    """
    CREATE TABLE queries (
        id text PRIMARY KEY,
        analyst text NOT NULL,
        spec bytea NOT NULL,
        state integer NOT NULL,
        created double precision NOT NULL,
        deadline double precision NOT NULL,
        min_holders integer NOT NULL,
        vector_length bigint NOT NULL,
        failure text NOT NULL DEFAULT '',
        failure_detail text NOT NULL DEFAULT '',
        contributors text[] NOT NULL DEFAULT '{}',
        proven_predicates text[] NOT NULL DEFAULT '{}',
        fingerprint bytea NOT NULL DEFAULT '',
        helper_keys bytea NOT NULL DEFAULT ''
    );
    CREATE INDEX queries_created ON queries (created, id);
    CREATE TABLE contributions (
        query_id text NOT NULL,
        holder text NOT NULL,
        digest bytea NOT NULL,
        sealed bytea NOT NULL,
        PRIMARY KEY (query_id, holder)
    );
    CREATE TABLE aggregates (
        query_id text PRIMARY KEY,
        data bytea NOT NULL
    );
    ALTER TABLE aggregates ALTER COLUMN data SET STORAGE EXTERNAL;
    CREATE TABLE settings (
        key text PRIMARY KEY,
        value bytea NOT NULL
    );
    """,
    # 2: Prio3's verify keys and refused contributions (issue 12), privacy budgets
    # (issue 11): the tables the SQLite store gained for them.
    """
    CREATE TABLE verify_keys (
        query_id text PRIMARY KEY,
        verify_key bytea NOT NULL,
        aggregator_id integer NOT NULL
    );
    CREATE TABLE rejections (
        query_id text NOT NULL,
        holder text NOT NULL,
        reason text NOT NULL,
        PRIMARY KEY (query_id, holder)
    );
    CREATE TABLE privacy_budgets (
        analyst text NOT NULL,
        dataset text NOT NULL,
        filter text NOT NULL,
        PRIMARY KEY (analyst, dataset)
    );
    """,
    # 3: Prio3 circuit bounds beside the verify key; the release rule's records
    # (pets.server.release_policy: a digest of each contributor set, never names).
    """
    ALTER TABLE verify_keys ADD COLUMN bounds text NOT NULL DEFAULT '[]';
    CREATE TABLE releases (
        fingerprint bytea NOT NULL,
        query_id text NOT NULL,
        contributor_set bytea NOT NULL,
        contributors integer NOT NULL,
        released double precision NOT NULL,
        PRIMARY KEY (fingerprint, query_id)
    );
    CREATE INDEX releases_released ON releases (released);
    """,
    # 4: replicas of one server on the database (issue 14, item 2). Each replica folds
    # contributions into its own shard row of a query's running aggregate (merged at
    # finalisation); ``aggregates`` keeps final shares only. A running aggregate of an
    # unfinished query moves to the shard of replica '' (its count: the query's
    # contributions). ``leases``: who finalises a query, until when (database clock).
    """
    CREATE TABLE aggregate_shards (
        query_id text NOT NULL,
        replica text NOT NULL,
        data bytea NOT NULL,
        contributions bigint NOT NULL,
        PRIMARY KEY (query_id, replica)
    );
    ALTER TABLE aggregate_shards ALTER COLUMN data SET STORAGE EXTERNAL;
    INSERT INTO aggregate_shards
        SELECT a.query_id, '', a.data,
               (SELECT count(*) FROM contributions c WHERE c.query_id = a.query_id)
        FROM aggregates a JOIN queries q ON q.id = a.query_id
        WHERE q.state IN (1, 2);
    DELETE FROM aggregates a USING queries q WHERE q.id = a.query_id AND q.state IN (1, 2);
    CREATE TABLE leases (
        query_id text PRIMARY KEY,
        holder text NOT NULL,
        expires double precision NOT NULL
    );
    """,
    # 5: the per-domain linked-query budget (issue 16, pets.server.linked_budget):
    # the linked queries accepted per linkage domain, with when.
    """
    CREATE TABLE linked_queries (
        domain text NOT NULL,
        query_id text NOT NULL,
        reserved double precision NOT NULL,
        PRIMARY KEY (domain, query_id)
    );
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


async def schema_version(conn: AsyncConnection) -> int:
    """The version the database is at (0 when pets never wrote to it)."""
    cur = await conn.execute("SELECT to_regclass('pets_schema') IS NOT NULL")
    row = await cur.fetchone()
    if row is None or not row[0]:
        return 0
    cur = await conn.execute("SELECT version FROM pets_schema")
    row = await cur.fetchone()
    return 0 if row is None else int(row[0])


async def migrate(conn: AsyncConnection, migrations: tuple[LiteralString, ...] = MIGRATIONS) -> int:
    """Bring the database to ``len(migrations)``; return the version it was at.

    ``conn`` must be in autocommit mode: the steps run in one transaction here.
    """
    target = len(migrations)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        await conn.execute("CREATE TABLE IF NOT EXISTS pets_schema (version integer NOT NULL)")
        found = await schema_version(conn)
        if found > target:
            raise ConfigError(
                f"the PostgreSQL state database is at schema version {found}, newer than "
                f"this version of pets reads ({target}); run the newer pets against it, "
                "or give this server another database"
            )
        for step in migrations[found:]:
            await conn.execute(step)
        if found == 0:
            await conn.execute("INSERT INTO pets_schema VALUES (%s)", (target,))
        elif found < target:
            await conn.execute("UPDATE pets_schema SET version = %s", (target,))
    return found
