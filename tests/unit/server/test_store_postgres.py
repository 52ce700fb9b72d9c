"""What only the PostgreSQL store has: migrations, retries, two writers on one
database, a database restart; against a real PostgreSQL 15 (``tests/postgres.py``).

The interface guarantees themselves run on both backends in
``test_store_interface.py``.
"""

from __future__ import annotations

import asyncio
import itertools

import psycopg
import pytest
from psycopg import AsyncConnection

from pets.errors import ConfigError, ConflictError, UnavailableError
from pets.server.query_state import OPEN
from pets.server.store import ContributionRecord, QueryRecord
from pets.server.store.base import VerifyKey
from pets.server.store.pg_migrations import MIGRATIONS, SCHEMA_VERSION, migrate
from pets.server.store.pg_pool import RECONNECT_SECONDS
from pets.server.store.postgres import PostgresStore
from tests.postgres import PostgresServer

Q1 = "q-00000000000000b1"
_names = itertools.count()


@pytest.fixture
def url(postgres_server: PostgresServer) -> str:
    """A fresh database on the session's server."""
    name = f"pgstore_{next(_names)}"
    postgres_server.create_database(name)
    return postgres_server.url(name)


def _query(qid: str = Q1) -> QueryRecord:
    return QueryRecord(qid, "analyst", b"spec", OPEN, 1.0, 2.0, 2, 4)


def _contribution(holder: str, digest: bytes = b"d" * 32) -> ContributionRecord:
    return ContributionRecord(Q1, holder, digest, b"sealed")


def test_a_fresh_database_is_migrated_and_reopened_as_is(url: str) -> None:
    async def go() -> tuple[int, int]:
        store = await PostgresStore.open(url)
        await store.insert_query(_query())
        await store.close()
        again = await PostgresStore.open(url)  # already current: nothing to do
        queries = await again.load_queries()
        await again.close()
        async with await AsyncConnection.connect(url, autocommit=True) as conn:
            cur = await conn.execute("SELECT version FROM pets_schema")
            row = await cur.fetchone()
            assert row is not None
            return len(queries), row[0]

    assert asyncio.run(go()) == (1, SCHEMA_VERSION)


def test_an_older_database_is_migrated_step_by_step(url: str) -> None:
    async def go() -> list[str]:
        async with await AsyncConnection.connect(url, autocommit=True) as conn:
            assert await migrate(conn, MIGRATIONS[:1]) == 0  # a database of version 1
            await conn.execute(
                "INSERT INTO queries (id, analyst, spec, state, created, deadline, "
                "min_holders, vector_length) VALUES (%s, 'a', '', 1, 1, 2, 2, 4)",
                (Q1,),
            )
        store = await PostgresStore.open(url)
        try:
            await store.put_verify_key(Q1, VerifyKey(b"k" * 16, 0, (1,)))  # tables of 2, 3
            return [q.id for q in await store.load_queries()]
        finally:
            await store.close()

    assert asyncio.run(go()) == [Q1]


def test_a_database_of_a_newer_version_is_refused(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE pets_schema (version integer NOT NULL)")
        conn.execute("INSERT INTO pets_schema VALUES (%s)", (SCHEMA_VERSION + 1,))
    with pytest.raises(ConfigError, match="newer than this version of pets"):
        asyncio.run(PostgresStore.open(url))


def test_an_unreachable_database_is_a_clear_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="cannot connect to the PostgreSQL state database"):
        asyncio.run(PostgresStore.open(url.replace("/pgstore_", "/missing_"), timeout=1))


def test_a_serialization_failure_is_retried(url: str) -> None:
    attempts = []

    async def go() -> str:
        store = await PostgresStore.open(url)
        try:

            async def body(conn: AsyncConnection) -> str:
                attempts.append(1)
                if len(attempts) < 3:  # PostgreSQL itself reports SQLSTATE 40001
                    await conn.execute(
                        "DO $$ BEGIN RAISE EXCEPTION 'conflict' "
                        "USING ERRCODE = 'serialization_failure'; END $$"
                    )
                return "done"

            return await store._transact(body)
        finally:
            await store.close()

    assert asyncio.run(go()) == "done"
    assert len(attempts) == 3


