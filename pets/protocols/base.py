"""The one interface every aggregation protocol implements, role by role.

A protocol (additive secret sharing, Paillier, and next Prio3) is one object
with four halves; servers and clients look it up in
:mod:`pets.protocols.registry` by the query's ``pets.v1.Protocol`` value and
never branch on that value themselves (docs/ARCHITECTURE.md, "Protocols"):

* **holder**: :meth:`AggregationProtocol.holder_refusal` (is an announced
  query acceptable at all) and :meth:`AggregationProtocol.contribute` (a
  contribution from the query plan and the holder's vector);
* **leader**: :meth:`~AggregationProtocol.admit` (validate a submitted spec,
  fix the vector length), :meth:`~AggregationProtocol.check_header` and
  :meth:`~AggregationProtocol.payload_sink` (validate a contribution as it
  arrives), :meth:`~AggregationProtocol.running_aggregate` (accumulate,
  persist as bytes, restore from bytes);
* **helper**: :meth:`~AggregationProtocol.helper_checker` (check and
  finalise what the leader relays);
* **analyst**: :meth:`~AggregationProtocol.analyst_setup`,
  :meth:`~AggregationProtocol.share_servers` and
  :meth:`~AggregationProtocol.combiner` (combine the servers' shares; the
  query layer decodes the total).

Two hooks are for what comes next and have real call sites today:

* **Prepare**, a per-batch joint round between the leader and the helpers
  before the leader commits (:attr:`~AggregationProtocol.prepares`). The
  leader sends each helper :meth:`~AggregationProtocol.prepare_message` per
  contribution, each helper runs its checker's ``check`` and answers, and the
  leader turns the answers into verdicts with
  :meth:`~AggregationProtocol.prepare_verdicts`. Prio3 (draft-irtf-cfrg-vdaf
  §7) fits here: the leader's message carries its verifier share, the
  helpers answer with theirs, and ``prepare_verdicts`` combines them. Its
  per-query verify key, made by the leader when the query opens and sent to
  the helpers with ``RegisterQuery``, belongs in the stored query record and
  in the helper's per-query checker.
* **Release**: :meth:`~AggregationProtocol.release_share` is applied once by
  each server to its final aggregate share before it is stored for release
  (nothing today); for a DP query each server then adds its own noise with
  :meth:`~AggregationProtocol.add_noise` (docs/DP.md, "Noise in the service").

This module is pure: no sockets, no storage. The I/O halves (the gRPC
servicers, the store) live in :mod:`pets.server` and :mod:`pets.client` and
call into these objects.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pets.errors import (
    InvalidInputError,
    InvalidProofError,
    NotReadyError,
    PetsError,
    UnavailableError,
)
from pets.seal import SEALED_BYTES
from pets.v1 import aggregation_pb2 as pb

if TYPE_CHECKING:
    import numpy as np

    from pets.query import QueryPlan
    from pets.transport.wire import ChunkAssembler, ChunkCollector

log = logging.getLogger("pets.protocols")

#: Seals one seed per announced helper (the holder's key checks and signature);
#: supplied by the holder client, which owns the project CA and the signing key.
SeedSealer = Callable[[pb.QueryAnnouncement, Sequence[bytes]], list[pb.SealedSeed]]


class RunningAggregate(Protocol):
    """The leader's running aggregate of one query.

    ``validate`` a received payload (before anything is recorded), ``add``
    what it returned, ``to_bytes`` for the durable copy; a protocol restores
    one from those bytes with :meth:`AggregationProtocol.running_aggregate`.
    Memory is one aggregate per query, whatever the number of holders.
    """

    payload_bytes: int  # the exact size of one contribution's payload

    @property
    def count(self) -> int:
        """Contributions folded in."""
        ...

    def validate(self, payload: bytes | bytearray | list[bytes]) -> object: ...

    def add(self, parsed: object) -> None: ...

    def to_bytes(self) -> bytes | memoryview: ...

    def merge(self, other: RunningAggregate) -> None:
        """Fold in another running aggregate of the same query (the protocol's own
        addition: sum mod 2^64, product mod n^2, Field128 sums), counts added: how
        the leader merges its replicas' shards at finalisation (issue 14)."""
        ...


