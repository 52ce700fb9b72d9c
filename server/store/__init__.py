"""Durable server state behind one interface (:class:`Store`).

:func:`connect_store` picks the backend for a server's configuration: SQLite
in the server's state directory is the embedded default
(:mod:`pets.server.store.sqlite`, also :func:`open_store`); a
``postgresql://`` URL (``state`` in the server's TOML) selects
:mod:`pets.server.store.postgres`. A new backend implements
:class:`pets.server.store.base.Store` and gets one branch here
(docs/ARCHITECTURE.md, "Where to add a storage backend").
"""

from __future__ import annotations

from pathlib import Path

from pets.server.store.base import ContributionRecord, QueryRecord, Store
from pets.server.store.slots import QUERY_ID
from pets.server.store.sqlite import SqliteStore

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_store(database: Path) -> Store:
    """The SQLite store of a server whose database lives at ``database``."""
    return SqliteStore(database)


async def connect_store(
    state: Path | str, owner: str | None = None, replica: str | None = None
) -> Store:
    """The store at ``state``: a ``postgresql://`` URL, else a SQLite database path.

    ``owner`` (``"<role>/<name>"``) claims a PostgreSQL database for one server
    and refuses a database another server claimed (a SQLite file lives in its
    server's own ``state_dir``). ``replica`` names this process among the
    server's replicas on a PostgreSQL database (default: random per start)."""
    if isinstance(state, str) and state.startswith(POSTGRES_SCHEMES):
        from pets.server.store.postgres import PostgresStore  # psycopg only when used

        return await PostgresStore.open(state, owner=owner, replica=replica)
    return open_store(Path(state))


__all__ = [
    "QUERY_ID",
    "ContributionRecord",
    "QueryRecord",
    "SqliteStore",
    "Store",
    "connect_store",
    "open_store",
]
