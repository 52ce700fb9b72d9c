"""What the leader tells holders and analysts: announcements and query status.

Holders keep ``WatchQueries`` open and get every new query's announcement
(with the helpers' seal keys, as each helper signed them); analysts follow
their query's status with ``WatchQueryStatus``. A watcher that stops reading
is dropped rather than allowed to hold the leader's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from pets import lengthprefix
from pets.errors import PetsError
from pets.query import Query
from pets.query import compile as compile_query
from pets.server.leader.state import LeaderState, QueryRuntime
from pets.server.query_state import OPEN, TERMINAL
from pets.v1 import aggregation_pb2 as pb

STATUS_HEARTBEAT_SECONDS = 1.0
WATCHER_QUEUE = 1024


def pack_helper_keys(keys: Sequence[pb.HelperKey]) -> bytes:
    """The helpers' seal keys of one query, as the leader stores them."""
    return lengthprefix.join(k.SerializeToString() for k in keys)


def unpack_helper_keys(data: bytes) -> list[pb.HelperKey]:
    return [pb.HelperKey.FromString(part) for part in lengthprefix.split(data)]


class Announcer:
    """Announcements to watching holders, and status for analysts."""

    def __init__(self, state: LeaderState) -> None:
        self.state = state
        self._watchers: set[asyncio.Queue[pb.QueryAnnouncement | None]] = set()
        # Queries another replica accepted are announced here too (replicas.py).
        state.announce = self.announce

    def status(self, rt: QueryRuntime) -> pb.QueryStatus:
        r = rt.record
        return pb.QueryStatus(
            query_id=r.id,
            state=r.state,  # type: ignore[arg-type]
            spec=rt.spec,
            analyst=r.analyst,
            contributors=rt.contributors if r.state == OPEN else len(r.contributors),
            min_holders=r.min_holders,
            deadline_unix=r.deadline,
            failure=r.failure,
            failure_detail=r.failure_detail,
            vector_length=r.vector_length,
            proven_predicates=list(r.proven_predicates),
            helpers=self.state.helper_names(rt),
            rejected_contributions=len(rt.rejected),
            stuck_reason=rt.stuck_reason,
            stuck_attempts=rt.stuck_attempts,
            value_count=self._value_count(rt),
        )

    def _value_count(self, rt: QueryRuntime) -> int:
        """How many values the query's result has (a finished query reloaded after a
        restart has no plan in memory: compiled once, on demand; 0 if it no longer
        compiles against the schema)."""
        if rt.plan is None:
            try:
                rt.plan = compile_query(Query.from_json(rt.spec.query_json), self.state.schema)
            except PetsError:
                return 0
        return rt.plan.length

    def announcement(self, rt: QueryRuntime) -> pb.QueryAnnouncement:
        return pb.QueryAnnouncement(
            query_id=rt.record.id,
            spec=rt.spec,
            deadline_unix=rt.record.deadline,
            vector_length=rt.record.vector_length,
            helpers=self.state.helper_names(rt),
            fingerprint=rt.record.fingerprint,
            helper_keys=unpack_helper_keys(rt.record.helper_keys),
            analyst=rt.record.analyst,
        )

    def announce(self, rt: QueryRuntime) -> None:
        ann = self.announcement(rt)
        for watcher in list(self._watchers):
            self._notify(watcher, ann)

    def _notify(
        self, watcher: asyncio.Queue[pb.QueryAnnouncement | None], ann: pb.QueryAnnouncement
    ) -> None:
        try:
            watcher.put_nowait(ann)
        except asyncio.QueueFull:  # a watcher that does not read is dropped
            self._watchers.discard(watcher)

    async def watch(self, include_open: bool) -> AsyncIterator[pb.QueryAnnouncement]:
        """Every query announced from now on (and, with ``include_open``, the open ones)."""
        queue: asyncio.Queue[pb.QueryAnnouncement | None] = asyncio.Queue(WATCHER_QUEUE)
        self._watchers.add(queue)
        try:
            if include_open:
                for rt in list(self.state.queries.values()):
                    if rt.record.state == OPEN:
                        yield self.announcement(rt)
            while queue in self._watchers and not self.state.stopping:
                ann = await queue.get()
                if ann is None:  # server shutting down
                    return
                yield ann
        finally:
            self._watchers.discard(queue)

    async def watch_status(self, rt: QueryRuntime) -> AsyncIterator[pb.QueryStatus]:
        """The query's status now and on every change (a heartbeat in between),
        until it is READY or FAILED or the server stops."""
        while True:
            seen = rt.version
            yield self.status(rt)
            if rt.record.state in TERMINAL or self.state.stopping:
                return
            async with rt.changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        rt.changed.wait_for(lambda: rt.version != seen),  # noqa: B023
                        STATUS_HEARTBEAT_SECONDS,
                    )

    def shutdown(self) -> None:
        """End every watch stream (the server is stopping)."""
        for watcher in self._watchers:
            with contextlib.suppress(asyncio.QueueFull):
                watcher.put_nowait(None)
        for rt in self.state.queries.values():
            self.state.spawn(rt.bump(), "wake-status-watchers")
