"""Packed Paillier: holders encrypt to the analyst's key, the leader multiplies.

The analyst makes a key pair per query and signs the spec that carries the
public key (:mod:`pets.identity.signing`); the leader and every holder check
that signature, so the leader cannot substitute a key of its own. Holders
pack several values per plaintext (:class:`pets.paillier.PackingLayout`) and
encrypt; the leader folds ciphertexts into its running product with
:class:`pets.paillier.Accumulator` (the same accumulator the unit tests,
known-answer vectors and benchmarks exercise) and releases only the product,
only to the analyst, who decrypts and unpacks it. No helper takes part.
Contributions are identified by the SHA-256 of their payload. See
docs/ARCHITECTURE.md, "Paillier".

The packing layout is derived by holder, leader and analyst from the same
inputs (the public key, the compiled plan and ``max_holders`` from the spec),
so nobody has to trust anybody else's arithmetic (:func:`layout_for`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, cast

from pets.errors import InvalidInputError
from pets.protocols.base import (
    AggregationProtocol,
    HelperChecker,
    HelperQueryContext,
    HolderContribution,
    SeedSealer,
    ShareCombiner,
)
from pets.runtime.offload import offload
from pets.transport import wire
from pets.v1 import aggregation_pb2 as pb

if TYPE_CHECKING:
    import numpy as np
    import phe

    from pets.paillier import Accumulator, PackingLayout
    from pets.query import QueryPlan

DEFAULT_MAX_HOLDERS = 1000


def effective_max_holders(plan: QueryPlan, requested: int, min_holders: int = 1) -> int:
    """The most holders a Paillier query takes: ``requested``, or by default
    the smaller of :data:`DEFAULT_MAX_HOLDERS` and what the plan can decode.

    Decoding checks every sum against the 64-bit range that its clipped terms
    allow (:func:`pets.query.decode`), so a query is never accepted for more
    holders than that check can prove exact (``plan.max_holders()``), nor for
    fewer than its ``min_holders``.
    """
    decodable = plan.max_holders()
    max_holders = requested or min(DEFAULT_MAX_HOLDERS, decodable)
    if max_holders > decodable:
        raise InvalidInputError(
            f"max_holders {max_holders} exceeds the {decodable} holders whose sums this query "
            "can decode exactly; lower max_holders or narrow the bounds with a clip"
        )
    if max_holders < min_holders:
        raise InvalidInputError(
            f"max_holders {max_holders} is below min_holders {min_holders}: the query could "
            "never be released"
        )
    return max_holders


def noise_bound(plan: QueryPlan) -> int:
    """``W``: the leader's DP noise, shifted by ``W``, lies in ``[0, 2W]`` (0 without DP).

    Fails with probability at most 2^-64 per slot (:meth:`pets.dp.NoisePlan.tail_bound`);
    a draw beyond it is refused, never clamped (:func:`pets.dp.check_noise_bound`).
    """
    if plan.query.dp is None:
        return 0
    from pets.dp import noise_plan

    return noise_plan(plan).tail_bound(1)


def noise_holders(plan: QueryPlan) -> int:
    """Packing headroom for the leader's noise, in holders: ``ceil(2W / (hi - lo))``.

    The noise enters each slot as one more non-negative term ``z + W`` in
    ``[0, 2W]``, so every slot must hold ``max_holders`` contributions plus
    this many more of the widest span.
    """
    w = noise_bound(plan)
    if not w:
        return 0
    lo, hi = plan.holder_bounds()
    return -(-2 * w // max(1, hi - lo))


def layout_for(
    public_key: phe.PaillierPublicKey, plan: QueryPlan, max_holders: int
) -> PackingLayout:
    """The packing layout for one query under one key (with room for DP noise)."""
    from pets.paillier import PackingLayout

    lo, hi = plan.holder_bounds()
    return PackingLayout.for_key(
        public_key,
        lo=lo,
        hi=hi,
        max_holders=max_holders + noise_holders(plan),
        length=plan.length,
    )


def _public_key(spec: pb.QuerySpec) -> phe.PaillierPublicKey:
    from pets.paillier import public_key_from_bytes

    if not spec.paillier_public_key:
        raise InvalidInputError("a Paillier query needs the analyst's paillier_public_key")
    return public_key_from_bytes(bytes(spec.paillier_public_key))


# --------------------------------------------------------------------------- holder


def encrypt_contribution(ann: pb.QueryAnnouncement, plan: QueryPlan, vector: np.ndarray) -> bytes:
    """The ciphertext payload for ``vector`` (the holder's int64 query vector)."""
    from pets.paillier import ciphertexts_to_bytes, encrypt_vector

    public_key = _public_key(ann.spec)
    layout = layout_for(public_key, plan, effective_max_holders(plan, ann.spec.max_holders))
    # encrypt_vector decides itself when a vector is large enough for a process pool.
    return ciphertexts_to_bytes(public_key, encrypt_vector(public_key, layout, vector))


# --------------------------------------------------------------------------- leader


class PaillierAggregate:
    """The leader's running product: a :class:`pets.paillier.Accumulator` seen as a
    :class:`~pets.protocols.base.RunningAggregate` (the payload is one
    contribution's fixed-width ciphertexts; its cap is the layout's headroom)."""

    def __init__(self, accumulator: Accumulator, payload_bytes: int) -> None:
        self.accumulator = accumulator
        self.payload_bytes = payload_bytes

    @property
    def count(self) -> int:
        return self.accumulator.contributors

    @property
    def max_contributions(self) -> int | None:
        """The layout's headroom: the most contributions the slots can carry."""
        return self.accumulator.max_contributions

    def validate(self, payload: bytes | bytearray | list[bytes]) -> object:
        """Parse and check every ciphertext (range and coprimality) exactly once."""
        contribution = self.accumulator.begin()
        for part in payload if isinstance(payload, list) else [payload]:
            contribution.feed(part)
        contribution.ciphertexts()  # complete, or InvalidInputError
        return contribution

    def add(self, parsed: object) -> None:
        from pets.paillier import Contribution

        if not isinstance(parsed, Contribution):
            raise InvalidInputError("a Paillier contribution must come from validate()")
        self.accumulator.add(parsed)

    def merge(self, other: object) -> None:
        """Multiply in another shard's ciphertexts (mod n^2)."""
        if not isinstance(other, PaillierAggregate):
            raise InvalidInputError("only a shard of the same Paillier query merges")
        self.accumulator.merge(other.accumulator)

    def to_bytes(self) -> bytes:
        return self.accumulator.to_bytes()


# --------------------------------------------------------------------------- analyst


def prepare_key(private_key: Any, bits: int) -> tuple[Any, bytes]:
    """A fresh key pair (or the given private key); returns it and the public key bytes."""
    from pets.paillier import generate_keypair, public_key_to_bytes

    if private_key is None:
        _, private_key = generate_keypair(bits)
    return private_key, public_key_to_bytes(private_key.public_key)


class _Decryption(ShareCombiner):
    """The leader's product, assembled, then decrypted and unpacked into exact sums."""

    def __init__(self, status: pb.QueryStatus, plan: QueryPlan, private_key: Any) -> None:
        self._status = status
        self._plan = plan
        self._private_key = private_key
        self._assembler: wire.ChunkAssembler | None = None

    def sink(self, server: str, header: pb.AggregateHeader) -> Callable[[bytes | memoryview], None]:
        self._assembler = wire.ChunkAssembler(header.payload_bytes)
        # ChunkAssembler.add copies from any buffer, memoryviews included.
        return cast("Callable[[bytes | memoryview], None]", self._assembler.add)

    def total(self, headers: Sequence[pb.AggregateHeader]) -> list[int]:
        from pets.paillier import ciphertexts_from_bytes, decrypt_vector, public_key_to_bytes

        if self._private_key is None:
            raise InvalidInputError("no private key for this Paillier query in this process")
        assert self._assembler is not None and len(headers) == 1
        public_key = self._private_key.public_key
        spec = self._status.spec
        if bytes(spec.paillier_public_key) != public_key_to_bytes(public_key):
            raise InvalidInputError("the query was submitted under another public key")
        layout = layout_for(
            public_key, self._plan, effective_max_holders(self._plan, spec.max_holders)
        )
        ciphertexts = ciphertexts_from_bytes(public_key, bytes(self._assembler.finish()))
        extra = noise_holders(self._plan)
        sums = decrypt_vector(
            self._private_key, layout, ciphertexts, headers[0].contributors + extra
        )
        if not extra:
            return sums
        # DP: the leader's noise came in as z + W in `extra` holders' headroom; unpacking
        # added extra*lo. The noisy signed totals, reduced mod n for pets.dp.decode_noisy.
        shift = extra * layout.lo + noise_bound(self._plan)
        n = int(public_key.n)
        return [(x - shift) % n for x in sums]


# --------------------------------------------------------------------------- the protocol


class PaillierProtocol(AggregationProtocol):
    name: ClassVar[str] = "paillier"
    wire_id: ClassVar[pb.Protocol] = pb.PROTOCOL_PAILLIER
    uses_helpers: ClassVar[bool] = False
    prepares: ClassVar[bool] = False
    spec_signed: ClassVar[bool] = True
    supports_dp: ClassVar[bool] = True

    # -- analyst
    def analyst_setup(self, spec: pb.QuerySpec, private_key: Any, key_bits: int) -> Any:
        private_key, spec.paillier_public_key = prepare_key(private_key, key_bits)
        return private_key

    def share_servers(self, status: pb.QueryStatus) -> list[str]:
        return ["leader"]

    def share_bytes(self, status: pb.QueryStatus) -> int:
        # One ciphertext is twice the modulus' size.
        return status.vector_length * 2 * len(status.spec.paillier_public_key)

    def combiner(self, status: pb.QueryStatus, plan: QueryPlan, private_key: Any) -> _Decryption:
        return _Decryption(status, plan, private_key)

    # -- holder
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
        payload = await asyncio.to_thread(encrypt_contribution, ann, plan, vector)
        digest = await offload(len(payload), wire.digest, payload)
        return HolderContribution(payload=payload, digest=digest, sealed_seeds=[])

    # -- leader
    def admit(self, spec: pb.QuerySpec, plan: QueryPlan, min_holders: int) -> int:
        """Ciphertexts per contribution; validates the key and ``max_holders``."""
        public_key = _public_key(spec)
        max_holders = effective_max_holders(plan, spec.max_holders, min_holders)
        return layout_for(public_key, plan, max_holders).num_plaintexts

    def check_header(
        self, header: pb.ContributionHeader, helpers: Sequence[str]
    ) -> list[pb.SealedSeed] | None:
        if header.sealed_seeds:
            raise InvalidInputError("sealed seeds are only part of additive contributions")
        return None

    def payload_sink(self, expected_bytes: int) -> wire.ChunkAssembler:
        # One buffer, hashed as it fills: the SHA-256 identifies the contribution.
        return wire.ChunkAssembler(expected_bytes, sha256=True)

    def running_aggregate(
        self,
        spec: pb.QuerySpec,
        length: int,
        plan: QueryPlan,
        data: bytes | None = None,
        *,
        count: int = 0,
    ) -> PaillierAggregate:
        from pets.paillier import Accumulator, ciphertext_width

        public_key = _public_key(spec)
        max_holders = effective_max_holders(plan, spec.max_holders)
        if data is None:
            acc = Accumulator(public_key, length, max_contributions=max_holders)
        else:
            acc = Accumulator.from_bytes(
                public_key, length, data, contributors=count, max_contributions=max_holders
            )
        return PaillierAggregate(acc, length * ciphertext_width(public_key))

    def add_noise(
        self, spec: pb.QuerySpec, plan: QueryPlan, share: bytes | memoryview, noise: np.ndarray
    ) -> bytes:
        """The product times an encryption of the leader's packed noise (shifted by W).

        The only server here is the leader, so a DP release of a Paillier query is
        private only if the leader is honest (docs/DP.md, "Threat model").
        """
        import numpy as np

        from pets.dp import check_noise_bound
        from pets.paillier import ciphertexts_from_bytes, ciphertexts_to_bytes, encrypt_packed
        from pets.paillier.packing import pack_offsets

        public_key = _public_key(spec)
        layout = layout_for(public_key, plan, effective_max_holders(plan, spec.max_holders))
        w = noise_bound(plan)
        check_noise_bound(noise, w)
        offsets = (noise.astype(object) + w).astype(np.uint64)
        encrypted = encrypt_packed(public_key, pack_offsets(layout, offsets))
        n2 = int(public_key.n) ** 2
        product = ciphertexts_from_bytes(public_key, bytes(share))
        noisy = [c * e % n2 for c, e in zip(product, encrypted, strict=True)]
        return ciphertexts_to_bytes(public_key, noisy)

    def noise_modulus(self, status: pb.QueryStatus) -> int:
        return int(_public_key(status.spec).n)

    # -- helper
    def helper_checker(self, context: HelperQueryContext) -> HelperChecker:
        raise InvalidInputError("Paillier queries involve no helper")
