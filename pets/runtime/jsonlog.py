"""Structured log lines: one JSON object per record.

Log calls pass fields with ``extra={...}``; :class:`JsonFormatter` emits them
next to time, level, logger, party and message. No field ever carries a
contributed value, a seed, a key or an aggregate; the integration tests
read the servers' and nodes' logs to check that. Setting up handlers is left
to the programs, through :func:`configure` (``pets serve``, ``pets node``).
"""

from __future__ import annotations

import json
import logging
import time
from typing import TextIO

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def __init__(self, party: str = "") -> None:
        super().__init__()
        self.party = party

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        if self.party:
            out["party"] = self.party
        out["msg"] = record.getMessage()
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure(level: str, party: str, stream: TextIO) -> None:
    """Route ``pets.*`` loggers to ``stream`` as JSON lines (programs call this once)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(party=party))
    root = logging.getLogger("pets")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
