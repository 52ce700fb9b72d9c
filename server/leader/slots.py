"""Contribution stream slots shared fairly between holders.

The leader receives at most ``capacity`` contribution streams at once (a
memory bound: each holds up to one vector being received). A single shared
pool lets one holder certificate take every slot by opening streams on many
queries and stalling them (issue 15, item 4). :class:`FairSlots` therefore

* caps the streams one holder may have at once, holding or waiting
  (``per_holder``): a holder past its cap is refused at once (UNAVAILABLE,
  which holders retry later), never queued;
* hands a freed slot to the waiting holders in turn (round robin by holder,
  first come first served within one holder), so a holder with many waiting
  streams cannot starve one with a single stream.

Stalled streams themselves are dropped by the intake's idle timeout
(``contribution_idle_timeout_seconds``), which frees their slots.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator

from pets.errors import InvalidInputError, UnavailableError


class FairSlots:
    """``capacity`` slots; at most ``per_holder`` held or awaited by one holder."""

    def __init__(self, capacity: int, per_holder: int) -> None:
        if capacity < 1 or per_holder < 1:
            raise InvalidInputError("slots need capacity >= 1 and per_holder >= 1")
        self.capacity = capacity
        self.per_holder = per_holder
        self._free = capacity
        self._streams: collections.Counter[str] = collections.Counter()  # held + waiting
        # Holders with waiting streams, in turn order; each with its waiters in order.
        self._waiting: collections.OrderedDict[str, collections.deque[asyncio.Future[None]]] = (
            collections.OrderedDict()
        )

    @property
    def free(self) -> int:
        return self._free

    def streams(self, holder: str) -> int:
        """Streams ``holder`` holds or waits for."""
        return self._streams[holder]

    @contextlib.asynccontextmanager
    async def slot(self, holder: str) -> AsyncIterator[None]:
        """Hold one slot for ``holder`` for the duration of the block."""
        if self._streams[holder] >= self.per_holder:
            raise UnavailableError(
                f"holder {holder} already has {self.per_holder} contribution stream(s) in "
                "progress; retry when one has finished"
            )
        self._streams[holder] += 1
        try:
            await self._acquire(holder)
            try:
                yield
            finally:
                self._release()
        finally:
            self._streams[holder] -= 1
            if not self._streams[holder]:
                del self._streams[holder]

    async def _acquire(self, holder: str) -> None:
        if self._free and not self._waiting:
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(holder, collections.deque()).append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # granted as it was cancelled: pass the slot on
            else:
                self._forget(holder, waiter)
            raise

    def _forget(self, holder: str, waiter: asyncio.Future[None]) -> None:
        queue = self._waiting.get(holder)
        if queue is None:
            return
        with contextlib.suppress(ValueError):
            queue.remove(waiter)
        if not queue:
            del self._waiting[holder]

    def _release(self) -> None:
        """Give the freed slot to the next holder in turn, or back to the pool."""
        while self._waiting:
            holder, queue = next(iter(self._waiting.items()))
            waiter = queue.popleft()
            if queue:
                self._waiting.move_to_end(holder)  # its next stream waits for its turn
            else:
                del self._waiting[holder]
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1
