"""What the leader's jobs share: the queries in memory, the queued work items, the tasks.

A :class:`QueryRuntime` is one query's in-memory state; :class:`LeaderState`
holds them with the configuration, the store and the helper links, and is
handed to every job of :mod:`pets.server.leader` (admission, intake,
batching, lifecycle, announcements). Work items (:class:`Pending`,
:class:`Close`) carry a future their caller awaits through
``asyncio.shield``, so a caller that goes away (a cancelled RPC) never
cancels work a loop is doing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pets.errors import NotFoundError
from pets.protocols import AggregationProtocol, RunningAggregate, lookup
from pets.query import QueryPlan, Schema
from pets.server.config import ServerConfig
from pets.server.query_state import TERMINAL
from pets.server.store import QueryRecord, Store
from pets.v1 import aggregation_pb2 as pb

log = logging.getLogger("pets.server.leader")


class HelperPort(Protocol):
    """What the leader's jobs call on one helper (:class:`pets.server.peers.HelperLink`)."""

    name: str

    async def register(self, request: pb.RegisterQueryRequest) -> pb.HelperKey: ...

    async def prepare(
        self, query_id: str, contributions: Sequence[pb.SealedContribution], timeout: float
    ) -> pb.PrepareResponse: ...

    async def finalize(
        self, query_id: str, contributions: Sequence[bytes], timeout: float
    ) -> None: ...

    async def abort(self, query_id: str) -> None: ...

    async def close(self) -> None: ...


@dataclass
class QueryRuntime:
    """A query's in-memory state on the leader.

    ``aggregate`` and ``holders`` exist only while the query is OPEN or
    CLOSED; a finished query keeps just its record (its aggregate share is
    read from the store when released). ``holders`` lists *committed*
    contributions only.
    """

    record: QueryRecord
    spec: pb.QuerySpec
    plan: QueryPlan | None
    aggregate: RunningAggregate | None = None
    holders: dict[str, bytes] = field(default_factory=dict)
    in_flight: set[str] = field(default_factory=set)
    version: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    deadline_task: asyncio.Task[None] | None = None
    # Prio3 (issue 12): the query's secret verify key (loaded from the store on first
    # use) and the holders whose contribution the servers refused, with why.
    verify_key: bytes | None = None
    rejected: dict[str, str] = field(default_factory=dict)
    # A close or finalisation being retried (server/leader/lifecycle.py): the last
    # error and the failed attempts so far; reported in the query's status.
    stuck_reason: str = ""
    stuck_attempts: int = 0
    # A group commit failed and reloading from the store failed too (the store was
    # unreachable): ``aggregate`` may hold contributions that were never recorded, so
    # it is reloaded before anything uses it again (batching.py, lifecycle.py).
    stale: bool = False
    # Replicas (issue 14): every replica's committed contributions as the last group
    # commit counted them (``holders`` knows this replica's and those loaded), and
    # whether this process runs the query's finalisation loop (lease-guarded).
    committed: int = 0
    finalising: bool = False

    @property
    def contributors(self) -> int:
        """Committed contributions as far as this replica knows (all replicas')."""
        return max(len(self.holders), self.committed)

    @functools.cached_property
    def protocol(self) -> AggregationProtocol:
        """The spec's protocol, looked up once (a query's spec does not change; the
        leader asks several times per contribution)."""
        return lookup(self.spec.protocol)

    async def bump(self) -> None:
        """Wake whoever follows this query's status."""
        async with self.changed:
            self.version += 1
            self.changed.notify_all()


async def reload(store: Store, rt: QueryRuntime) -> None:
    """Rebuild a query's aggregate (this replica's shard) and committed holders (every
    replica's) from the store."""
    assert rt.plan is not None
    data, count = await store.own_shard(rt.record.id)
    rt.holders = await store.contributions(rt.record.id)
    if rt.protocol.verifies:
        rt.rejected = await store.rejections(rt.record.id)
    rt.aggregate = rt.protocol.running_aggregate(
        rt.spec, rt.record.vector_length, rt.plan, data, count=count
    )
    rt.stale = False


def settle(
    future: asyncio.Future[Any], result: Any = None, error: BaseException | None = None
) -> None:
    """Resolve ``future`` unless it already is (its caller may have gone away)."""
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


def _future() -> asyncio.Future[Any]:
    """A future for a queued item. Its caller may go away (a cancelled RPC awaits
    it through ``shield``), so its exception is marked retrieved here: asyncio
    would otherwise log every such error as never retrieved."""
    future = asyncio.get_running_loop().create_future()
    future.add_done_callback(_retrieve)
    return future


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


@dataclass
class Pending:
    """A validated contribution waiting for the batching loops."""

    query_id: str
    holder: str
    digest: bytes
    parsed: object
    # With helpers: the holder's sealed seeds and certificate, checked by the
    # helpers (Prepare) before the commit, stored as a serialised SealedContribution.
    seeds: list[pb.SealedSeed] | None
    certificate: bytes
    record: pb.SealedContribution | None = None  # what the helpers check, and
    sealed: bytes = b""  # serialised: what the leader stores
    future: asyncio.Future[Any] = field(default_factory=_future)


@dataclass
class Close:
    """A request to fix an open query's contributor set, in commit order."""

    query_id: str
    reason: str
    future: asyncio.Future[Any] = field(default_factory=_future)


class LeaderState:
    """The leader's shared state: configuration, store, helpers, queries, tasks."""

    def __init__(
        self,
        config: ServerConfig,
        store: Store,
        schema: Schema,
        helpers: Sequence[HelperPort],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.store = store
        self.schema = schema
        self.helpers = list(helpers)
        self.clock = clock
        self.insecure = config.tls is None
        self.queries: dict[str, QueryRuntime] = {}
        self.stopping = False
        # Replicas (issue 14): this process's replica id on a shared store (None: the
        # store has one writer) and how a query another replica opened is loaded on a
        # miss (server/leader/replicas.py sets both at start).
        self.replica: str | None = None
        self.load_through: Callable[[str], Awaitable[QueryRuntime | None]] | None = None
        # Announces a query to this process's watching holders (the Announcer's).
        self.announce: Callable[[QueryRuntime], None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def runtime(self, query_id: str) -> QueryRuntime:
        rt = self.queries.get(query_id)
        if rt is None:
            raise NotFoundError(f"no query {query_id!r}")
        return rt

    async def find(self, query_id: str, *, fresh: bool = False) -> QueryRuntime:
        """:meth:`runtime`, reading through to the store on a miss (a query another
        replica accepted and this one has not heard of yet); ``fresh`` also re-reads
        an unfinished query's stored state (another replica may have closed or
        finished it a moment ago), so an analyst who saw READY on one replica never
        sees CLOSED on the next."""
        rt = self.queries.get(query_id)
        stale = rt is None or (fresh and rt.record.state not in TERMINAL)
        if stale and self.load_through is not None:
            rt = await self.load_through(query_id)
        if rt is None:
            raise NotFoundError(f"no query {query_id!r}")
        return rt

    def helper_names(self, rt: QueryRuntime) -> list[str]:
        return [h.name for h in self.helpers] if rt.protocol.uses_helpers else []

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run ``coro`` in the background; a failure is logged, never lost."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def tasks(self) -> list[asyncio.Task[Any]]:
        return list(self._tasks)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "background task failed",
                extra={"task": task.get_name(), "error": repr(task.exception())},
            )
