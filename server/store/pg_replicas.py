"""What lets several replicas of one server share a PostgreSQL database (issue 14, item 2).

The SQL steps of :class:`pets.server.store.postgres.PostgresStore` that exist
because several processes write the same database at once
(docs/ARCHITECTURE.md, "Storage", "Replicas"):

* **Shards.** Each replica folds contributions into its own row of
  ``aggregate_shards(query_id, replica, data, contributions)``, written in the
  group commit's transaction, so replicas never contend on one row (as Janus
  shards its batch aggregations). The leader merges the rows at finalisation
  with the protocol's own addition.
* **Open or not.** A group commit takes the query rows ``FOR SHARE`` and refuses
  a query that is no longer OPEN; closing takes the row ``FOR UPDATE`` (so it
  waits for every commit in progress, and every later commit sees it closed)
  and reads the contributor set from every replica's ``contributions`` rows:
  the set the finaliser sees is exactly what was acknowledged.
* **Leases.** ``leases(query_id, holder, expires)``: one conditional upsert takes
  a query's finalisation lease when it is free, expired or already ours; the
  holder renews it while finalising; finishing the query deletes it. Expiry is
  by the database's clock, so replicas' clocks need not agree.
* **Changes.** Inserting, closing and finishing a query ``NOTIFY`` the channel
  :data:`CHANNEL` with the query id, delivered at commit;
  :func:`changes` LISTENs on a connection of its own and yields None after every
  (re)connection, so its reader re-reads all queries (notifications sent while
  it was disconnected are lost: the poll on reconnect covers them).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence

import psycopg
from psycopg import AsyncConnection

from pets.runtime.backoff import Backoff
from pets.server.query_state import CLOSED, OPEN
from pets.server.store.base import (
    QUERY_COLUMNS,
    QueryFullError,
    QueryNotOpenError,
    QueryRecord,
    Shard,
)
from pets.server.store.pg_pool import Retry

log = logging.getLogger("pets.server.store")

#: The NOTIFY channel of query changes (payload: the query id).
CHANNEL = "pets_queries"
#: The database's clock, in Unix seconds (leases expire by it).
DB_NOW = "extract(epoch FROM clock_timestamp())"
#: The most replicas committing to one query at once for which the caps are exact
#: without serialising commits (see :func:`lock_open`).
MAX_CONCURRENT_WRITERS = 16
#: How long the listener waits for a notification before checking its connection.
LISTEN_CHECK_SECONDS = 5.0


async def notify(conn: AsyncConnection, query_id: str) -> None:
    """Tell every listening replica that ``query_id`` changed (sent at commit)."""
    await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, query_id))


async def load_query(conn: AsyncConnection, query_id: str) -> QueryRecord | None:
    cur = await conn.execute(
        f"SELECT {QUERY_COLUMNS} FROM queries WHERE id = %s",  # noqa: S608 (constant)
        (query_id,),
        binary=True,
    )
    row = await cur.fetchone()
    return None if row is None else QueryRecord.from_row(row)


async def lock_open(
    conn: AsyncConnection,
    query_ids: Sequence[str],
    caps: Mapping[str, int] | None = None,
    added: Mapping[str, int] | None = None,
    *,
    exclusive: bool = False,
) -> dict[str, int]:
    """Lock the queries' rows (in id order: no deadlock with a closer), refuse the
    batch if one is not OPEN (:class:`QueryNotOpenError`) or would pass its cap
    over every replica's shards (:class:`QueryFullError`); every replica's
    committed count per query, read once the lock is held.

    Far below every cap (the committed total plus this batch within
    1/:data:`MAX_CONCURRENT_WRITERS` of it) a share lock is enough: even that many
    replicas committing at once, each seeing the same total, stay within the cap.
    Nearer, the caller locks ``exclusive`` (``FOR UPDATE``, which waits for every
    commit in progress and keeps new ones out) and the exact total is checked: a
    share-locked commit that finds a total near raises :class:`NearCap` for its
    caller to start again exclusively (no lock upgrade, so no deadlock)."""
    added = added or {}
    mode = "UPDATE" if exclusive else "SHARE"
    # Two statements in one round trip: the second's snapshot is taken once the first
    # holds the lock (a subquery of the locking statement would not see the commits
    # it waited for).
    async with conn.pipeline():
        locked = await conn.execute(
            f"SELECT id, state FROM queries WHERE id = ANY(%s) ORDER BY id FOR {mode}",  # noqa: S608
            (list(query_ids),),
        )
        summed = await conn.execute(TOTALS, (list(query_ids),))
    states = {str(i): int(s) for i, s in await locked.fetchall()}
    shut = [q for q in query_ids if states.get(q) != OPEN]
    if shut:
        raise QueryNotOpenError(shut)
    seen = {str(q): int(n) for q, n in await summed.fetchall()}
    capped = [q for q in sorted(added) if caps and q in caps]
    if capped:
        assert caps is not None
        if not exclusive and any(
            (seen.get(q, 0) + added[q]) * MAX_CONCURRENT_WRITERS > caps[q] for q in capped
        ):
            raise NearCap
        full = {q: seen.get(q, 0) for q in capped if seen.get(q, 0) + added[q] > caps[q]}
        if full:
            raise QueryFullError(full)
    return seen


class NearCap(Retry):
    """A share-locked group commit found a query near its cap: start again, locking
    the rows exclusively."""


#: Every replica's committed contributions per query.
TOTALS = (
    "SELECT query_id, sum(contributions)::bigint FROM aggregate_shards "
    "WHERE query_id = ANY(%s) GROUP BY query_id"
)


async def write_shards(
    conn: AsyncConnection,
    replica: str,
    blobs: Sequence[tuple[str, bytes | memoryview]],
    added: Mapping[str, int],
) -> None:
    """Replace this replica's shards of the queries in ``blobs`` (sorted by query),
    adding ``added[query]`` to each shard's count."""
    async with conn.cursor() as cur:  # in the caller's pipeline, if any
        await cur.executemany(
            "INSERT INTO aggregate_shards VALUES (%s, %s, %b, %s) "
            "ON CONFLICT (query_id, replica) DO UPDATE SET data = excluded.data, "
            "contributions = aggregate_shards.contributions + excluded.contributions",
            [(q, replica, data, added.get(q, 0)) for q, data in blobs],
        )


