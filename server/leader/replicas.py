"""Leader replicas on one database: learning what the other replicas did (issue 14, item 2).

Several leader processes of one server may share a PostgreSQL database, all
serving at once behind a load balancer (docs/ARCHITECTURE.md, "Storage",
"Replicas"). The store keeps them consistent (shards, conditional close and
finish, leases); this module keeps each replica's *memory* in step with
what the others did, so any replica can serve any query:

* :meth:`Replicas.follow` reads the store's change feed
  (:meth:`pets.server.store.Store.changes`: PostgreSQL ``LISTEN/NOTIFY``,
  delivered at commit). A query another replica accepted is adopted (its plan
  compiled, this replica's shard and every replica's holders loaded, its
  deadline scheduled) and announced to this replica's watching holders; a
  query another replica closed starts this replica's lease-guarded
  finalisation loop (which waits while another holds the lease); a finished
  one is taken as stored.
* After every (re)connection of the feed it re-reads every query (the poll on
  reconnect): notifications sent while it was disconnected are not replayed.
* :meth:`Replicas.load` reads a query through on a miss (a holder's
  contribution or an analyst's call that reached this replica before the
  notification did).

With a single-writer store (SQLite) none of this runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pets.query import Query
from pets.query import compile as compile_query
from pets.server.leader.state import LeaderState, QueryRuntime, log, reload
from pets.server.query_state import CLOSED, OPEN, TERMINAL
from pets.server.store import QueryRecord
from pets.v1 import aggregation_pb2 as pb

if TYPE_CHECKING:  # the lifecycle owns this object
    from pets.server.leader.lifecycle import Lifecycle


class Replicas:
    """Keeps one leader replica's queries in step with the shared store."""

    def __init__(self, state: LeaderState, lifecycle: Lifecycle) -> None:
        self.state = state
        self.lifecycle = lifecycle

    def start(self) -> None:
        """With a shared store (``state.replica`` set at resume), follow its changes."""
        if self.state.replica is None:
            return
        self.state.load_through = self.load
        log.info("leader replica", extra={"replica": self.state.replica})
        self.state.spawn(self.follow(), "replica-changes")

    async def follow(self) -> None:
        """Apply every change the store reports; re-read everything on (re)connect."""
        async for query_id in self.state.store.changes():
            if self.state.stopping:
                return
            try:
                if query_id is None:
                    for record in await self.state.store.load_queries():
                        await self.apply(record)
                elif (found := await self.state.store.load_query(query_id)) is not None:
                    await self.apply(found)
            except Exception as exc:  # the next change or reconnection tries again
                log.warning(
                    "could not apply another replica's change",
                    extra={"query_id": query_id, "error": repr(exc)},
                )

    async def load(self, query_id: str) -> QueryRuntime | None:
        """A query another replica accepted, read through on a miss (None: unknown)."""
        record = await self.state.store.load_query(query_id)
        return None if record is None else await self.apply(record)

    async def apply(self, record: QueryRecord) -> QueryRuntime:
        """Bring this replica's runtime of ``record``'s query up to the stored state."""
        rt = self.state.queries.get(record.id)
        if rt is None:
            return await self._adopt(record)
        if rt.record.state == record.state or rt.record.state in TERMINAL:
            return rt
        if record.state == CLOSED and rt.record.state == OPEN:
            await self.lifecycle.adopt_record(rt, record)
            self.lifecycle.start_finalise(rt)
        elif record.state in TERMINAL:
            await self.lifecycle.adopt_record(rt, record)
        return rt

    async def _adopt(self, record: QueryRecord) -> QueryRuntime:
        """A runtime for a query this replica has not seen, as :meth:`Lifecycle.resume`
        builds one at start."""
        spec = pb.QuerySpec.FromString(record.spec)
        rt = QueryRuntime(record=record, spec=spec, plan=None)
        if record.state not in TERMINAL:
            rt.plan = compile_query(Query.from_json(spec.query_json), self.state.schema)
            await reload(self.state.store, rt)
        known = self.state.queries.get(record.id)
        if known is not None:  # adopted meanwhile (the feed and a read-through at once)
            return known
        self.state.queries[record.id] = rt
        if record.state == OPEN:
            self.lifecycle.schedule_deadline(rt)
            if self.state.announce is not None:
                self.state.announce(rt)
        elif record.state == CLOSED:
            self.lifecycle.start_finalise(rt)
        log.info(
            "query adopted from another replica",
            extra={"query_id": record.id, "state": record.state},
        )
        return rt
