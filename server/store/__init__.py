"""Durable server state behind one interface (:class:`Store`).

:func:`open_store` picks the backend for a server's configuration: SQLite
in the server's state directory is the embedded default
(:mod:`pets.server.store.sqlite`). A new backend implements
:class:`pets.server.store.base.Store` and gets one branch here
(docs/ARCHITECTURE.md, "Where to add a storage backend").
"""

from __future__ import annotations

from pathlib import Path

from pets.server.store.base import ContributionRecord, QueryRecord, Store
from pets.server.store.slots import QUERY_ID
from pets.server.store.sqlite import SqliteStore


def open_store(database: Path) -> Store:
    """The store of a server whose database lives at ``database``."""
    return SqliteStore(database)


__all__ = ["QUERY_ID", "ContributionRecord", "QueryRecord", "SqliteStore", "Store", "open_store"]