async def own_shard(conn: AsyncConnection, query_id: str, replica: str) -> tuple[bytes | None, int]:
    cur = await conn.execute(
        "SELECT data, contributions FROM aggregate_shards WHERE query_id = %s AND replica = %s",
        (query_id, replica),
        binary=True,
    )
    row = await cur.fetchone()
    return (None, 0) if row is None else (bytes(row[0]), int(row[1]))


async def shards(conn: AsyncConnection, query_id: str) -> list[Shard]:
    cur = await conn.execute(
        "SELECT data, contributions FROM aggregate_shards WHERE query_id = %s ORDER BY replica",
        (query_id,),
        binary=True,
    )
    return [(bytes(d), int(n)) for d, n in await cur.fetchall()]


async def close_query(conn: AsyncConnection, query_id: str) -> QueryRecord | None:
    """CLOSED with every replica's contributors (in code-point order, as Python's
    ``sorted``), if still OPEN; the stored record either way."""
    cur = await conn.execute("SELECT state FROM queries WHERE id = %s FOR UPDATE", (query_id,))
    row = await cur.fetchone()
    if row is None:
        return None
    if int(row[0]) == OPEN:
        await conn.execute(
            "UPDATE queries SET state = %s, contributors = ARRAY(SELECT holder FROM "
            'contributions WHERE query_id = %s ORDER BY holder COLLATE "C") WHERE id = %s',
            (CLOSED, query_id, query_id),
        )
        await notify(conn, query_id)
    return await load_query(conn, query_id)


async def end_running(conn: AsyncConnection, query_id: str) -> None:
    """A finished query's running shards and lease are no longer needed."""
    await conn.execute("DELETE FROM aggregate_shards WHERE query_id = %s", (query_id,))
    await conn.execute("DELETE FROM leases WHERE query_id = %s", (query_id,))
    await notify(conn, query_id)


async def take_lease(conn: AsyncConnection, query_id: str, replica: str, seconds: float) -> bool:
    cur = await conn.execute(
        f"INSERT INTO leases VALUES (%s, %s, {DB_NOW} + %s) "  # noqa: S608 (constant)
        "ON CONFLICT (query_id) DO UPDATE SET holder = excluded.holder, "
        "expires = excluded.expires "
        f"WHERE leases.holder = excluded.holder OR leases.expires < {DB_NOW} "
        "RETURNING holder",
        (query_id, replica, seconds),
    )
    return await cur.fetchone() is not None


async def renew_lease(conn: AsyncConnection, query_id: str, replica: str, seconds: float) -> bool:
    cur = await conn.execute(
        f"UPDATE leases SET expires = {DB_NOW} + %s "  # noqa: S608 (constant)
        "WHERE query_id = %s AND holder = %s",
        (seconds, query_id, replica),
    )
    return cur.rowcount == 1


async def drop_lease(conn: AsyncConnection, query_id: str, replica: str) -> None:
    await conn.execute(
        "DELETE FROM leases WHERE query_id = %s AND holder = %s", (query_id, replica)
    )


async def changes(conninfo: str) -> AsyncIterator[str | None]:
    """Query ids as other writers' transactions NOTIFY them; None after every
    (re)connection. Reconnects with backoff (0.2 s doubling to 5 s) for ever."""
    backoff = Backoff(0.2, 5.0)
    while True:
        try:
            conn = await AsyncConnection.connect(conninfo, autocommit=True)
        except psycopg.Error as exc:
            log.warning("cannot listen for query changes; retrying", extra={"error": repr(exc)})
            await backoff.sleep()
            continue
        try:
            await conn.execute(f"LISTEN {CHANNEL}")
            backoff = Backoff(0.2, 5.0)
            yield None
            while True:
                async for note in conn.notifies(timeout=LISTEN_CHECK_SECONDS):
                    yield note.payload
                await conn.execute("SELECT 1")  # a dead connection raises here
        except psycopg.Error as exc:
            log.warning("query-change listener lost its connection", extra={"error": repr(exc)})
        finally:
            await conn.close()
        await asyncio.sleep(0)
        await backoff.sleep()
