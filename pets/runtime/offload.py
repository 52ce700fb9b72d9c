"""Run CPU-heavy work on large payloads in a worker thread, small work inline.

Servers and clients are asyncio programs: expanding, hashing or copying
megabytes on the event loop would stall every other stream, while handing a
few bytes to a thread costs more than the work. One threshold for all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

OFFLOAD_BYTES = 128 << 10


async def offload(size_bytes: int, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``, in a worker thread when ``size_bytes`` is large."""
    if size_bytes >= OFFLOAD_BYTES:
        return await asyncio.to_thread(fn, *args, **kwargs)
    return fn(*args, **kwargs)
