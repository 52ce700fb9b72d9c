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

Replicas (issue 14): a backend several processes of one server share
(PostgreSQL) keeps one running-aggregate **shard** per writer (its
:meth:`Store.replica`): :meth:`commit_contributions` writes the caller's own
shard and refuses a query another writer closed (:class:`QueryNotOpenError`),
:meth:`Store.close_query` fixes the contributor set from every writer's
records, :meth:`Store.shards` returns them all for the protocol to merge
(:meth:`pets.protocols.base.RunningAggregate.merge`), a lease
(:meth:`Store.take_lease`) picks one finaliser, and :meth:`finish_query` is
conditional (:class:`AlreadyFinishedError`), so a release and its budget spend
happen once. A single-writer backend (SQLite) has one shard, and its leases
always succeed. Nothing in the interface grows with the vector length times
the number of holders.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from pets.errors import ConflictError, InvalidInputError, NotReadyError

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


class QueryNotOpenError(NotReadyError):
    """A group commit touched queries that are no longer open (another replica
    closed them): nothing of the batch was recorded."""

    def __init__(self, query_ids: Sequence[str]) -> None:
        super().__init__("a query of this batch is no longer accepting contributions")
        self.query_ids = tuple(query_ids)


class QueryFullError(InvalidInputError):
    """A group commit would take a query past its most contributions (``caps``) once
    every replica's are counted: nothing of the batch was recorded. ``totals``:
    every replica's committed count of those queries."""

    def __init__(self, totals: Mapping[str, int]) -> None:
        super().__init__(
            "the query already has the most contributions whose sum it can provably hold"
        )
        self.totals = dict(totals)


class AlreadyFinishedError(ConflictError):
    """:meth:`Store.finish_query` on a query that is already READY or FAILED (another
    replica finished it): nothing changed, no budget was spent."""


#: A shard of a query's running aggregate: its bytes and how many contributions it holds.
Shard = tuple[bytes, int]


class Store(Protocol):
    """One server's durable state. Every method is safe to call from the event loop."""

    async def close(self) -> None: ...

    # -- settings (the helper's seal key)
    async def get_setting(self, key: str) -> bytes | None: ...

    async def put_setting(self, key: str, value: bytes) -> None: ...

    async def put_setting_if_absent(self, key: str, value: bytes) -> bytes:
        """Store ``value`` under ``key`` unless a value is stored already, in one
        transaction, and return the stored value: ``value`` if this call stored it, the
        earlier one otherwise. Replicas starting together on one database agree on one
        value (the first committed) instead of the last writer silently winning."""
        ...

    # -- the per-domain linked-query budget (pets.server.linked_budget)
    async def reserve_linked_query(
        self, domain: str, query_id: str, now: float, window: float, limit: int
    ) -> bool:
        """Count linked query ``query_id`` against ``domain``'s budget, atomically (one
        transaction; on PostgreSQL under a per-domain lock, so replicas share one count):
        False, recording nothing, if ``limit`` queries of the domain were reserved within
        ``window`` seconds before ``now``. Reserving the same query again is True and
        counts once. Reservations out of the window are pruned."""
        ...

    async def linked_query_slot_frees(self, domain: str, now: float, window: float) -> float | None:
        """When the oldest reservation of ``domain`` within the window leaves it (the
        time the next slot frees); None if there is none."""
        ...

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
        caps: Mapping[str, int] | None = None,
    ) -> Mapping[str, int]:
        """The group commit: ``records`` and the new aggregate (this replica's shard)
        of every query they touch, in one transaction (see the module docstring).
        Returns, per query touched, how many contributions every replica committed
        so far (empty for a single-writer store: the caller's own count is exact).
        Raises :class:`QueryNotOpenError` if a query was closed meanwhile, and
        :class:`QueryFullError` if every replica's contributions to a query would
        exceed its entry in ``caps`` (a single-writer store leaves that check to
        the caller's own aggregate)."""
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
        ``aggregate`` replaces it, ``drop`` deletes it. Sealed seeds, running shards
        and the finalisation lease are cleared. :class:`AlreadyFinishedError` if the
        query is already READY or FAILED."""
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

    # -- replicas (issue 14): several processes of one server on one database ------
    async def replica(self) -> str | None:
        """This process's replica id (its shard and leases), or None for a store only
        one process writes (SQLite)."""
        ...

    async def load_query(self, query_id: str) -> QueryRecord | None:
        """One query as stored (another replica may have changed it), or None."""
        ...

    async def own_shard(self, query_id: str) -> tuple[bytes | None, int]:
        """This replica's running aggregate of an unfinished query and how many
        contributions it folded in ((None, 0) if none yet)."""
        ...

    async def shards(self, query_id: str) -> list[Shard]:
        """Every replica's running-aggregate shard of an unfinished query."""
        ...

    async def close_query(self, query_id: str) -> QueryRecord | None:
        """Fix an OPEN query's contributor set from every replica's committed
        contributions and make it CLOSED, in one transaction that waits for group
        commits in progress; returns the stored record (unchanged if the query was
        no longer open), None if there is no such query."""
        ...

    async def take_lease(self, query_id: str, seconds: float) -> bool:
        """Become the query's finaliser for ``seconds`` (by the database's clock), if
        no other replica holds an unexpired lease; True if this replica holds it."""
        ...

    async def renew_lease(self, query_id: str, seconds: float) -> bool:
        """Extend this replica's lease; False if it lapsed and another took it."""
        ...

    async def drop_lease(self, query_id: str) -> None:
        """Give up this replica's lease (finishing a query drops it too)."""
        ...

    def changes(self) -> AsyncIterator[str | None]:
        """The ids of queries another replica inserted, closed or finished, as they
        commit; None first and after every reconnection (the caller then re-reads
        every query, since changes may have been missed). Never ends for a shared
        store; a single-writer store yields nothing."""
        ...
