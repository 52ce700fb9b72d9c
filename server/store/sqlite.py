"""The embedded store: SQLite (WAL, ``synchronous=FULL``) plus aggregate slot files.

:class:`SqliteStore` is the :class:`pets.server.store.Store` the servers use by
default (docs/ARCHITECTURE.md, "Storage"). It runs the synchronous
:class:`~pets.server.store.sqlite_database.SqliteDatabase` on one dedicated
thread, so SQLite never blocks the event loop and all writes are serialised.
The database's tables, version check and migrations are in
:mod:`pets.server.store.sqlite_schema`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from pets.errors import ConflictError
from pets.server.store.base import (
    ContributionRecord,
    QueryRecord,
    ReleaseRecord,
    Shard,
    VerifyKey,
)
from pets.server.store.sqlite_database import SqliteDatabase

T = TypeVar("T")


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

    async def put_setting_if_absent(self, key: str, value: bytes) -> bytes:
        return await self._run(self._db.put_setting_if_absent, key, value)

    async def reserve_linked_query(
        self, domain: str, query_id: str, now: float, window: float, limit: int
    ) -> bool:
        return await self._run(self._db.reserve_linked_query, domain, query_id, now, window, limit)

    async def linked_query_slot_frees(self, domain: str, now: float, window: float) -> float | None:
        return await self._run(self._db.linked_query_slot_frees, domain, now, window)

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
        caps: Mapping[str, int] | None = None,
    ) -> Mapping[str, int]:
        try:
            await self._run(self._db.commit_contributions, records, aggregates)
        except sqlite3.IntegrityError:
            raise ConflictError("a contribution of this batch is already recorded") from None
        return {}  # one writer: the leader's own count is exact

    # -- replicas: a SQLite file has one writer, its server's one process ----------
    async def replica(self) -> str | None:
        return None

    async def load_query(self, query_id: str) -> QueryRecord | None:
        return await self._run(self._db.load_query, query_id)

    async def own_shard(self, query_id: str) -> tuple[bytes | None, int]:
        return await self._run(self._db.own_shard, query_id)

    async def shards(self, query_id: str) -> list[Shard]:
        data, count = await self.own_shard(query_id)
        return [] if data is None else [(data, count)]

    async def close_query(self, query_id: str) -> QueryRecord | None:
        return await self._run(self._db.close_query, query_id)

    async def take_lease(self, query_id: str, seconds: float) -> bool:
        return True  # no other process writes this database

    async def renew_lease(self, query_id: str, seconds: float) -> bool:
        return True

    async def drop_lease(self, query_id: str) -> None:
        return None

    async def changes(self) -> AsyncIterator[str | None]:
        """Nothing: no other process changes this database."""
        return
        yield  # an async generator that ends at once

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
