"""SQL steps the PostgreSQL store shares between its transactions (issue 14).

Each function runs one or a few statements on a connection that is already in a
transaction (:func:`pets.server.store.pg_pool.transact`); the methods of
:class:`pets.server.store.postgres.PostgresStore` compose them, so a step two
methods need (ending a query, reading or writing a budget, the live releases of
a fingerprint) is written once. Bytes travel as ``%b`` (binary) parameters.
"""

from __future__ import annotations

from psycopg import AsyncConnection

from pets.server.query_state import TERMINAL
from pets.server.store.base import (
    QUERY_COLUMNS,
    AlreadyFinishedError,
    QueryRecord,
    ReleaseRecord,
)
from pets.server.store.pg_pool import Retry
from pets.server.store.pg_replicas import end_running


async def load_queries(conn: AsyncConnection) -> list[QueryRecord]:
    """Every stored query, oldest first (ties in ``id`` order)."""
    cur = await conn.execute(
        f"SELECT {QUERY_COLUMNS} FROM queries ORDER BY created, id",  # noqa: S608 (constant)
        binary=True,
    )
    return [QueryRecord.from_row(r) for r in await cur.fetchall()]


async def update_query(conn: AsyncConnection, q: QueryRecord) -> None:
    """Write the fields of ``q`` that change after a query is recorded."""
    await conn.execute(
        "UPDATE queries SET state = %s, failure = %s, failure_detail = %s, contributors = %s "
        "WHERE id = %s",
        (q.state, q.failure, q.failure_detail, list(q.contributors), q.id),
    )


async def end_query(conn: AsyncConnection, record: QueryRecord) -> None:
    """Record the query's final state and erase what it no longer needs; refused
    (:class:`AlreadyFinishedError`, the transaction rolls back) if another replica
    finished it first, so a release and its budget spend happen once."""
    q = record
    cur = await conn.execute(
        "UPDATE queries SET state = %s, failure = %s, failure_detail = %s, contributors = %s "
        "WHERE id = %s AND state <> ALL(%s)",
        (q.state, q.failure, q.failure_detail, list(q.contributors), q.id, list(TERMINAL)),
    )
    if cur.rowcount != 1:
        raise AlreadyFinishedError(f"query {q.id} is already finished")
    await end_running(conn, q.id)
    # The helpers have what they need (or the query failed): the leader keeps
    # who contributed and the digests, not the sealed seeds.
    await conn.execute(
        "UPDATE contributions SET sealed = '' WHERE query_id = %s AND sealed <> ''",
        (record.id,),
    )
    # The query ended: its Prio3 verify key is no longer needed (erased).
    await conn.execute("DELETE FROM verify_keys WHERE query_id = %s", (record.id,))


async def put_aggregate(conn: AsyncConnection, query_id: str, data: bytes | memoryview) -> None:
    """Store ``data`` as the query's aggregate, replacing the previous one."""
    await conn.execute(
        "INSERT INTO aggregates VALUES (%s, %b) "
        "ON CONFLICT (query_id) DO UPDATE SET data = excluded.data",
        (query_id, data),
    )


async def releases(conn: AsyncConnection, fingerprint: bytes, since: float) -> list[ReleaseRecord]:
    """The releases of ``fingerprint`` at or after ``since``, oldest first."""
    cur = await conn.execute(
        "SELECT fingerprint, query_id, contributor_set, contributors, released FROM releases "
        "WHERE fingerprint = %b AND released >= %s ORDER BY released, query_id",
        (fingerprint, since),
    )
    return [
        ReleaseRecord(bytes(r[0]), r[1], bytes(r[2]), int(r[3]), float(r[4]))
        for r in await cur.fetchall()
    ]


async def budget(conn: AsyncConnection, analyst: str, dataset: str, *, lock: bool) -> str | None:
    """The stored budget (a PrivacyFilter as JSON) of the pair; ``lock`` locks its row."""
    if lock:
        cur = await conn.execute(
            "SELECT filter FROM privacy_budgets WHERE analyst = %s AND dataset = %s FOR UPDATE",
            (analyst, dataset),
        )
    else:
        cur = await conn.execute(
            "SELECT filter FROM privacy_budgets WHERE analyst = %s AND dataset = %s",
            (analyst, dataset),
        )
    row = await cur.fetchone()
    return None if row is None else str(row[0])


async def put_budget(
    conn: AsyncConnection, analyst: str, dataset: str, old: str | None, new: str
) -> None:
    """Store ``new`` over ``old``, which this transaction read (and locked, if it
    existed). A first budget for the pair committed meanwhile by another
    transaction makes this one start again (:class:`Retry`), so no spend is
    overwritten."""
    if old is not None:
        await conn.execute(
            "UPDATE privacy_budgets SET filter = %s WHERE analyst = %s AND dataset = %s",
            (new, analyst, dataset),
        )
        return
    cur = await conn.execute(
        "INSERT INTO privacy_budgets VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
        (analyst, dataset, new),
    )
    if cur.rowcount != 1:
        raise Retry
