"""The per-domain linked-query budget (issue 16, "What leaks"; docs/LINKAGE.md).

A holder that submits guessed identifiers turns a linked count into a membership
oracle; ``max_rows``, the ``min_intersection`` floor and DP bound what one query
tells, and this budget bounds how many queries a linkage domain answers: at most
``[limits] linked_queries_per_domain`` linked queries per domain (all analysts
together) within ``linked_query_window_seconds``.

Each server enforces it on its own, in its own store, like the DP budget: the
leader when it admits a query (``SubmitQuery``), each helper when the leader
registers the query (``RegisterQuery``), so a dishonest leader cannot skip it.
The count is :meth:`pets.server.store.base.Store.reserve_linked_query`: atomic,
shared by replicas on one PostgreSQL database, and idempotent per query id (a
registration retried counts once). A reservation is kept even if the query later
fails: the budget counts queries accepted, not answered.

A refusal is :class:`pets.errors.QuotaExceededError` (``RESOURCE_EXHAUSTED``); its
message names the domain, the limit and when the next slot frees, never another
analyst or query.
"""

from __future__ import annotations

import math
import time

from pets.errors import QuotaExceededError
from pets.query import Query, QueryPlan, Schema
from pets.query import compile as compile_query
from pets.server.config import Limits
from pets.server.store.base import Store

# A helper without a schema cannot tell a linked query's domain from its spec: it
# counts all its linked queries under this one key (stricter, never looser).
ALL_DOMAINS = "*"


def plan_domain(plan: QueryPlan) -> str | None:
    """The linkage domain of a linked plan; None for a query that links nothing."""
    return None if plan.linkage is None else str(plan.linkage.domain)


def spec_domain(query_json: str, schema: Schema | None) -> str:
    """The domain a helper counts a linked query under: from its own schema, else
    :data:`ALL_DOMAINS`."""
    if schema is None:
        return ALL_DOMAINS
    return plan_domain(compile_query(Query.from_json(query_json), schema)) or ALL_DOMAINS


async def reserve(store: Store, limits: Limits, domain: str, query_id: str, now: float) -> None:
    """Count ``query_id`` against ``domain``'s budget, or raise QuotaExceededError."""
    limit = limits.linked_queries_per_domain
    window = limits.linked_query_window_seconds
    if await store.reserve_linked_query(domain, query_id, now, window, limit):
        return
    if limit == 0:
        raise QuotaExceededError(
            f"linkage domain {domain!r} accepts no linked queries on this server "
            "([limits] linked_queries_per_domain = 0)"
        )
    frees = await store.linked_query_slot_frees(domain, now, window)
    when = (
        "when an earlier one leaves the window"
        if frees is None
        else time.strftime("at %Y-%m-%dT%H:%M:%SZ", time.gmtime(math.ceil(frees)))
    )
    which = (
        "this helper (no schema: all linkage domains together)"
        if domain == ALL_DOMAINS
        else f"linkage domain {domain!r}"
    )
    raise QuotaExceededError(
        f"{which} has used its budget of {limit} linked queries per "
        f"{window:g} seconds on this server; the next slot frees {when}"
    )
