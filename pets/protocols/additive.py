"""Additive secret sharing over Z_2^64 with the sealed-seed relay (the default protocol).

The holder draws (or derives) one 32-byte seed per helper, sends the leader
``x - sum PRG(seed_i)`` (:func:`pets.sharing.shard`) and each seed sealed to
its helper with HPKE (RFC 9180, :mod:`pets.seal`) and signed with its
certificate key; the leader cannot open them. The contribution is identified
by a hash of its seeds, so a re-send is idempotent. Before the leader commits
a batch, every helper checks the holders' certificates and signatures and
opens the seeds (Prepare); at finalisation it sums the PRG expansions of
exactly the contributor set the leader fixed. The analyst adds the leader's
and every helper's share. See docs/ARCHITECTURE.md, "Additive".

Halves here: :class:`AdditiveAggregate` (leader), :class:`SeedOpener`
(helper), :class:`AdditiveProtocol` (holder, analyst, and the glue).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

import numpy as np
from cryptography.hazmat.primitives.asymmetric import x25519

from pets import encoding, prg, seal, sharing
from pets.errors import InvalidInputError, PetsError
from pets.identity.certificates import Role
from pets.protocols.base import (
    HelperQueryContext,
    HelperSharingProtocol,
    HolderContribution,
    SeedSealer,
    ShareCombiner,
)
from pets.query import QueryPlan
from pets.runtime.offload import offload
from pets.transport import wire
from pets.v1 import aggregation_pb2 as pb

# --------------------------------------------------------------------------- leader


class AdditiveAggregate:
    """The leader's sum of masked ``uint64`` vectors (mod 2^64)."""

    def __init__(
        self,
        length: int,
        data: bytes | None = None,
        *,
        max_contributions: int | None = None,
        count: int = 0,
    ) -> None:
        self.length = length
        self.max_contributions = max_contributions
        self.payload_bytes = length * wire.RING_DTYPE.itemsize
        self.count = count
        if data is None:
            self.total = np.zeros(length, dtype=np.uint64)
        else:
            self.total = wire.vector_from_bytes(data, length).copy()

    def validate(self, payload: bytes | bytearray | list[bytes]) -> list[np.ndarray]:
        """The payload as ``uint64`` views, one per received chunk (no copy).

        Chunks whose sizes are not whole values (legal, if odd, on the wire)
        are joined first.
        """
        parts = payload if isinstance(payload, list) else [payload]
        if sum(len(p) for p in parts) != self.payload_bytes:
            raise InvalidInputError(
                f"vector payload has {sum(len(p) for p in parts)} bytes, expected "
                f"{self.payload_bytes} ({self.length} values of 8 bytes)"
            )
        if any(len(p) % wire.RING_DTYPE.itemsize for p in parts):
            parts = [b"".join(parts)]
        return [np.frombuffer(p, dtype=wire.RING_DTYPE) for p in parts]

    def add(self, parsed: object) -> None:
        if not isinstance(parsed, list):
            raise InvalidInputError("an additive contribution must come from validate()")
        if self.max_contributions is not None and self.count >= self.max_contributions:
            raise InvalidInputError(
                f"query already has {self.count} contributions, the most whose sum provably "
                "fits the 64-bit ring"
            )
        at = 0
        for part in parsed:
            end = at + part.shape[0]
            sharing.aggregate(self.total[at:end], part)
            at = end
        self.count += 1

    def merge(self, other: object) -> None:
        """Add another shard of this query's sum (mod 2^64: uint64 wraps)."""
        if not isinstance(other, AdditiveAggregate) or other.length != self.length:
            raise InvalidInputError("only a shard of the same additive query merges")
        np.add(self.total, other.total, out=self.total)
        self.count += other.count

    def to_bytes(self) -> bytes | memoryview:
        """The running sum as little-endian bytes; on a little-endian host a
        zero-copy view (valid until the next ``add``: the leader writes it
        before folding in anything else)."""
        return wire.vector_view(self.total)


# --------------------------------------------------------------------------- helper


def _same_seed(
    accepted: tuple[bytes, bytes] | None, item: pb.SealedContribution, helper: str
) -> bool:
    """Whether ``item`` carries exactly the sealed seed already accepted for its holder."""
    return (
        accepted is not None
        and len(item.seeds) == 1
        and item.seeds[0].helper == helper
        and hmac.compare_digest(accepted[0], bytes(item.seeds[0].sealed))
    )