def test_two_writers_committing_one_holder_at_once_count_it_once(url: str) -> None:
    """Two stores (as two replicas would) race to record the same (query, holder)
    with a different aggregate each: one wins, the other gets ConflictError, and
    the database holds exactly one record and the winner's aggregate."""

    async def go() -> None:
        first, second = await PostgresStore.open(url), await PostgresStore.open(url)
        try:
            await first.insert_query(_query())
            for _ in range(20):
                await first.commit_contributions([_contribution("base")], {Q1: b"base"})
                outcomes = await asyncio.gather(
                    first.commit_contributions([_contribution("h")], {Q1: b"one"}),
                    second.commit_contributions([_contribution("h")], {Q1: b"two"}),
                    return_exceptions=True,
                )
                errors = [o for o in outcomes if isinstance(o, BaseException)]
                assert len(errors) == 1 and isinstance(errors[0], ConflictError), outcomes
                won = 1 if isinstance(outcomes[0], BaseException) else 0
                winner, data = ((first, b"one"), (second, b"two"))[won]
                assert set(await second.contributions(Q1)) == {"base", "h"}
                # Each writer (replica) has its own shard: the winner's holds its aggregate.
                assert (await winner.own_shard(Q1))[0] == data
                assert sum(n for _, n in await second.shards(Q1)) == 2
                async with await AsyncConnection.connect(url, autocommit=True) as conn:
                    await conn.execute("DELETE FROM contributions")
                    await conn.execute("DELETE FROM aggregate_shards")
        finally:
            await first.close()
            await second.close()

    asyncio.run(go())


def test_two_writers_creating_one_budget_lose_no_spend(url: str) -> None:
    async def go() -> str | None:
        stores = [await PostgresStore.open(url) for _ in range(4)]
        try:
            await asyncio.gather(
                *(s.update_budget("alice", "d", lambda old: (old or "") + "x") for s in stores)
            )
            return await stores[0].get_budget("alice", "d")
        finally:
            for s in stores:
                await s.close()

    assert asyncio.run(go()) == "xxxx"


def test_a_database_restart_fails_calls_cleanly_then_reconnects(
    private_postgres_server: PostgresServer,
) -> None:
    private_postgres_server.create_database("restart")
    url = private_postgres_server.url("restart")

    async def go() -> None:
        store = await PostgresStore.open(url, timeout=1)
        try:
            await store.insert_query(_query())
            await store.commit_contributions([_contribution("a")], {Q1: b"acknowledged"})
            private_postgres_server.stop_server("immediate")  # a crash, as clients see it
            with pytest.raises(UnavailableError, match="state database is unavailable"):
                await store.commit_contributions([_contribution("b")], {Q1: b"lost"})
            with pytest.raises(UnavailableError):
                await store.get_aggregate(Q1)
            # A long outage: the pool's reconnection attempts back off meanwhile.
            await asyncio.sleep(2 * RECONNECT_SECONDS)
            private_postgres_server.start_server()
            # The pool replaces its dead connections at once (it gave up backing
            # off): the very next calls succeed, and what was acknowledged before
            # the crash is there.
            assert await store.get_aggregate(Q1) == b"acknowledged"
            assert set(await store.contributions(Q1)) == {"a"}
            await store.commit_contributions([_contribution("b")], {Q1: b"after"})
            assert await store.get_aggregate(Q1) == b"after"
        finally:
            await store.close()

    asyncio.run(go())


def test_a_database_belongs_to_the_first_server_that_opens_it(url: str) -> None:
    """A helper pointed at the leader's database is refused: one database per server."""

    async def go() -> None:
        leader = await PostgresStore.open(url, owner="leader/leader")
        await leader.close()
        again = await PostgresStore.open(url, owner="leader/leader")  # itself, restarted
        await again.close()
        with pytest.raises(ConfigError, match="belongs to leader/leader, not helper/helper-1"):
            await PostgresStore.open(url, owner="helper/helper-1")

    asyncio.run(go())
