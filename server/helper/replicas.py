"""A helper replica's memory kept in step with the other replicas (issue 14, item 2).

Replicas of one helper share its PostgreSQL database and nothing else. Each
keeps, per open query, the seeds its own Prepare calls accepted and, for a DP
query it registered, noise drawn ahead (:mod:`pets.server.privacy`). When
another replica finalises or aborts the query, those are no longer needed:
:func:`follow_changes` reads the store's change feed
(:meth:`pets.server.store.base.Store.changes`: PostgreSQL ``LISTEN/NOTIFY``;
a SQLite store, which one process owns, has none) and makes
:meth:`~pets.server.helper.queries.HelperQueries.refresh` drop them, so a
replica that served only Prepare does not keep a finished query's seeds for
ever. Correctness does not depend on it: every call re-reads a query whose
state it needs (Finalize, abort, GetAggregate) from the store.
"""

from __future__ import annotations

import logging

from pets.errors import PetsError
from pets.server.helper.queries import HelperQueries
from pets.server.query_state import OPEN

log = logging.getLogger("pets.server.helper")


async def follow_changes(queries: HelperQueries) -> None:
    """Refresh the queries other replicas change, until cancelled."""
    async for query_id in queries.store.changes():
        try:
            if query_id is None:  # (re)connected: changes may have been missed
                await _refresh_all(queries)
            elif (q := queries.queries.get(query_id)) is not None:
                await queries.refresh(q)
        except PetsError as exc:  # the store is unreachable: the next change retries
            log.warning("could not refresh a query changed by another replica", exc_info=exc)


async def _refresh_all(queries: HelperQueries) -> None:
    """Every query this replica keeps as open, re-read in one store call."""
    if not any(q.record.state == OPEN for q in queries.queries.values()):
        return
    for stored in await queries.store.load_queries():
        q = queries.queries.get(stored.id)
        if q is not None and q.record.state == OPEN and stored.state != OPEN:
            await queries.refresh(q)
