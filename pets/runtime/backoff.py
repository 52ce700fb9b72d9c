"""Exponential backoff between retries, with an injected clock.

One policy for every retry loop (a holder's calls to the leader, a node's
watch reconnection, the leader's finalisation calls to helpers): wait
``initial`` seconds, then twice as long each time up to ``maximum``, and give
up rather than wait past ``deadline``. The "exponential backoff" of gRPC's
connection-backoff.md, without jitter: the parties retrying here are few and
not synchronised. ``clock`` is injectable so tests need no real time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from pets.errors import InvalidInputError

__all__ = ["Backoff"]


class Backoff:
    """The delays of one retry loop.

    ``clock`` reads the time ``deadline`` is expressed in (default
    :func:`time.monotonic`; pass :func:`time.time` for a wall-clock deadline).
    """

    def __init__(
        self,
        initial: float,
        maximum: float,
        *,
        factor: float = 2.0,
        deadline: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < initial <= maximum or factor < 1:
            raise InvalidInputError("backoff needs 0 < initial <= maximum and factor >= 1")
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.deadline = deadline
        self.clock = clock
        self._delay = initial

    @property
    def delay(self) -> float:
        """The next wait, in seconds."""
        return self._delay

    def exhausted(self) -> bool:
        """True when waiting the next delay would pass the deadline."""
        return self.deadline is not None and self.clock() + self._delay > self.deadline

    def advance(self) -> float:
        """Return the next wait and lengthen the one after it."""
        delay = self._delay
        self._delay = min(self._delay * self.factor, self.maximum)
        return delay

    def reset(self) -> None:
        """Start again from ``initial`` (after a success)."""
        self._delay = self.initial

    async def sleep(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """Wait the next delay (``sleep`` injectable) and lengthen the one after it."""
        await sleep(self.advance())