class HelperChecker(Protocol):
    """A helper's half for one query: check and open what Prepare relays, then sum.

    ``check(items, accepted)`` checks what is not in ``accepted`` yet and
    returns ``({holder: state} newly accepted, [(holder, reason refused)])``;
    ``finalise(items, accepted)`` returns the helper's aggregate share over
    exactly ``items``, reusing the states ``check`` accepted.
    """

    def check(
        self,
        items: Sequence[pb.SealedContribution],
        accepted: dict[str, tuple[bytes, bytes]] | None = None,
    ) -> tuple[dict[str, tuple[bytes, bytes]], list[tuple[str, str]]]: ...

    def finalise(
        self,
        items: Sequence[pb.SealedContribution],
        accepted: dict[str, tuple[bytes, bytes]] | None = None,
    ) -> bytes | memoryview: ...


class ShareCombiner(ABC):
    """The analyst's half for one query: takes each server's share as it streams in."""

    @abstractmethod
    def sink(self, server: str, header: pb.AggregateHeader) -> Callable[[bytes | memoryview], None]:
        """The function that takes ``server``'s share chunk by chunk."""

    @abstractmethod
    def total(self, headers: Sequence[pb.AggregateHeader]) -> np.ndarray | list[int]:
        """The combined integer sums (CPU work: call it off the event loop)."""


@dataclass(frozen=True)
class PrepareContext:
    """What the leader's half of a verifying Prepare needs about the query."""

    query_id: str
    fingerprint: bytes
    verify_key: bytes


@dataclass(frozen=True)
class HelperQueryContext:
    """What a helper's checker needs about one query on this helper (from the
    query's record and the helper's configuration)."""

    query_id: str
    fingerprint: bytes
    vector_length: int
    created: float  # the query's open window, for certificates that expire meanwhile
    deadline: float
    helper: str  # this helper's name
    seal_key: Any  # this helper's X25519 private key
    ca_pem: bytes | None
    insecure: bool  # no TLS: seeds are sealed but not signed


@dataclass(frozen=True)
class HolderContribution:
    """What a holder sends the leader: the payload, the id, the helpers' sealed seeds."""

    payload: bytes | memoryview
    digest: bytes  # identifies the contribution; a re-send carries the same one
    sealed_seeds: list[pb.SealedSeed]


