"""Live progress of a query while holders contribute, on stderr.

On a terminal a ``rich`` spinner line shows the latest status; elsewhere (a
pipe, a log file, CI) one plain line is printed whenever the state or the
number of contributors changes, so a waiting analyst is never silent.
"""

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
    """Shows the latest status: a spinner on a terminal, a line per change elsewhere;
    silent when disabled (``--json``)."""

    def __init__(
        self,
        *,
        enabled: bool = True,
        console: Console | None = None,
        title: str = "submitting query ...",
    ) -> None:
        self.enabled = enabled
        self.title = title
        self._console = console or Console(stderr=True)
        self._status: Status | None = None
        self._last: tuple[int, int] | None = None

    def __enter__(self) -> StatusPrinter:
        if self.enabled:
            if self._console.is_terminal:
                self._status = self._console.status(self.title)
                self._status.start()
            else:
                self.note(self.title)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._status is not None:
            self._status.stop()

    def note(self, text: str) -> None:
        """A line on stderr (above the spinner on a terminal)."""
        if self.enabled:
            self._console.print(text, soft_wrap=True, markup=False, highlight=False)

    def update(self, status: pb.QueryStatus) -> None:
        if self._status is not None:
            self._status.update(describe_status(status))
        elif self.enabled and (status.state, status.contributors) != self._last:
            self._last = (status.state, status.contributors)
            self.note(describe_status(status))
