"""The PostgreSQL store's connections: pool, owner claim and transaction retries (issue 14).

:class:`pets.server.store.postgres.PostgresStore` runs every call through
:func:`transact` on the pool :func:`open_pool` returns, so the connection
handling lives here and the store keeps only its SQL (docs/ARCHITECTURE.md,
"Storage", "PostgreSQL"):

* the pool (:class:`psycopg_pool.AsyncConnectionPool`, autocommit) checks a
  connection idle for over :data:`CHECK_IDLE_SECONDS` before handing it out
  (:func:`check`), so after a database restart the next call reconnects; a
  reconnection attempt gives up after :data:`RECONNECT_SECONDS`;
* every session commits with ``synchronous_commit`` at least ``on``
  (:func:`configure`);
* the first server to open a database owns it (:func:`claim`), so a leader and
  a helper cannot share one by a configuration slip;
* a transaction that fails on a serialization failure or a deadlock (SQLSTATE
  40001, 40P01) is retried with :class:`pets.runtime.backoff.Backoff`, a few
  times, as the PostgreSQL manual advises (section 13.2);
* a lost connection or an unreachable database raises
  :class:`~pets.errors.UnavailableError` (gRPC ``UNAVAILABLE``: the caller
  retries), never a bare exception.
"""

from __future__ import annotations

import logging
import select
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg
from psycopg import AsyncConnection, errors
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from pets.errors import ConfigError, UnavailableError
from pets.runtime.backoff import Backoff
from pets.server.store.pg_migrations import SCHEMA_VERSION, migrate

log = logging.getLogger("pets.server.store")
# The pool logs each failed reconnection attempt as a multi-line plain-text warning;
# the servers report an unreachable database themselves (UnavailableError, in their
# JSON log lines), so only the pool's errors are let through.
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)

T = TypeVar("T")

# A transaction is tried this many times when PostgreSQL asks for a retry.
ATTEMPTS = 8
# How long a call waits for a connection before failing with UNAVAILABLE.
CONNECTION_TIMEOUT_SECONDS = 5.0
POOL_MAX_SIZE = 8
# psycopg_pool retries a failed connection with a delay that doubles without a cap
# until its reconnect_timeout (5 min by default): after a long outage the next
# attempt could come a minute after the database is back. Giving up after a few
# seconds instead lets the next call start a fresh attempt at once.
RECONNECT_SECONDS = 4.0
# The settings key naming the server a database belongs to ("<role>/<name>").
OWNER_SETTING = "pets.owner"


class Retry(Exception):
    """Raised inside a transaction that lost a race it can win by starting again."""


RETRYABLE = (errors.SerializationFailure, errors.DeadlockDetected, Retry)


def reason(exc: BaseException) -> str:
    """The first line of a driver error: the cause, without connection parameters' values."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


async def open_pool(
    conninfo: str,
    *,
    owner: str | None = None,
    max_size: int = POOL_MAX_SIZE,
    timeout: float = CONNECTION_TIMEOUT_SECONDS,
) -> AsyncConnectionPool:
    """Open the pool, apply the missing migrations and claim the database for ``owner``.

    Raises :class:`ConfigError` when the database cannot be reached, is at a
    newer schema version or belongs to another server (the pool is closed then).
    """
    pool: AsyncConnectionPool = AsyncConnectionPool(
        conninfo,
        min_size=1,
        max_size=max_size,
        kwargs={"autocommit": True},
        check=check,
        configure=configure,
        reset=_returned,
        timeout=timeout,
        open=False,
        name="pets-state",
        reconnect_timeout=RECONNECT_SECONDS,
    )
    try:
        await pool.open(wait=True, timeout=timeout)
    except (PoolTimeout, psycopg.Error) as exc:
        await pool.close()
        raise ConfigError(
            f"cannot connect to the PostgreSQL state database ({reason(exc)}); check "
            "`state` in the server config"
        ) from None
    try:
        async with pool.connection() as conn:
            before = await migrate(conn)
            if owner is not None:
                await claim(conn, owner)
    except BaseException:
        await pool.close()
        raise
    if before != SCHEMA_VERSION:
        log.info("state database migrated", extra={"from": before, "to": SCHEMA_VERSION})
    return pool


async def transact(pool: AsyncConnectionPool, body: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run ``body`` in one transaction, retried on serialization failures and
    deadlocks; an unreachable database raises UnavailableError."""
    backoff = Backoff(0.005, 0.5)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            async with pool.connection() as conn, conn.transaction():
                return await body(conn)
        except RETRYABLE as exc:
            if attempt == ATTEMPTS:
                raise UnavailableError(
                    f"the state database kept refusing the transaction ({reason(exc)})"
                ) from None
            await backoff.sleep()
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as exc:
            raise UnavailableError(f"the state database is unavailable ({reason(exc)})") from exc
    raise AssertionError("unreachable")  # the loop returns or raises


async def claim(conn: AsyncConnection, owner: str) -> None:
    """Record ``owner`` as the database's server, or refuse if another server is."""
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO settings VALUES (%s, %b) ON CONFLICT DO NOTHING",
            (OWNER_SETTING, owner.encode()),
        )
        cur = await conn.execute("SELECT value FROM settings WHERE key = %s", (OWNER_SETTING,))
        row = await cur.fetchone()
    recorded = bytes(row[0]).decode(errors="replace") if row is not None else owner
    if recorded != owner:
        raise ConfigError(
            f"this PostgreSQL state database belongs to {recorded}, not {owner}: every server "
            "needs a database of its own (a leader and a helper sharing one would put both "
            "aggregate shares in one place)"
        )


# A connection returned to the pool less than this long ago is lent without the
# check's round trip unless its socket has something to read (an idle session gets
# nothing, except the server's goodbye or the EOF of a closed connection: then it is
# checked, fails and is replaced); an older one is always checked. Either way, after
# a database restart the next call reconnects instead of failing.
CHECK_IDLE_SECONDS = 1.0
_returned_at: weakref.WeakKeyDictionary[AsyncConnection, float] = weakref.WeakKeyDictionary()


async def _returned(conn: AsyncConnection) -> None:
    _returned_at[conn] = time.monotonic()


async def check(conn: AsyncConnection) -> None:
    """The pool's check before lending ``conn``: skipped if it was in use a moment ago
    and its socket is quiet."""
    recent = time.monotonic() - _returned_at.get(conn, float("-inf")) <= CHECK_IDLE_SECONDS
    if recent and not _has_input(conn):
        return
    await AsyncConnectionPool.check_connection(conn)


def _has_input(conn: AsyncConnection) -> bool:
    """Whether the server sent an idle session anything (or closed it)."""
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.OperationalError):
        return True  # no usable socket: let the real check decide
    return bool(readable)


async def configure(conn: AsyncConnection) -> None:
    """Make every commit durable before it returns, whatever the database's default:
    ``synchronous_commit = off`` would let an acknowledged contribution vanish in a
    crash. Stronger settings (``remote_write``, ``remote_apply``) are kept."""
    cur = await conn.execute("SHOW synchronous_commit")
    row = await cur.fetchone()
    if row is not None and row[0] == "off":
        await conn.execute("SET synchronous_commit = on")
