"""Contribution slots: a per-holder cap, and freed slots handed to holders in turn."""

from __future__ import annotations

import asyncio

import pytest

from pets.errors import InvalidInputError, UnavailableError
from pets.server.leader.slots import FairSlots


async def _hold(slots: FairSlots, holder: str, order: list[str], release: asyncio.Event) -> None:
    async with slots.slot(holder):
        order.append(holder)
        await release.wait()


def test_a_holder_past_its_cap_is_refused_at_once() -> None:
    async def go() -> None:
        slots = FairSlots(capacity=8, per_holder=2)
        release = asyncio.Event()
        order: list[str] = []
        held = [asyncio.create_task(_hold(slots, "mallory", order, release)) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(UnavailableError, match="already has 2"):
            async with slots.slot("mallory"):
                pass
        # Others are not affected by mallory's cap.
        async with slots.slot("alice"):
            assert slots.free == 5
        release.set()
        await asyncio.gather(*held)
        assert slots.free == 8 and slots.streams("mallory") == 0

    asyncio.run(go())


def test_freed_slots_go_to_waiting_holders_in_turn() -> None:
    async def go() -> list[str]:
        slots = FairSlots(capacity=1, per_holder=10)
        order: list[str] = []
        releases = [asyncio.Event() for _ in range(7)]
        first = asyncio.create_task(_hold(slots, "mallory", order, releases[0]))
        await asyncio.sleep(0)
        # Mallory queues four more streams before alice and bob queue one each.
        tasks = [
            asyncio.create_task(_hold(slots, "mallory", order, releases[i])) for i in range(1, 5)
        ]
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(_hold(slots, "alice", order, releases[5])))
        tasks.append(asyncio.create_task(_hold(slots, "bob", order, releases[6])))
        await asyncio.sleep(0)
        for i, release in enumerate(releases):  # let each holder finish in turn
            release.set()
            await asyncio.sleep(0.01)
            if i == 0:
                await first
        await asyncio.gather(*tasks)
        return order

    order = asyncio.run(go())
    # FIFO would serve mallory five times first; in turn, alice and bob come early.
    assert order == ["mallory", "mallory", "alice", "bob", "mallory", "mallory", "mallory"]


def test_a_cancelled_waiter_gives_its_place_back() -> None:
    async def go() -> int:
        slots = FairSlots(capacity=1, per_holder=4)
        release = asyncio.Event()
        order: list[str] = []
        holder = asyncio.create_task(_hold(slots, "alice", order, release))
        await asyncio.sleep(0)
        waiter = asyncio.create_task(_hold(slots, "bob", order, release))
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        release.set()
        await holder
        return slots.free

    assert asyncio.run(go()) == 1


def test_slots_need_positive_sizes() -> None:
    with pytest.raises(InvalidInputError):
        FairSlots(0, 1)
