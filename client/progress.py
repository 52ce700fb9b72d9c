"""Live progress of a query while holders contribute (``rich`` status line on stderr)."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.status import Status

from pets.v1 import aggregation_pb2 as pb


def describe_status(status: pb.QueryStatus, now: float | None = None) -> str:
    """One line: state, contributors against min_holders, time left."""
    state = pb.QueryState.Name(status.state).removeprefix("QUERY_STATE_").lower()
    left = max(0.0, status.deadline_unix - (time.time() if now is None else now))
    text = (
        f"{status.query_id}: {state}, {status.contributors} contributor(s), "
        f"{status.min_holders} needed"
    )
    if status.state == pb.QUERY_STATE_OPEN:
        text += f", {left:.0f} s left"
    return text


class StatusPrinter:
    """Shows the latest status as a spinner line; silent when disabled (``--json``)."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._console = Console(stderr=True)
        self._status: Status | None = None

    def __enter__(self) -> StatusPrinter:
        if self.enabled:
            self._status = self._console.status("submitting query ...")
            self._status.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._status is not None:
            self._status.stop()

    def update(self, status: pb.QueryStatus) -> None:
        if self._status is not None:
            self._status.update(describe_status(status))