class AggregationProtocol(ABC):
    """One aggregation protocol: its holder, leader, helper and analyst halves."""

    name: ClassVar[str]  # as analysts and node policies spell it
    wire_id: ClassVar[pb.Protocol]  # its pets.v1.Protocol value
    uses_helpers: ClassVar[bool]  # helpers hold shares: register, Prepare, Finalize
    prepares: ClassVar[bool]  # contributions pass the helpers' Prepare before commit
    spec_signed: ClassVar[bool]  # the analyst signs the spec (it carries a key)
    # Prepare is a joint verification (Prio3): the servers share a per-query verify
    # key (:meth:`new_verify_key`), the leader's message carries its verifier share
    # and a refused contribution is a *rejection*, recorded and never replaceable.
    verifies: ClassVar[bool] = False
    supports_dp: ClassVar[bool] = False  # implements add_noise (docs/DP.md)

    # -- analyst ---------------------------------------------------------------
    def analyst_setup(self, spec: pb.QuerySpec, private_key: Any, key_bits: int) -> Any:
        """Fill the spec's protocol fields (e.g. a public key); returns the analyst's
        private material for this query (``None`` when there is none)."""
        return None

    @abstractmethod
    def share_servers(self, status: pb.QueryStatus) -> list[str]:
        """The servers holding a share of the result (``"leader"`` and helper names)."""

    @abstractmethod
    def share_bytes(self, status: pb.QueryStatus) -> int:
        """The exact size of each server's share."""

    @abstractmethod
    def combiner(self, status: pb.QueryStatus, plan: QueryPlan, private_key: Any) -> ShareCombiner:
        """A combiner for the shares of one READY query."""

    # -- holder ----------------------------------------------------------------
    def holder_refusal(
        self, ann: pb.QueryAnnouncement, plan: QueryPlan, configured_helpers: Sequence[str]
    ) -> str | None:
        """Why a holder must not answer this announcement (None: it may)."""
        return None

    @abstractmethod
    async def contribute(
        self,
        ann: pb.QueryAnnouncement,
        plan: QueryPlan,
        vector: np.ndarray,
        *,
        holder: str,
        seed_key: bytes | None,
        sealer: SeedSealer,
    ) -> HolderContribution:
        """A contribution of the holder's evaluated int64 ``vector``."""

    # -- leader ----------------------------------------------------------------
    @abstractmethod
    def admit(self, spec: pb.QuerySpec, plan: QueryPlan, min_holders: int) -> int:
        """Check a submitted spec's protocol fields; the query's vector length."""

    @abstractmethod
    def check_header(
        self, header: pb.ContributionHeader, helpers: Sequence[str]
    ) -> list[pb.SealedSeed] | None:
        """The header's sealed seeds, checked for shape (None if the protocol has none)."""

    @abstractmethod
    def payload_sink(self, expected_bytes: int) -> ChunkCollector | ChunkAssembler:
        """Where the leader collects a contribution's chunks. A sink with a SHA-256
        (:class:`~pets.transport.wire.ChunkAssembler`) must match the announced digest."""

    @abstractmethod
    def running_aggregate(
        self,
        spec: pb.QuerySpec,
        length: int,
        plan: QueryPlan,
        data: bytes | None = None,
        *,
        count: int = 0,
    ) -> RunningAggregate:
        """A fresh aggregate, or with ``data`` one restored over ``count`` contributions."""

    def release_share(self, share: bytes | memoryview) -> bytes | memoryview | None:
        """A server's final share as it will be released, or None to release ``share``
        as it is. Applied once per server and query, at finalisation, before the
        share is stored (differential-privacy noise goes in :meth:`add_noise`)."""
        return None

    # -- differential privacy (docs/DP.md) ----------------------------------------
    def add_noise(
        self, spec: pb.QuerySpec, plan: QueryPlan, share: bytes | memoryview, noise: np.ndarray
    ) -> bytes | memoryview:
        """This server's final share with its DP noise (int64, one value per slot of
        ``plan``) added in the protocol's algebra. Called once per server and DP
        query at finalisation, after :meth:`release_share`; the result is stored
        with the budget it spends and released as it is. It may write the sum into
        a writable ``share`` (the server's own final aggregate, dropped after the
        release) or into ``noise``'s memory (the caller zeroes the noise only after
        storing the result)."""
        raise InvalidInputError(f"the {self.name} protocol cannot add differential-privacy noise")

    def noise_modulus(self, status: pb.QueryStatus) -> int:
        """The modulus of the combined total the analyst decodes with noise (2^64 for a
        ring; a prime for a field; the key's n for Paillier)."""
        return 1 << 64

    # -- Prepare: leader side, helper side ---------------------------------------
    def new_verify_key(self, helpers: int) -> bytes | None:
        """A fresh secret verify key for a new query with ``helpers`` helpers, which
        the leader sends each helper in RegisterQuery and stores (None: the
        protocol has none; raises InvalidInputError if it cannot run with that
        many helpers)."""
        return None

    def circuit_bounds(self, plan: QueryPlan) -> list[int]:
        """What the helpers need of the plan to verify (Prio3: the per-slot bounds of
        its circuit), sent with the verify key in RegisterQuery; [] if nothing."""
        return []

    def prepare_message(
        self,
        holder: str,
        certificate: bytes,
        seeds: Sequence[pb.SealedSeed],
        parsed: object,
        *,
        context: PrepareContext | None = None,
    ) -> pb.SealedContribution:
        """What the leader relays to the helpers for one contribution (also stored,
        serialised, and relayed again at finalisation). ``parsed`` is the leader's
        validated share, from which a protocol like Prio3 derives the leader's
        verifier share; the additive protocol relays the sealed seeds only."""
        return pb.SealedContribution(holder=holder, certificate=certificate, seeds=seeds)

    def prepare_verdicts(
        self,
        query_id: str,
        holders: Sequence[str],
        answers: Mapping[str, pb.PrepareResponse | BaseException],
        *,
        parsed: Mapping[str, object] | None = None,
        records: Mapping[str, pb.SealedContribution] | None = None,
    ) -> dict[str, PetsError]:
        """The refused holders of one Prepare batch and why, from every helper's answer.

        A holder is committed only if every helper accepted it. A helper that
        cannot be reached fails the whole batch as unavailable (the holders
        retry), one that says the query is closing passes that on, and an
        answer that does not account for every contribution exactly once
        (e.g. from a helper of another version) is no acceptance.
        """
        errors: dict[str, PetsError] = {}
        sent = set(holders)
        for helper, outcome in answers.items():
            if isinstance(outcome, BaseException):
                if isinstance(outcome, NotReadyError):
                    failure: PetsError = outcome
                else:
                    log.warning(
                        "helper could not check contributions",
                        extra={"query_id": query_id, "helper": helper, "error": str(outcome)},
                    )
                    failure = UnavailableError(
                        f"helper {helper} could not check the contribution; retry"
                    )
                for holder in holders:
                    errors.setdefault(holder, failure)
                continue
            names = [r.holder for r in outcome.refused]
            if (
                outcome.query_id != query_id
                or outcome.accepted + len(names) != len(holders)
                or len(set(names)) != len(names)
                or not set(names) <= sent
            ):
                log.warning(
                    "helper gave no verdict on every contribution",
                    extra={"query_id": query_id, "helper": helper},
                )
                for holder in holders:
                    errors.setdefault(
                        holder, UnavailableError(f"helper {helper} gave no verdict; retry")
                    )
                continue
            for refusal in outcome.refused:
                errors.setdefault(
                    refusal.holder,
                    InvalidProofError(
                        f"helper {helper} refused the contribution: {refusal.reason}"
                    ),
                )
        return errors

    # -- helper ----------------------------------------------------------------
    @abstractmethod
    def helper_checker(self, context: HelperQueryContext) -> HelperChecker:
        """The helper's checker for one query (per-query state such as a verify key
        belongs in it)."""

    def keyed_checker(
        self,
        checker: HelperChecker,
        verify_key: bytes,
        aggregator_id: int,
        bounds: Sequence[int],
    ) -> HelperChecker:
        """``checker`` with the query's verify key, this helper's aggregator id and the
        circuit's per-slot bounds (protocols that :attr:`verifies`; the others'
        checkers take no key)."""
        return checker


