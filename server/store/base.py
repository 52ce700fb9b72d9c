"""The store interface: everything a leader or helper keeps durably, as async calls.

The servers see only :class:`Store`; :mod:`pets.server.store.sqlite` is the
embedded default, and a PostgreSQL store (issue 14) plugs in behind the same
methods (docs/ARCHITECTURE.md, "Storage", "Where to add a storage backend").

Each mutating method is **one transaction** of the backend, and the
guarantees the servers rely on are part of the interface, not of a backend:

* :meth:`Store.commit_contributions` is the leader's **group commit**: a
  batch of contributions, for one or several queries, is recorded *together
  with* the running aggregates they produced (the new aggregate generation),
  atomically. After it returns every contribution in it is durable and
  counted exactly once; if it raises, none is recorded and the previous
  aggregates stay current. Each ``(query, holder)`` is recorded at most once:
  a second record for it fails the whole batch with
  :class:`~pets.errors.ConflictError`.
* :meth:`Store.finish_query` records a query's final state together with its
  final aggregate share (or drops the aggregate of a failed query) and
  clears the sealed seeds, atomically.
* :meth:`Store.get_aggregate` returns the current generation only.

A backend that shards a query's running aggregate across replicas (issue
14) keeps one shard per writer behind :meth:`commit_contributions` and
merges them in :meth:`finish_query` / :meth:`get_aggregate`; the servers'
calls need not change. Nothing in the interface grows with the vector length
times the number of holders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

# The columns of the ``queries`` table in :meth:`QueryRecord.from_row`'s order
# (the same in every SQL backend).
QUERY_COLUMNS = (
    "id, analyst, spec, state, created, deadline, min_holders, vector_length, failure, "
    "failure_detail, contributors, proven_predicates, fingerprint, helper_keys"
)


def _names(value: Any) -> tuple[str, ...]:
    return tuple(value)


def _array(names: tuple[str, ...]) -> Any:
    return list(names)


@dataclass(frozen=True)
class QueryRecord:
    """A query as a server stores it (no contributed values)."""

    id: str
    analyst: str
    spec: bytes  # serialised pets.v1.QuerySpec
    state: int  # a pets.v1.QueryState (pets.server.query_state)
    created: float
    deadline: float
    min_holders: int
    vector_length: int
    failure: str = ""
    failure_detail: str = ""
    contributors: tuple[str, ...] = ()
    proven_predicates: tuple[str, ...] = ()
    fingerprint: bytes = b""
    helper_keys: bytes = b""  # leader, with helpers: the helpers' seal keys as announced

    def with_state(self, state: int, **changes: object) -> QueryRecord:
        return replace(self, state=state, **changes)  # type: ignore[arg-type]

    def to_row(self, names: Callable[[tuple[str, ...]], Any] = _array) -> tuple[Any, ...]:
        """The record as a row of :data:`QUERY_COLUMNS`; ``names`` encodes the
        ``contributors`` and ``proven_predicates`` columns (the inverse of
        :meth:`from_row`'s)."""
        return (
            self.id,
            self.analyst,
            self.spec,
            self.state,
            self.created,
            self.deadline,
            self.min_holders,
            self.vector_length,
            self.failure,
            self.failure_detail,
            names(self.contributors),
            names(self.proven_predicates),
            self.fingerprint,
            self.helper_keys,
        )

    @classmethod
    def from_row(
        cls, r: Sequence[Any], names: Callable[[Any], tuple[str, ...]] = _names
    ) -> QueryRecord:
        """The record of a ``SELECT {QUERY_COLUMNS}`` row. ``names`` decodes the
        ``contributors`` and ``proven_predicates`` columns: PostgreSQL returns
        arrays (the default), SQLite JSON text."""
        return cls(
            id=r[0],
            analyst=r[1],
            spec=bytes(r[2]),
            state=r[3],
            created=r[4],
            deadline=r[5],
            min_holders=r[6],
            vector_length=r[7],
            failure=r[8],
            failure_detail=r[9],
            contributors=names(r[10]),
            proven_predicates=names(r[11]),
            fingerprint=bytes(r[12]),
            helper_keys=bytes(r[13]),
        )


@dataclass(frozen=True)
class ContributionRecord:
    """One committed contribution on the leader: who, its id, what the helpers get."""

    query_id: str
    holder: str
    digest: bytes
    sealed: bytes  # serialised pets.v1.SealedContribution (empty without helpers)


@dataclass(frozen=True)
class VerifyKey:
    """A Prio3 query's secret verify key on one server (issue 12): the key, the
    server's aggregator id (0: leader) and the circuit's per-slot bounds."""

    key: bytes
    aggregator_id: int
    bounds: tuple[int, ...] = ()


@dataclass(frozen=True)
class ReleaseRecord:
    """One release of a query fingerprint on this server (the release rule of
    :mod:`pets.server.release_policy`): which query, a digest of its contributor
    set (never the names), how many contributed, and when (Unix seconds)."""

    fingerprint: bytes
    query_id: str
    contributor_set: bytes  # pets.server.release_policy.contributor_set_digest
    contributors: int
    released: float


class Store(Protocol):
    """One server's durable state. Every method is safe to call from the event loop."""

    async def close(self) -> None: ...

    # -- settings (the helper's seal key)
    async def get_setting(self, key: str) -> bytes | None: ...

    async def put_setting(self, key: str, value: bytes) -> None: ...

    # -- queries
    async def insert_query(self, record: QueryRecord) -> None: ...

    async def update_query(self, record: QueryRecord) -> None:
        """Store a query's state, failure and contributor set (e.g. when it closes)."""
        ...

    async def load_queries(self) -> list[QueryRecord]:
        """Every query, oldest first."""
        ...

    # -- the leader's contributions
    async def contributions(self, query_id: str) -> dict[str, bytes]:
        """``{holder: digest}`` of the query's committed contributions."""
        ...

    async def commit_contributions(
        self,
        records: Sequence[ContributionRecord],
        aggregates: Mapping[str, bytes | memoryview],
    ) -> None:
        """The group commit: ``records`` and the new aggregate of every query they
        touch, in one transaction (see the module docstring)."""
        ...

    async def sealed_contributions(self, query_id: str, holders: Iterable[str]) -> list[bytes]:
        """The stored sealed seeds of ``holders`` (in that order); KeyError if one is
        missing."""
        ...

    # -- aggregates, both roles
    async def get_aggregate(self, query_id: str) -> bytes | None:
        """The query's current aggregate (running or final), or None."""
        ...

    async def finish_query(
        self, record: QueryRecord, aggregate: bytes | memoryview | None, drop: bool = False
    ) -> None:
        """A query's final state in one transaction with its aggregate share:
        ``aggregate`` replaces it, ``drop`` deletes it. Sealed seeds are cleared."""
        ...

    # -- Prio3 (issue 12): the per-query verify key and the rejected contributions
    async def put_verify_key(self, query_id: str, key: VerifyKey) -> None:
        """Keep a query's secret Prio3 verify key with this server's aggregator id
        (0 for the leader) and the circuit's bounds, so verification survives a
        restart."""
        ...

    async def get_verify_key(self, query_id: str) -> VerifyKey | None:
        """A query's verify key, or None (none, or erased)."""
        ...

    async def drop_verify_key(self, query_id: str) -> None:
        """Erase a query's verify key (when the query ends)."""
        ...

    async def record_rejection(self, query_id: str, holder: str, reason: str) -> None:
        """Record that the servers refused ``holder``'s contribution (no values);
        the first reason is kept."""
        ...

    async def rejections(self, query_id: str) -> dict[str, str]:
        """``{holder: reason}`` of a query's refused contributions."""
        ...

    # -- privacy budgets, both roles (pets.dp.PrivacyFilter JSON per analyst and dataset)
    async def get_budget(self, analyst: str, dataset: str) -> str | None:
        """The stored filter JSON, or None if this pair has none yet."""
        ...

    async def list_budgets(self) -> list[str]:
        """Every stored filter JSON, by analyst then dataset."""
        ...

    async def update_budget(
        self, analyst: str, dataset: str, update: Callable[[str | None], str]
    ) -> str:
        """Atomic read-modify-write of one filter (``update`` gets the stored JSON or
        None and returns the new one; if it raises, nothing changes); the new JSON."""
        ...

    async def finish_query_spending(
        self,
        record: QueryRecord,
        aggregate: bytes | memoryview,
        analyst: str,
        dataset: str,
        spend: Callable[[str | None], str],
    ) -> None:
        """:meth:`finish_query` with a final share and, in the same transaction, the
        filter ``spend`` computes from the stored one; if ``spend`` raises (the
        release would overspend), neither the query nor the budget changes."""
        ...

    # -- releases, both roles (pets.server.release_policy)
    async def releases(self, fingerprint: bytes, since: float) -> list[ReleaseRecord]:
        """The fingerprint's recorded releases at or after ``since``, oldest first."""
        ...

    async def record_release(
        self,
        release: ReleaseRecord,
        since: float,
        check: Callable[[list[ReleaseRecord]], None],
    ) -> None:
        """In one transaction: forget every release (of any fingerprint) before
        ``since``; call ``check`` with the fingerprint's other releases since then
        (oldest first); if it raises, record nothing, else record ``release`` (a
        query already recorded keeps its first record)."""
        ...
