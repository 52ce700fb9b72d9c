"""The event loop a long-running pets process runs on: uvloop when installed.

Servers (``pets serve --loop``) and data-holder nodes (``pets node --loop``) are
asyncio programs whose CPU per message is largely the event loop's and
gRPC's. uvloop (libuv, in C) schedules callbacks and polls with less CPU
per message than asyncio's pure-Python loop (about 8% of a leader's CPU per
contribution here, issue 14), so ``auto``, the default, takes it when the
package is importable and falls back to asyncio's loop otherwise.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable

from pets.errors import ConfigError

LOOPS = ("auto", "asyncio", "uvloop")


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event-loop factory for ``--loop choice`` (None: asyncio's default loop),
    for :class:`asyncio.Runner`."""
    if choice == "asyncio":
        return None
    try:
        uvloop = importlib.import_module("uvloop")  # optional: not imported when absent
    except ImportError:
        if choice == "uvloop":
            raise ConfigError("--loop uvloop: uvloop is not installed") from None
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