@dataclass
class SeedOpener:
    """Checks and opens contributors' sealed seeds for one query on one helper.

    With TLS each contributor's certificate must be a holder certificate of
    the CA naming that holder (checked for every item: one certificate never
    stands for two names) whose key signed the sealed seed; in ``--insecure``
    mode nothing is signed and only the sealing is checked. The parsed key of
    each certificate is kept for the opener's lifetime (one batch).
    """

    query_id: str
    fingerprint: bytes
    vector_length: int
    created: float  # the query's open window, for certificates that expire meanwhile
    deadline: float
    helper: str
    seal_key: x25519.X25519PrivateKey
    ca_pem: bytes | None
    insecure: bool = False
    _keys: dict[bytes, object] = field(default_factory=dict)

    @classmethod
    def for_query(cls, context: HelperQueryContext) -> Self:
        """The opener for the query and helper ``context`` describes."""
        return cls(
            context.query_id,
            context.fingerprint,
            context.vector_length,
            context.created,
            context.deadline,
            context.helper,
            context.seal_key,
            context.ca_pem,
            context.insecure,
        )

    def open(
        self,
        item: pb.SealedContribution,
        *,
        during: tuple[datetime, datetime] | None = None,
    ) -> tuple[bytes, bytes]:
        """``(sealed bytes, seed)`` of one contributor, checked; its certificate valid
        now or, with ``during``, at some moment of it. Raises InvalidProofError
        (naming the holder) or InvalidInputError."""
        if len(item.seeds) != 1 or item.seeds[0].helper != self.helper:
            raise InvalidInputError(
                f"contributor {item.holder} must come with exactly one seed, sealed to "
                f"{self.helper}"
            )
        sealed = bytes(item.seeds[0].sealed)
        context = seal.SeedContext(self.query_id, self.fingerprint, item.holder, self.helper)
        if not self.insecure:
            cert = bytes(item.certificate)
            seal.check_party(cert, self.ca_pem, Role.HOLDER, item.holder, during=during)
            key = self._keys.get(cert)
            if key is None:
                key = self._keys[cert] = seal.certificate_key(cert)
            seal.verify_sealed(context, sealed, bytes(item.seeds[0].signature), key)  # type: ignore[arg-type]
        return sealed, seal.open_sealed(sealed, self.seal_key, context)

    def check(
        self,
        items: Sequence[pb.SealedContribution],
        accepted: dict[str, tuple[bytes, bytes]] | None = None,
    ) -> tuple[dict[str, tuple[bytes, bytes]], list[tuple[str, str]]]:
        """Check and open every item (Prepare) whose exact sealed seed is not
        already in ``accepted``.

        Returns ``({holder: (sealed, seed)} newly accepted, [(holder, reason refused)])``.
        """
        known = accepted or {}
        opened: dict[str, tuple[bytes, bytes]] = {}
        refused: list[tuple[str, str]] = []
        for item in items:
            if _same_seed(known.get(item.holder), item, self.helper):
                continue
            try:
                opened[item.holder] = self.open(item)
            except PetsError as exc:
                refused.append((item.holder, str(exc)))
        return opened, refused

    def finalise(
        self,
        items: Sequence[pb.SealedContribution],
        accepted: dict[str, tuple[bytes, bytes]] | None = None,
    ) -> bytes | memoryview:
        """The helper's share (Finalize): the sum of the expansions of exactly
        ``items``' seeds.

        A holder whose exact sealed seed Prepare already accepted (``accepted``)
        is not checked again; any other item is checked and opened (raising on
        the first that fails), its certificate counted valid if it was at any
        time while the query was open: a holder whose certificate expired after
        it contributed still counts. Memory: the sum and one scratch vector
        (:func:`pets.sharing.aggregate_seeds`), plus 32 bytes per seed.
        """
        accepted = accepted or {}
        now = datetime.now(UTC)
        opened_at = datetime.fromtimestamp(self.created, UTC)
        during = (min(opened_at, now), min(datetime.fromtimestamp(self.deadline, UTC), now))
        seeds = []
        for item in items:  # every seed checked first: nothing is expanded for a bad set
            known = accepted.get(item.holder)
            if known is not None and _same_seed(known, item, self.helper):
                seeds.append(known[1])
            else:
                seeds.append(self.open(item, during=during)[1])
        total = sharing.aggregate_seeds(seeds, self.vector_length)
        return wire.vector_view(total)  # no copy on a little-endian host


# --------------------------------------------------------------------------- analyst


class _RingSum(ShareCombiner):
    """Adds every server's share into one vector as the chunks arrive
    (:func:`pets.sharing.unshard` without holding the shares)."""

    def __init__(self, status: pb.QueryStatus) -> None:
        self._query_id = status.query_id
        self._total = np.zeros(status.vector_length, dtype=np.uint64)
        self._adders: list[wire.RingAdder] = []

    def sink(self, server: str, header: pb.AggregateHeader) -> Callable[[bytes | memoryview], None]:
        adder = wire.RingAdder(self._total)
        self._adders.append(adder)
        return adder.add

    def total(self, headers: Sequence[pb.AggregateHeader]) -> np.ndarray:
        for adder in self._adders:
            adder.finish()
        if len({h.contributors for h in headers}) != 1:
            raise PetsError(
                f"servers disagree on the number of contributors of {self._query_id}; not decoding"
            )
        return self._total


# --------------------------------------------------------------------------- the protocol


