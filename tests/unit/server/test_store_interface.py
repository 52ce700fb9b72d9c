"""The store interface's guarantees, as the servers rely on them, checked through the
async :class:`pets.server.store.Store` calls only.

Every test runs against each backend in :data:`BACKENDS`: SQLite, and PostgreSQL
on the real server of the ``postgres_server`` fixture (``tests/postgres.py``), a
fresh database per test. A new backend joins the list and must pass the same
tests.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from pets.errors import ConflictError
from pets.server.query_state import CLOSED, FAILED, OPEN, READY
from pets.server.store import ContributionRecord, QueryRecord, Store, connect_store
from pets.server.store.base import ReleaseRecord, VerifyKey

BACKENDS = ("sqlite", "postgres")
Q1, Q2 = "q-00000000000000a1", "q-00000000000000a2"
_databases = itertools.count()

StoreFactory = Callable[[], Awaitable[Store]]


def state_location(request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> Path | str:
    """Where a fresh store of ``backend`` lives: a SQLite path, or a new PostgreSQL
    database's URL (only the postgres backend starts the server)."""
    if backend == "sqlite":
        return tmp_path / "pets.sqlite"
    server = request.getfixturevalue("postgres_server")
    name = f"store_{next(_databases)}"
    server.create_database(name)
    return f"postgresql:///{name}?host={server.socket_dir}&port={server.port}&user=postgres"