class HelperSharingProtocol(AggregationProtocol):
    """A protocol whose holders split each contribution among the leader and the
    configured helpers (additive sharing, Prio3): the holder half refuses an
    announcement that would share among other helpers than its node is set up with.

    Sharing among fewer (or repeated) helpers than configured would weaken the
    one-honest-server guarantee the holder relies on.
    """

    uses_helpers: ClassVar[bool] = True
    # The exact number of helpers the protocol shares among (None: any number).
    helper_count: ClassVar[int | None] = None
    sealed_what: ClassVar[str] = "seed"  # what a holder seals to each helper, for messages

    def holder_refusal(
        self, ann: pb.QueryAnnouncement, plan: QueryPlan, configured_helpers: Sequence[str]
    ) -> str | None:
        if plan.length != ann.vector_length:
            return "announced vector length does not match the query"
        helpers = list(ann.helpers)
        if (
            len(set(helpers)) != len(helpers)
            or (self.helper_count is not None and len(helpers) != self.helper_count)
            or set(helpers) != set(configured_helpers)
        ):
            return f"announced helpers {helpers} differ from the configured set"
        return None

    def check_header(
        self, header: pb.ContributionHeader, helpers: Sequence[str]
    ) -> list[pb.SealedSeed]:
        """One sealed seed (or share key) per helper, in order, of the right size. The
        leader cannot open them: the helpers check and open them in Prepare."""
        seeds = header.sealed_seeds
        named = [s.helper for s in seeds]
        if named != list(helpers) or (
            self.helper_count is not None and len(seeds) != self.helper_count
        ):
            raise InvalidInputError(
                f"expected one sealed {self.sealed_what} for each of the helpers "
                f"{list(helpers)}, in that order; got {named}"
            )
        for s in seeds:
            if len(s.sealed) != SEALED_BYTES:
                raise InvalidInputError(
                    f"the {self.sealed_what} sealed to helper {s.helper} has "
                    f"{len(s.sealed)} bytes, expected {SEALED_BYTES}"
                )
        return list(seeds)