class AdditiveProtocol(HelperSharingProtocol):
    name: ClassVar[str] = "additive"
    wire_id: ClassVar[pb.Protocol] = pb.PROTOCOL_ADDITIVE
    uses_helpers: ClassVar[bool] = True
    helper_count: ClassVar[int | None] = None  # any number of helpers
    sealed_what: ClassVar[str] = "seed"
    prepares: ClassVar[bool] = True
    spec_signed: ClassVar[bool] = False
    supports_dp: ClassVar[bool] = True

    # -- analyst
    def share_servers(self, status: pb.QueryStatus) -> list[str]:
        return ["leader", *status.helpers]

    def share_bytes(self, status: pb.QueryStatus) -> int:
        return status.vector_length * wire.RING_DTYPE.itemsize

    def combiner(self, status: pb.QueryStatus, plan: QueryPlan, private_key: Any) -> _RingSum:
        return _RingSum(status)

    def add_noise(
        self, spec: pb.QuerySpec, plan: QueryPlan, share: bytes | memoryview, noise: np.ndarray
    ) -> bytes | memoryview:
        """The share plus the noise in Z_2^64 (:func:`pets.dp.add_to_ring_share`),
        without an 8 MB copy per 10^6 slots: added in place into a writable ``share``
        (the server's own final aggregate, which it releases and drops) and returned;
        into ``noise`` for a read-only one, returned as a view of the noise, which the
        caller stores before it drops (zeroes) the noise."""
        from pets.dp import add_to_ring_share

        ring = np.frombuffer(share, dtype=wire.RING_DTYPE)
        if ring.size != plan.length:
            raise InvalidInputError(f"share has {ring.size} slots, the plan {plan.length}")
        if ring.flags.writeable and ring.dtype == np.uint64:  # little-endian: no copy
            add_to_ring_share(ring, noise, into="share")
            return share
        noisy = add_to_ring_share(ring.astype(np.uint64, copy=False), noise, into="noise")
        return noisy.astype(wire.RING_DTYPE, copy=False).data.cast("B")

    # -- holder (holder_refusal: HelperSharingProtocol's, among any number of helpers)
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
        return await self.contribute_ring(
            ann, encoding.to_ring(vector), seed_key=seed_key, sealer=sealer
        )

    async def contribute_ring(
        self,
        ann: pb.QueryAnnouncement,
        ring_vector: np.ndarray,
        *,
        seed_key: bytes | None,
        sealer: SeedSealer,
    ) -> HolderContribution:
        """Shard a ``uint64`` vector: the leader's masked share and one sealed seed
        per helper. With ``seed_key`` (a node's long-term 32-byte secret) the
        seeds are derived, so a re-send is byte-identical; otherwise fresh."""
        if ring_vector.shape != (ann.vector_length,):
            raise InvalidInputError(
                f"query {ann.query_id} takes {ann.vector_length} values, got {ring_vector.shape}"
            )
        if len(set(ann.helpers)) != len(ann.helpers) or not ann.helpers:
            raise InvalidInputError("the announcement must name distinct helpers")
        if seed_key is not None:
            # Bound to everything that identifies this sharing, including the vector:
            # re-sharding the same vector gives the same shares (an idempotent re-send),
            # while any other query, helper slot or vector gets independent masks.
            x_digest = await offload(ring_vector.nbytes, wire.digest, wire.vector_view(ring_vector))
            seeds = [
                prg.derive_seed(
                    seed_key,
                    ann.query_id.encode(),
                    bytes(ann.fingerprint),
                    i.to_bytes(4, "big"),
                    name.encode(),
                    x_digest,
                )
                for i, name in enumerate(ann.helpers)
            ]
        else:
            seeds = [prg.new_seed() for _ in ann.helpers]
        sealed = sealer(ann, seeds)  # before any PRG work: a bad key fails fast
        shares = await offload(
            ring_vector.nbytes, sharing.shard, ring_vector, 1 + len(ann.helpers), seeds=seeds
        )
        return HolderContribution(
            payload=wire.vector_view(shares.leader),
            digest=seal.contribution_digest(ann.query_id, seeds),
            sealed_seeds=sealed,
        )

    # -- leader
    def admit(self, spec: pb.QuerySpec, plan: QueryPlan, min_holders: int) -> int:
        if spec.paillier_public_key:
            raise InvalidInputError("paillier_public_key is only for PROTOCOL_PAILLIER queries")
        if plan.max_holders() < min_holders:
            raise InvalidInputError(
                f"the sum of {min_holders} holders' vectors for this query may exceed the 64-bit "
                f"ring (at most {plan.max_holders()} fit); narrow the bounds with a clip"
            )
        return plan.length

    def payload_sink(self, expected_bytes: int) -> wire.ChunkCollector:
        # The chunks as received: the running sum reads each once, nothing is copied.
        return wire.ChunkCollector(expected_bytes)

    def running_aggregate(
        self,
        spec: pb.QuerySpec,
        length: int,
        plan: QueryPlan,
        data: bytes | None = None,
        *,
        count: int = 0,
    ) -> AdditiveAggregate:
        return AdditiveAggregate(length, data, max_contributions=plan.max_holders(), count=count)

    # -- helper
    def helper_checker(self, context: HelperQueryContext) -> SeedOpener:
        return SeedOpener.for_query(context)
