"""The per-domain linked-query budget in the store (``reserve_linked_query``), on
every backend of :mod:`tests.unit.server.test_store_interface` (SQLite and a real
PostgreSQL): the limit within the window, re-reserving a query counts once, a
reservation leaves the window at ``reserved + window`` (injected clock values),
domains count apart, and a limit of 0 admits nothing. A fresh store per test.
"""

from __future__ import annotations

import asyncio

from pets.server.store import Store
from tests.unit.server.test_store_interface import StoreFactory, _run, make_store

__all__ = ["make_store"]  # the fixture, parametrised over the backends

DAY = 86_400.0


def test_the_limit_holds_within_the_window_and_reservations_are_idempotent(
    make_store: StoreFactory,
) -> None:
    async def body(store: Store) -> None:
        assert await store.reserve_linked_query("health", "q-1", 100.0, DAY, 2)
        assert await store.reserve_linked_query("health", "q-1", 101.0, DAY, 2)  # again: once
        assert await store.reserve_linked_query("health", "q-2", 102.0, DAY, 2)
        assert not await store.reserve_linked_query("health", "q-3", 103.0, DAY, 2)
        assert await store.reserve_linked_query("health", "q-2", 104.0, DAY, 2)  # still ok
        assert await store.reserve_linked_query("care", "q-4", 104.0, DAY, 2)  # another domain
        assert await store.linked_query_slot_frees("health", 103.0, DAY) == 100.0 + DAY
        assert await store.linked_query_slot_frees("nobody", 103.0, DAY) is None

    _run(make_store, body)


def test_a_slot_frees_when_the_oldest_reservation_leaves_the_window(
    make_store: StoreFactory,
) -> None:
    async def body(store: Store) -> None:
        assert await store.reserve_linked_query("health", "q-1", 100.0, DAY, 1)
        assert not await store.reserve_linked_query("health", "q-2", 100.0 + DAY - 1, DAY, 1)
        assert await store.reserve_linked_query("health", "q-2", 100.0 + DAY, DAY, 1)
        assert await store.linked_query_slot_frees("health", 100.0 + DAY, DAY) == 100.0 + 2 * DAY

    _run(make_store, body)


def test_a_limit_of_zero_admits_nothing_and_the_count_survives_reopening(
    make_store: StoreFactory,
) -> None:
    async def body(store: Store) -> None:
        assert not await store.reserve_linked_query("health", "q-1", 100.0, DAY, 0)
        assert await store.reserve_linked_query("health", "q-1", 100.0, DAY, 1)

    _run(make_store, body)

    async def reopened(store: Store) -> None:
        assert not await store.reserve_linked_query("health", "q-2", 200.0, DAY, 1)

    _run(make_store, reopened)


def test_concurrent_reservations_never_exceed_the_limit(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        results = await asyncio.gather(
            *(store.reserve_linked_query("health", f"q-{i}", 100.0, DAY, 3) for i in range(8))
        )
        assert sum(results) == 3

    _run(make_store, body)
