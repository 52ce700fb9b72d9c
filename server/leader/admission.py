"""Admission of a submitted query: every check the leader makes before it opens one.

Pure (no gRPC, no store; the clock only as the default of ``now``):
:func:`admit` takes the spec, the authenticated analyst and what the leader
knows (schema, configuration, how many unfinished queries that analyst has)
and returns the
:class:`Admission` the lifecycle opens, or raises the error the analyst
gets. The protocol-specific checks (a key, the most holders whose sum fits)
come from the query's protocol (:meth:`pets.protocols.AggregationProtocol.admit`).

Holder counts: ``min_holders`` lies between the server's floor and its
``[limits] max_holders`` (above it, a query could never be released), and so
does ``close_after`` (issue 15, item 3). Whether a ``close_after`` could
isolate a holder against earlier releases of the same query needs the
store, so :mod:`pets.server.release_policy` checks it when the query opens.
A spec must name its protocol: PROTOCOL_UNSPECIFIED is refused, not guessed.
A linked query (issue 16) runs under PROTOCOL_LINKAGE only, and a
``min_intersection`` below the server's ``[limits] min_intersection`` is
refused like a ``min_holders`` below its floor (docs/LINKAGE.md).

A signed (Paillier) spec must be signed by the submitting analyst, unexpired
at ``now``, and its query must close (``now`` + deadline) before the signed
``not_after`` (issue 15, item 15; :mod:`pets.identity.signing`). The deadline
and ``close_after`` the query runs with are the spec's own, which the
signature covers.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from pets.errors import InvalidInputError, NotReadyError, PetsError
from pets.identity.certificates import Peer
from pets.identity.signing import check_deadline, verify_spec
from pets.protocols import AggregationProtocol, lookup, name_of, names
from pets.query import Query, QueryPlan, Schema
from pets.query import compile as compile_query
from pets.server.config import ServerConfig
from pets.v1 import aggregation_pb2 as pb


@dataclass(frozen=True)
class Admission:
    """A query the leader may open, with everything derived from its spec."""

    spec: pb.QuerySpec  # a copy of the submitted spec
    query: Query
    plan: QueryPlan
    protocol: AggregationProtocol
    min_holders: int
    deadline_seconds: float
    vector_length: int


def parse_query(spec: pb.QuerySpec, schema: Schema) -> tuple[Query, QueryPlan]:
    """The spec's query, compiled against ``schema``; InvalidInputError if malformed."""
    try:
        query = Query.from_json(spec.query_json)
    except PetsError:
        raise
    except (ValueError, TypeError, KeyError, RecursionError, OverflowError) as exc:
        raise InvalidInputError(f"query_json is not a valid query: {exc!s:.200}") from None
    return query, compile_query(query, schema)


def admit(
    request: pb.QuerySpec,
    analyst: Peer,
    *,
    schema: Schema,
    config: ServerConfig,
    open_queries: int,
    ca_pem: bytes | None,
    now: float | None = None,
) -> Admission:
    """Check a submitted spec against the schema, the server's floor and limits and
    the query's protocol; ``open_queries`` is how many unfinished queries
    ``analyst`` already has (including submissions in progress)."""
    spec = pb.QuerySpec()
    spec.CopyFrom(request)
    if spec.protocol == pb.PROTOCOL_UNSPECIFIED:
        # Never guessed: a holder must know exactly what it is asked to compute.
        raise InvalidInputError(f"the query must name its protocol (one of {', '.join(names())})")
    protocol = lookup(spec.protocol)
    query, plan = parse_query(spec, schema)
    _check_linked(spec, plan, config)
    floor = config.min_holders
    ceiling = config.limits.max_holders
    for field, value in (("min_holders", spec.min_holders), ("close_after", spec.close_after)):
        if value > ceiling:
            raise InvalidInputError(
                f"{field} {value} is above this server's max_holders of {ceiling}; "
                "such a query could never be released"
            )
    if spec.min_holders and spec.min_holders < floor:
        raise InvalidInputError(
            f"min_holders {spec.min_holders} is below this server's floor of {floor}; "
            "a query may raise it, never lower it"
        )
    min_holders = max(floor, spec.min_holders)
    if spec.close_after and spec.close_after < min_holders:
        raise InvalidInputError(
            f"close_after {spec.close_after} is below min_holders {min_holders}: the query "
            "would close too early to ever be released"
        )
    limits = config.limits
    deadline_s = spec.deadline_seconds or limits.default_deadline_seconds
    if not (math.isfinite(deadline_s) and 0 < deadline_s <= limits.max_deadline_seconds):
        raise InvalidInputError(
            f"deadline_seconds must be in (0, {limits.max_deadline_seconds}], got {deadline_s}"
        )
    vector_length = protocol.admit(spec, plan, min_holders)  # validates e.g. the key
    # Holders check the signature too; refusing here gives the analyst a clear error.
    signed = protocol.spec_signed and config.tls is not None
    if signed:
        if verify_spec(spec, ca_pem, now=now) != analyst:
            raise InvalidInputError("the query must be signed by the analyst submitting it")
        # The analyst signed the deadline and close_after this query runs with (the
        # spec is used as signed); it must also close before the signed not_after.
        check_deadline(spec, (time.time() if now is None else now) + deadline_s)
    if vector_length > limits.max_vector_length:
        raise InvalidInputError(
            f"query needs vectors of {vector_length} values; this server accepts at most "
            f"{limits.max_vector_length}"
        )
    if open_queries >= limits.max_open_queries_per_analyst:
        raise NotReadyError(
            f"analyst {analyst.name} already has {open_queries} unfinished queries "
            f"(limit {limits.max_open_queries_per_analyst}); wait for one to finish"
        )
    return Admission(spec, query, plan, protocol, min_holders, deadline_s, vector_length)


def _check_linked(spec: pb.QuerySpec, plan: QueryPlan, config: ServerConfig) -> None:
    """A linked query runs under PROTOCOL_LINKAGE only (the other protocols sum one
    vector per holder and could never join); its ``min_intersection`` (the query's or
    the spec's) is refused below the server's floor, as ``min_holders`` is."""
    linkage = plan.linkage
    if linkage is None:
        return
    if spec.protocol != pb.PROTOCOL_LINKAGE:
        raise InvalidInputError(
            f"a linked query ('linked to ...') runs only under protocol linkage, not "
            f"{name_of(spec.protocol)} (pets query --protocol linkage)"
        )
    floor = int(config.limits.min_intersection)
    for source, asked in (
        ("the query's min_intersection", linkage.min_intersection or 0),
        ("QuerySpec.min_intersection", spec.min_intersection),
    ):
        if asked and asked < floor:
            raise InvalidInputError(
                f"{source} {asked} is below this server's floor of {floor} "
                "([limits] min_intersection); a query may raise it, never lower it"
            )
