"""The PostgreSQL store: one server's state in a PostgreSQL 15+ database (issue 14).

Chosen by ``state = "postgresql://..."`` in a server's TOML
(:func:`pets.server.store.connect_store`); SQLite stays the default. It keeps
the guarantees of :class:`pets.server.store.base.Store` with PostgreSQL's own
means, and the same tables as the SQLite store, except that the aggregates are
``bytea`` rows in the database (``aggregates``) instead of slot files, since
replicas of a server share no disk (docs/ARCHITECTURE.md, "Storage"):

* every mutating method is one transaction, committed with
  ``synchronous_commit`` at least ``on`` (a database default of ``off`` is
  overridden for the store's sessions): acknowledged means on the server's
  disk (and on its synchronous standbys, if the operator configured any);
* ``contributions`` has the primary key ``(query_id, holder)``: a second
  record of a holder fails the whole group commit with
  :class:`~pets.errors.ConflictError`, including when two writers insert it at
  the same moment (the second waits on the index entry, then fails);
* a transaction that fails on a serialization failure or a deadlock
  (SQLSTATE 40001, 40P01) is retried with :class:`pets.runtime.backoff.Backoff`,
  a few times, as the PostgreSQL manual advises (section 13.2);
* a lost connection or an unreachable database raises
  :class:`~pets.errors.UnavailableError` (gRPC ``UNAVAILABLE``: the caller
  retries), never a bare exception; the pool checks a connection before
  handing it out, so after a database restart the next call reconnects.

Several replicas of one server may share the database (issue 14, item 2):
each writes its own shard of a running aggregate, closing and finishing are
conditional on the query's stored state, a lease picks one finaliser and
query changes are NOTIFYed; those steps are in
:mod:`pets.server.store.pg_replicas`.

Connections, the owner claim and the retry loop are in
:mod:`pets.server.store.pg_pool` (every method runs its transaction through
:func:`~pets.server.store.pg_pool.transact`); SQL steps shared by several
methods are in :mod:`pets.server.store.pg_queries`; migrations
(:mod:`pets.server.store.pg_migrations`) run when the store opens. Bytes travel
in binary (``%b`` parameters, binary results), so an 80 MB aggregate is not
hex-encoded on the way.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TypeVar

from psycopg import AsyncConnection, errors
from psycopg_pool import AsyncConnectionPool

from pets.errors import ConflictError, InvalidInputError
from pets.server.store import pg_queries as sql
from pets.server.store import pg_replicas as rep
from pets.server.store.base import (
    QUERY_COLUMNS,
    ContributionRecord,
    QueryRecord,
    ReleaseRecord,
    Shard,
    VerifyKey,
)
from pets.server.store.pg_pool import (
    CONNECTION_TIMEOUT_SECONDS,
    POOL_MAX_SIZE,
    open_pool,
    transact,
)

T = TypeVar("T")
# The first key of the per-domain linked-query budget's advisory locks ("pets";
# the second is hashtext(domain)): the two-key form, apart from the migration lock.
_LINKED_LOCK = 0x70657473


class PostgresStore:
    """:class:`pets.server.store.Store` over a PostgreSQL database (open with :meth:`open`)."""

    def __init__(
        self, pool: AsyncConnectionPool, replica: str | None = None, conninfo: str = ""
    ) -> None:
        self._pool = pool
        self._conninfo = conninfo or str(pool.conninfo)  # the change listener's connection
        # This process's shard and lease name: configured, or fresh per start (a
        # restarted replica then starts a new shard; the old one is merged too).
        self.replica_id = replica or "r-" + secrets.token_hex(6)

    @classmethod
    async def open(
        cls,
        conninfo: str,
        *,
        owner: str | None = None,
        max_size: int = POOL_MAX_SIZE,
        timeout: float = CONNECTION_TIMEOUT_SECONDS,
        replica: str | None = None,
    ) -> PostgresStore:
        """Connect, apply the missing migrations and return the store.

        ``conninfo`` is a libpq URL or key/value string (``PGPASSWORD`` and
        ``~/.pgpass`` work as usual). ``owner`` names the server
        (``"<role>/<name>"``): the first to open a database owns it, and another
        server is refused, so a leader and a helper cannot share a database by a
        configuration slip (the one-honest-server model). ``replica`` names this
        process among the server's replicas (default: a fresh random id). Raises
        :class:`ConfigError` when the database cannot be reached, is at a newer
        schema version or belongs to another server.
        """
        pool = await open_pool(conninfo, owner=owner, max_size=max_size, timeout=timeout)
        return cls(pool, replica, conninfo)

    async def close(self) -> None:
        await self._pool.close()

    async def _transact(self, body: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run ``body`` in one transaction, retried on serialization failures and
        deadlocks; an unreachable database raises UnavailableError."""
        return await transact(self._pool, body)

    # -- settings -----------------------------------------------------------
    async def get_setting(self, key: str) -> bytes | None:
        async def body(conn: AsyncConnection) -> bytes | None:
            cur = await conn.execute("SELECT value FROM settings WHERE key = %s", (key,))
            row = await cur.fetchone()
            return None if row is None else bytes(row[0])

        return await self._transact(body)

    async def put_setting(self, key: str, value: bytes) -> None:
        async def body(conn: AsyncConnection) -> None:
            await conn.execute(
                "INSERT INTO settings VALUES (%s, %b) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

        await self._transact(body)

    async def put_setting_if_absent(self, key: str, value: bytes) -> bytes:
        async def body(conn: AsyncConnection) -> bytes:
            await conn.execute(
                "INSERT INTO settings VALUES (%s, %b) ON CONFLICT (key) DO NOTHING",
                (key, value),
            )
            cur = await conn.execute("SELECT value FROM settings WHERE key = %s", (key,))
            row = await cur.fetchone()
            assert row is not None  # inserted above or by the writer that won
            return bytes(row[0])

        return await self._transact(body)

    # -- the per-domain linked-query budget -----------------------------------
    async def reserve_linked_query(
        self, domain: str, query_id: str, now: float, window: float, limit: int
    ) -> bool:
        async def body(conn: AsyncConnection) -> bool:
            # One counter per domain across replicas: a transaction-scoped advisory
            # lock (the two-key form, its own key space) serialises the count.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LINKED_LOCK, domain)
            )
            await conn.execute(
                "DELETE FROM linked_queries WHERE domain = %s AND reserved <= %s",
                (domain, now - window),
            )
            cur = await conn.execute(
                "SELECT 1 FROM linked_queries WHERE domain = %s AND query_id = %s",
                (domain, query_id),
            )
            if await cur.fetchone() is not None:
                return True
            cur = await conn.execute(
                "SELECT count(*) FROM linked_queries WHERE domain = %s", (domain,)
            )
            row = await cur.fetchone()
            if row is not None and int(row[0]) >= limit:
                return False
            await conn.execute(
                "INSERT INTO linked_queries VALUES (%s, %s, %s)", (domain, query_id, now)
            )
            return True

        return await self._transact(body)

    async def linked_query_slot_frees(self, domain: str, now: float, window: float) -> float | None:
        async def body(conn: AsyncConnection) -> float | None:
            cur = await conn.execute(
                "SELECT min(reserved) FROM linked_queries WHERE domain = %s AND reserved > %s",
                (domain, now - window),
            )
            row = await cur.fetchone()
            return None if row is None or row[0] is None else float(row[0]) + window

        return await self._transact(body)

    # -- queries ------------------------------------------------------------
    async def insert_query(self, record: QueryRecord) -> None:
        q = record

        async def body(conn: AsyncConnection) -> None:
            await conn.execute(
                f"INSERT INTO queries ({QUERY_COLUMNS}) "  # noqa: S608 (constant)
                "VALUES (%s, %s, %b, %s, %s, %s, %s, %s, %s, %s, %s, %s, %b, %b)",
                q.to_row(),
            )
            await rep.notify(conn, q.id)

        try:
            await self._transact(body)
        except errors.UniqueViolation:
            raise ConflictError(f"query {q.id} is already recorded") from None

    async def update_query(self, record: QueryRecord) -> None:
        async def body(conn: AsyncConnection) -> None:
            await sql.update_query(conn, record)

        await self._transact(body)

    async def load_queries(self) -> list[QueryRecord]:
        return await self._transact(sql.load_queries)

    # -- the leader's contributions -----------------------------------------
    async def contributions(self, query_id: str) -> dict[str, bytes]:
        async def body(conn: AsyncConnection) -> dict[str, bytes]:
            cur = await conn.execute(
                "SELECT holder, digest FROM contributions WHERE query_id = %s",
                (query_id,),
                binary=True,
            )
            return {h: bytes(d) for h, d in await cur.fetchall()}

        return await self._transact(body)

    async def commit_contributions(
        self,
        records: Sequence[ContributionRecord],
        aggregates: Mapping[str, bytes | memoryview],
        caps: Mapping[str, int] | None = None,
    ) -> Mapping[str, int]:
        """The group commit: ``records`` and this replica's new shards in one
        transaction, refused if a query is no longer open or would pass its cap
        (:func:`pg_replicas.lock_open`); every replica's count."""
        rows = [(r.query_id, r.holder, r.digest, r.sealed) for r in records]
        added = dict(Counter(r.query_id for r in records))
        # A fixed order of the rows locked and written: two writers cannot deadlock.
        blobs = sorted(aggregates.items())
        # The queries receiving contributions must be open; a shard rewritten with no
        # contribution (a linked query's joined share, after its close) needs no lock.
        queries = sorted(added)

        exclusive = False  # near a cap: lock the queries' rows FOR UPDATE

        async def body(conn: AsyncConnection) -> Mapping[str, int]:
            nonlocal exclusive
            seen: dict[str, int] = {}
            try:
                if queries:
                    seen = await rep.lock_open(conn, queries, caps, added, exclusive=exclusive)
            except rep.NearCap:
                exclusive = True
                raise
            async with conn.pipeline():  # both writes in one round trip
                async with conn.cursor() as cur:
                    await cur.executemany("INSERT INTO contributions VALUES (%s, %s, %b, %b)", rows)
                await rep.write_shards(conn, self.replica_id, blobs, added)
            # Every replica's count as this commit saw it, with its own.
            return {q: seen.get(q, 0) + added.get(q, 0) for q in queries}

        try:
            return await self._transact(body)
        except errors.UniqueViolation:
            raise ConflictError("a contribution of this batch is already recorded") from None

    async def sealed_contributions(self, query_id: str, holders: Iterable[str]) -> list[bytes]:
        wanted = list(holders)

        async def body(conn: AsyncConnection) -> dict[str, bytes]:
            cur = await conn.execute(
                "SELECT holder, sealed FROM contributions WHERE query_id = %s AND holder = ANY(%s)",
                (query_id, wanted),
                binary=True,
            )
            return {h: bytes(s) for h, s in await cur.fetchall()}

        found = await self._transact(body)
        return [found[h] for h in wanted]

    # -- replicas (pets.server.store.pg_replicas) ----------------------------
    async def replica(self) -> str | None:
        return self.replica_id

    async def load_query(self, query_id: str) -> QueryRecord | None:
        async def body(conn: AsyncConnection) -> QueryRecord | None:
            return await rep.load_query(conn, query_id)

        return await self._transact(body)

    async def own_shard(self, query_id: str) -> tuple[bytes | None, int]:
        async def body(conn: AsyncConnection) -> tuple[bytes | None, int]:
            return await rep.own_shard(conn, query_id, self.replica_id)

        return await self._transact(body)

    async def shards(self, query_id: str) -> list[Shard]:
        async def body(conn: AsyncConnection) -> list[Shard]:
            return await rep.shards(conn, query_id)

        return await self._transact(body)

    async def close_query(self, query_id: str) -> QueryRecord | None:
        async def body(conn: AsyncConnection) -> QueryRecord | None:
            return await rep.close_query(conn, query_id)

        return await self._transact(body)

    async def take_lease(self, query_id: str, seconds: float) -> bool:
        async def body(conn: AsyncConnection) -> bool:
            return await rep.take_lease(conn, query_id, self.replica_id, seconds)

        return await self._transact(body)

    async def renew_lease(self, query_id: str, seconds: float) -> bool:
        async def body(conn: AsyncConnection) -> bool:
            return await rep.renew_lease(conn, query_id, self.replica_id, seconds)

        return await self._transact(body)

    async def drop_lease(self, query_id: str) -> None:
        async def body(conn: AsyncConnection) -> None:
            await rep.drop_lease(conn, query_id, self.replica_id)

        await self._transact(body)

    def changes(self) -> AsyncIterator[str | None]:
        return rep.changes(self._conninfo)

    # -- aggregates, both roles ----------------------------------------------
    async def get_aggregate(self, query_id: str) -> bytes | None:
        """The final share; before the query finishes, the running aggregate if one
        replica wrote it (else this replica's shard: several are merged by the
        leader's finalisation, not here)."""

        async def body(conn: AsyncConnection) -> bytes | None:
            cur = await conn.execute(
                "SELECT data FROM aggregates WHERE query_id = %s", (query_id,), binary=True
            )
            row = await cur.fetchone()
            if row is not None:
                return bytes(row[0])
            running = await rep.shards(conn, query_id)
            if len(running) == 1:
                return running[0][0]
            return (await rep.own_shard(conn, query_id, self.replica_id))[0]

        return await self._transact(body)

    async def finish_query(
        self, record: QueryRecord, aggregate: bytes | memoryview | None, drop: bool = False
    ) -> None:
        async def body(conn: AsyncConnection) -> None:
            final = aggregate
            if final is None and not drop:
                # "Keep the running aggregate": only one shard can be kept as it is
                # (several are merged by the protocol, and passed as ``aggregate``).
                running = await rep.shards(conn, record.id)
                if len(running) > 1:
                    raise InvalidInputError(
                        f"query {record.id} has {len(running)} shards: finish it with their merge"
                    )
                final = running[0][0] if running else None
            await sql.end_query(conn, record)
            if final is not None:
                await sql.put_aggregate(conn, record.id, final)
            elif drop:
                await conn.execute("DELETE FROM aggregates WHERE query_id = %s", (record.id,))

        await self._transact(body)

    # -- Prio3: the per-query verify key and the refused contributions --------
    async def put_verify_key(self, query_id: str, key: VerifyKey) -> None:
        async def body(conn: AsyncConnection) -> None:
            await conn.execute(
                "INSERT INTO verify_keys (query_id, verify_key, aggregator_id, bounds) "
                "VALUES (%s, %b, %s, %s) ON CONFLICT (query_id) "
                "DO UPDATE SET verify_key = excluded.verify_key, "
                "aggregator_id = excluded.aggregator_id, bounds = excluded.bounds",
                (query_id, key.key, key.aggregator_id, json.dumps(list(key.bounds))),
            )

        await self._transact(body)

    async def get_verify_key(self, query_id: str) -> VerifyKey | None:
        async def body(conn: AsyncConnection) -> VerifyKey | None:
            cur = await conn.execute(
                "SELECT verify_key, aggregator_id, bounds FROM verify_keys WHERE query_id = %s",
                (query_id,),
            )
            row = await cur.fetchone()
            if row is None:
                return None
            return VerifyKey(bytes(row[0]), int(row[1]), tuple(json.loads(row[2])))

        return await self._transact(body)

    async def drop_verify_key(self, query_id: str) -> None:
        async def body(conn: AsyncConnection) -> None:
            await conn.execute("DELETE FROM verify_keys WHERE query_id = %s", (query_id,))

        await self._transact(body)

    async def record_rejection(self, query_id: str, holder: str, reason: str) -> None:
        async def body(conn: AsyncConnection) -> None:
            await conn.execute(
                "INSERT INTO rejections VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (query_id, holder, reason),
            )

        await self._transact(body)

    async def rejections(self, query_id: str) -> dict[str, str]:
        async def body(conn: AsyncConnection) -> dict[str, str]:
            cur = await conn.execute(
                "SELECT holder, reason FROM rejections WHERE query_id = %s", (query_id,)
            )
            return {str(h): str(r) for h, r in await cur.fetchall()}

        return await self._transact(body)

    # -- privacy budgets (pets.dp.PrivacyFilter as exact JSON) ------------------
    async def get_budget(self, analyst: str, dataset: str) -> str | None:
        async def body(conn: AsyncConnection) -> str | None:
            return await sql.budget(conn, analyst, dataset, lock=False)

        return await self._transact(body)

    async def list_budgets(self) -> list[str]:
        async def body(conn: AsyncConnection) -> list[str]:
            cur = await conn.execute("SELECT filter FROM privacy_budgets ORDER BY analyst, dataset")
            return [str(r[0]) for r in await cur.fetchall()]

        return await self._transact(body)

    async def update_budget(
        self, analyst: str, dataset: str, update: Callable[[str | None], str]
    ) -> str:
        """Read-modify-write one budget in one transaction, the row locked; ``update``
        may raise (no change) and may run again if a concurrent first write wins."""

        async def body(conn: AsyncConnection) -> str:
            old = await sql.budget(conn, analyst, dataset, lock=True)
            new = update(old)
            await sql.put_budget(conn, analyst, dataset, old, new)
            return new

        return await self._transact(body)

    async def finish_query_spending(
        self,
        record: QueryRecord,
        aggregate: bytes | memoryview,
        analyst: str,
        dataset: str,
        spend: Callable[[str | None], str],
    ) -> None:
        """:meth:`finish_query` with ``aggregate`` and, in the same transaction, the
        budget ``spend`` returns from the stored one; if ``spend`` raises, nothing
        changes."""

        async def body(conn: AsyncConnection) -> None:
            old = await sql.budget(conn, analyst, dataset, lock=True)
            await sql.put_budget(conn, analyst, dataset, old, spend(old))
            await sql.end_query(conn, record)
            await sql.put_aggregate(conn, record.id, aggregate)

        await self._transact(body)

    # -- releases (pets.server.release_policy) ------------------------------------
    async def releases(self, fingerprint: bytes, since: float) -> list[ReleaseRecord]:
        async def body(conn: AsyncConnection) -> list[ReleaseRecord]:
            return await sql.releases(conn, fingerprint, since)

        return await self._transact(body)

    async def record_release(
        self,
        release: ReleaseRecord,
        since: float,
        check: Callable[[list[ReleaseRecord]], None],
    ) -> None:
        """Forget releases before ``since``, ``check`` the fingerprint's others, record
        ``release``: one transaction, serialised per fingerprint by an advisory lock
        (two replicas releasing the same fingerprint at once check one after the
        other)."""
        r = release

        async def body(conn: AsyncConnection) -> None:
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(encode(%b, 'hex'), 0))",
                (r.fingerprint,),
            )
            await conn.execute("DELETE FROM releases WHERE released < %s", (since,))
            others = await sql.releases(conn, r.fingerprint, since)
            check([p for p in others if p.query_id != r.query_id])
            await conn.execute(
                "INSERT INTO releases VALUES (%b, %s, %b, %s, %s) ON CONFLICT DO NOTHING",
                (r.fingerprint, r.query_id, r.contributor_set, r.contributors, r.released),
            )

        await self._transact(body)