@pytest.fixture(params=BACKENDS)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Opens a store on the same fresh state each time it is called."""
    location = state_location(request, tmp_path, request.param)
    return lambda: connect_store(location)


def _run(make_store: StoreFactory, body: Callable[[Store], Awaitable[None]]) -> None:
    async def go() -> None:
        store = await make_store()
        try:
            await body(store)
        finally:
            await store.close()

    asyncio.run(go())


def _record(qid: str = Q1, **changes: object) -> QueryRecord:
    rec = QueryRecord(
        id=qid,
        analyst="alice",
        spec=b"\x0a\x02{}",
        state=OPEN,
        created=1.5,
        deadline=61.5,
        min_holders=2,
        vector_length=4,
        proven_predicates=("accreditation >= 2",),
        fingerprint=b"\x01" * 32,
        helper_keys=b"keys",
    )
    return rec.with_state(rec.state, **changes)


def _contribution(qid: str, holder: str, sealed: bytes = b"") -> ContributionRecord:
    return ContributionRecord(qid, holder, holder.encode().ljust(32, b"\0"), sealed)


def test_queries_and_settings_round_trip(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        assert await store.get_setting("seal-private-key") is None
        await store.put_setting("seal-private-key", b"k" * 32)
        await store.put_setting("seal-private-key", b"j" * 32)
        assert await store.get_setting("seal-private-key") == b"j" * 32
        # put_setting_if_absent keeps what is stored and says what that is
        assert await store.put_setting_if_absent("first", b"one") == b"one"
        assert await store.put_setting_if_absent("first", b"two") == b"one"
        assert await store.get_setting("first") == b"one"
        await store.insert_query(_record(Q2, created=2.0))
        await store.insert_query(_record(Q1))
        closed = _record(Q1).with_state(CLOSED, contributors=("a", "b"))
        await store.update_query(closed)
        assert await store.load_queries() == [closed, _record(Q2, created=2.0)]  # oldest first

    _run(make_store, body)


def test_a_group_commit_records_contributions_with_their_aggregates(
    make_store: StoreFactory,
) -> None:
    async def body(store: Store) -> None:
        for qid in (Q1, Q2):
            await store.insert_query(_record(qid))
        assert await store.get_aggregate(Q1) is None
        await store.commit_contributions(
            [_contribution(Q1, "a"), _contribution(Q2, "a"), _contribution(Q1, "b")],
            {Q1: b"sum-1", Q2: memoryview(b"sum-2")},
        )
        await store.commit_contributions([_contribution(Q1, "c")], {Q1: b"sum-1c"})
        assert await store.get_aggregate(Q1) == b"sum-1c"
        assert await store.get_aggregate(Q2) == b"sum-2"
        assert set(await store.contributions(Q1)) == {"a", "b", "c"}
        assert await store.contributions(Q2) == {"a": _contribution(Q2, "a").digest}

    _run(make_store, body)


def test_a_batch_with_a_recorded_holder_records_nothing(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        for qid in (Q1, Q2):
            await store.insert_query(_record(qid))
        await store.commit_contributions([_contribution(Q1, "a")], {Q1: b"one"})
        with pytest.raises(ConflictError):
            await store.commit_contributions(
                [_contribution(Q2, "z"), _contribution(Q1, "a")], {Q1: b"two", Q2: b"z"}
            )
        assert await store.contributions(Q1) == {"a": _contribution(Q1, "a").digest}
        assert await store.contributions(Q2) == {}
        assert await store.get_aggregate(Q1) == b"one"
        assert await store.get_aggregate(Q2) is None
        # The store stays usable after the refused batch.
        await store.commit_contributions([_contribution(Q2, "z")], {Q2: b"z"})
        assert await store.get_aggregate(Q2) == b"z"

    _run(make_store, body)


def test_finishing_keeps_who_and_drops_the_sealed_seeds(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        await store.insert_query(_record(Q1))
        await store.commit_contributions(
            [_contribution(Q1, "b", b"sealed-b"), _contribution(Q1, "a", b"sealed-a")],
            {Q1: b"running"},
        )
        assert await store.sealed_contributions(Q1, ["a", "b"]) == [b"sealed-a", b"sealed-b"]
        with pytest.raises(KeyError):
            await store.sealed_contributions(Q1, ["a", "nobody"])
        ready = _record(Q1).with_state(READY, contributors=("a", "b"))
        await store.finish_query(ready, None)  # the running aggregate is the final one
        assert await store.get_aggregate(Q1) == b"running"
        assert await store.sealed_contributions(Q1, ["a", "b"]) == [b"", b""]
        assert set(await store.contributions(Q1)) == {"a", "b"}
        assert (await store.load_queries())[0] == ready

    _run(make_store, body)


def test_a_final_share_replaces_and_a_failure_drops_the_aggregate(
    make_store: StoreFactory,
) -> None:
    async def body(store: Store) -> None:
        for qid in (Q1, Q2):
            await store.insert_query(_record(qid))
            await store.commit_contributions([_contribution(qid, "a")], {qid: b"running"})
        await store.finish_query(_record(Q1).with_state(READY), memoryview(b"final"))
        await store.finish_query(_record(Q2).with_state(FAILED, failure="x"), None, True)
        assert await store.get_aggregate(Q1) == b"final"
        assert await store.get_aggregate(Q2) is None
        states = {r.id: (r.state, r.failure) for r in await store.load_queries()}
        assert states == {Q1: (READY, ""), Q2: (FAILED, "x")}

    _run(make_store, body)


def test_everything_acknowledged_survives_a_restart(make_store: StoreFactory) -> None:
    async def go() -> tuple[list[QueryRecord], dict[str, bytes], bytes | None, bytes | None]:
        store = await make_store()
        await store.insert_query(_record(Q1))
        await store.put_setting("k", b"v")
        await store.commit_contributions([_contribution(Q1, "a", b"s")], {Q1: b"sum"})
        await store.close()
        again = await make_store()
        try:
            return (
                await again.load_queries(),
                await again.contributions(Q1),
                await again.get_aggregate(Q1),
                await again.get_setting("k"),
            )
        finally:
            await again.close()

    queries, contributions, aggregate, setting = asyncio.run(go())
    assert queries == [_record(Q1)]
    assert contributions == {"a": _contribution(Q1, "a").digest}
    assert (aggregate, setting) == (b"sum", b"v")


def test_verify_keys_and_rejections(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        assert await store.get_verify_key(Q1) is None
        await store.put_verify_key(Q1, VerifyKey(b"v" * 16, 1))
        await store.put_verify_key(Q1, VerifyKey(b"w" * 16, 0, (7, 2**70)))
        assert await store.get_verify_key(Q1) == VerifyKey(b"w" * 16, 0, (7, 2**70))
        await store.drop_verify_key(Q1)
        assert await store.get_verify_key(Q1) is None
        await store.record_rejection(Q1, "a", "proof")
        await store.record_rejection(Q1, "a", "later")  # the first reason is kept
        await store.record_rejection(Q2, "b", "range")
        assert await store.rejections(Q1) == {"a": "proof"}

    _run(make_store, body)


def test_a_budget_changes_atomically_or_not_at_all(make_store: StoreFactory) -> None:
    def refuse(_: str | None) -> str:
        raise ConflictError("overspent")

    async def body(store: Store) -> None:
        assert await store.get_budget("alice", "d") is None
        assert await store.update_budget("alice", "d", lambda old: (old or "") + "1") == "1"
        assert await store.update_budget("alice", "d", lambda old: (old or "") + "2") == "12"
        with pytest.raises(ConflictError):
            await store.update_budget("alice", "d", refuse)
        await store.update_budget("bob", "d", lambda old: "b")
        assert await store.list_budgets() == ["12", "b"]  # by analyst, then dataset

        await store.insert_query(_record(Q1))
        await store.commit_contributions([_contribution(Q1, "a")], {Q1: b"running"})
        ready = _record(Q1).with_state(READY, contributors=("a",))
        with pytest.raises(ConflictError):  # refused: neither the query nor the budget moves
            await store.finish_query_spending(ready, b"noisy", "alice", "d", refuse)
        assert (await store.load_queries())[0].state == OPEN
        assert await store.get_aggregate(Q1) == b"running"
        await store.finish_query_spending(ready, b"noisy", "alice", "d", lambda old: f"{old}3")
        assert await store.get_budget("alice", "d") == "123"
        assert (await store.load_queries())[0] == ready
        assert await store.get_aggregate(Q1) == b"noisy"

    _run(make_store, body)


def test_a_release_is_checked_against_the_recent_ones_and_recorded_once(
    make_store: StoreFactory,
) -> None:
    def release(qid: str, members: bytes, when: float, fp: bytes = b"f" * 32) -> ReleaseRecord:
        return ReleaseRecord(fp, qid, members, 3, when)

    seen: list[list[str]] = []

    def same_set_as(members: bytes) -> Callable[[list[ReleaseRecord]], None]:
        def check(others: list[ReleaseRecord]) -> None:
            seen.append([r.query_id for r in others])
            if any(r.contributor_set != members for r in others):
                raise ConflictError("another contributor set")

        return check

    async def body(store: Store) -> None:
        abc, abd = same_set_as(b"abc"), same_set_as(b"abd")
        await store.record_release(release("q-1", b"abc", 10.0), 0.0, abc)
        await store.record_release(release("q-1", b"abc", 11.0), 0.0, abc)  # kept first
        await store.record_release(release("q-x", b"zzz", 12.0, b"g" * 32), 0.0, abc)
        with pytest.raises(ConflictError):  # refused: nothing recorded
            await store.record_release(release("q-2", b"abd", 20.0), 5.0, abd)
        assert await store.releases(b"f" * 32, 0.0) == [release("q-1", b"abc", 10.0)]
        # Releases older than `since` are forgotten, of every fingerprint.
        await store.record_release(release("q-3", b"abd", 30.0), 15.0, abd)
        assert [r.query_id for r in await store.releases(b"f" * 32, 0.0)] == ["q-3"]
        assert await store.releases(b"g" * 32, 0.0) == []
        assert seen == [[], [], [], ["q-1"], []]

    _run(make_store, body)
