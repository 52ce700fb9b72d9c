"""Bit proofs and range proofs lo <= v <= hi over Pedersen commitments.

Bit proof: C commits to 0 or 1, an OR of two Schnorr statements on G:
``C = r * G`` or ``C - H = r * G`` (Cramer-Damgard-Schoenmakers 1994).

Range proof (bit decomposition with a non-binary top digit): let
w = hi - lo and k = bitlen(w). Every u in [0, w], and only those, can be
written u = sum(b_i * d_i) with bits b_i and digits

    d_i = 2^i  (i < k - 1),    d_{k-1} = w - 2^(k-1) + 1,

(the top digit "tops up" to exactly w; see e.g. Schoenmakers, "Interval
proofs revisited", 2005). So one set of k bit commitments proves the two-sided
bound, instead of two decompositions. The prover commits C_i = b_i*H + r_i*G
with sum(d_i * r_i) = r, so the verifier checks ``sum(d_i * C_i) == C - lo*H``
directly (a few point additions, Horner on the powers of two) and the k bit
proofs share one Fiat-Shamir challenge. Bounds are integers with
0 <= hi - lo < 2^64 and lo, hi in [0, n).

Wire format of :class:`RangeProof`: ``u8(k) || k * 33-byte C_i || sigma proof``
(sigma proof = 32-byte challenge then 3 scalars per bit; for lo == hi there are
no bits and the sigma proof is one Schnorr proof, two scalars).
"""

from __future__ import annotations

from dataclasses import dataclass

from pets.errors import InvalidInputError, InvalidProofError
from pets.zk.curve import POINT_BYTES, N
from pets.zk.group import Group, Point, get_group
from pets.zk.pedersen import Opening, PedersenParams
from pets.zk.relation import Relation
from pets.zk.rng import DEFAULT_RNG, RandomSource, random_scalar
from pets.zk.sigma import (
    And,
    DLRep,
    Or,
    Secret,
    SigmaProof,
    Statement,
    check_challenge,
    single_secret_branch,
)
from pets.zk.transcript import Transcript

MAX_RANGE_BITS = 64


def bit_statement(params: PedersenParams, commitment: Point, secret: Secret) -> Or:
    """``commitment = secret*G`` or ``commitment - H = secret*G``."""
    g = params.blinding_base
    return Or(
        DLRep(commitment, secret * g),
        DLRep(commitment - params.value_base, secret * g),
    )


class BitRelation(Relation):
    """``commitment`` opens to 0 or 1."""

    label = b"pets/zk/bit/v1"

    def __init__(self, params: PedersenParams, commitment: Point) -> None:
        self.params, self.commitment = params, commitment
        self.secret = Secret("r")
        self.statement = bit_statement(params, commitment, self.secret)

    def _absorb_constants(self, transcript: Transcript) -> None:
        self.params.absorb(transcript)

    def prove(
        self, opening: Opening, *, context: bytes = b"", rng: RandomSource = DEFAULT_RNG
    ) -> SigmaProof:
        if opening.value not in (0, 1):
            raise InvalidInputError("a bit proof needs a committed value of 0 or 1")
        return self.statement.prove(
            {self.secret: opening.blinding}, context=context, rng=rng, transcript=self.transcript()
        )


def digits(width: int) -> list[int]:
    """The k digits d_i for interval width w = hi - lo (empty when w == 0)."""
    k = width.bit_length()
    if k == 0:
        return []
    return [1 << i for i in range(k - 1)] + [width - (1 << (k - 1)) + 1]


def decompose(u: int, width: int) -> list[int]:
    """Bits b_i with sum(b_i * d_i) == u, for 0 <= u <= width."""
    ds = digits(width)
    if not ds:
        return []
    top = 1 if u >= 1 << (len(ds) - 1) else 0
    rest = u - top * ds[-1]
    return [(rest >> i) & 1 for i in range(len(ds) - 1)] + [top]


@dataclass(frozen=True)
class RangeProof:
    """Bit commitments plus one sigma proof for all bits (see module docstring)."""

    bit_commitments: tuple[Point, ...]
    proof: SigmaProof

    def to_bytes(self) -> bytes:
        return (
            bytes([len(self.bit_commitments)])
            + b"".join(c.to_bytes() for c in self.bit_commitments)
            + self.proof.to_bytes()
        )

    @classmethod
    def from_bytes(cls, data: bytes, group: Group | None = None) -> RangeProof:
        """Strict parse; any malformation raises InvalidProofError."""
        group = get_group() if group is None else group
        data = bytes(data)
        if not data:
            raise InvalidProofError("malformed range proof: empty")
        k = data[0]
        if k > MAX_RANGE_BITS:
            raise InvalidProofError("malformed range proof: too many bits")
        end = 1 + k * POINT_BYTES
        scalars = 1 + 3 * k if k else 2  # lo == hi: one Schnorr proof on C - lo*H
        if len(data) != end + scalars * 32:
            raise InvalidProofError("malformed range proof: wrong length")
        try:
            commitments = tuple(
                group.point_from_bytes(data[1 + i * POINT_BYTES : 1 + (i + 1) * POINT_BYTES])
                for i in range(k)
            )
        except InvalidInputError:
            raise InvalidProofError("malformed range proof: bad bit commitment") from None
        return cls(commitments, SigmaProof.from_bytes(data[end:]))


class RangeRelation(Relation):
    """``lo <= value <= hi`` for the value committed in ``commitment``."""

    label = b"pets/zk/range/v1"

    def __init__(self, params: PedersenParams, commitment: Point, lo: int, hi: int) -> None:
        if not (0 <= lo <= hi < N):
            raise InvalidInputError("range bounds must satisfy 0 <= lo <= hi < n")
        if hi - lo >= 1 << MAX_RANGE_BITS:
            raise InvalidInputError(f"range width must be below 2^{MAX_RANGE_BITS}")
        self.params, self.commitment, self.lo, self.hi = params, commitment, lo, hi
        self.digits = digits(hi - lo)
        # C - lo*H: the commitment to u = v - lo.
        self.shifted = params.group.lincomb(((1, commitment), ((-lo) % N, params.value_base)))

    def _absorb_constants(self, transcript: Transcript) -> None:
        self.params.absorb(transcript)
        transcript.append_point(b"commitment", self.commitment)
        transcript.append_int(b"lo", self.lo)
        transcript.append_int(b"hi", self.hi)

    def _statement(self, bit_commitments: tuple[Point, ...]) -> tuple[Statement, list[Secret]]:
        if not bit_commitments:
            s = Secret("r")
            return DLRep(self.shifted, s * self.params.blinding_base), [s]
        secrets = [Secret(f"r{i}") for i in range(len(bit_commitments))]
        parts = [
            bit_statement(self.params, c, s) for c, s in zip(bit_commitments, secrets, strict=True)
        ]
        return (parts[0] if len(parts) == 1 else And(*parts)), secrets

    def _sum_matches(self, bit_commitments: tuple[Point, ...]) -> bool:
        """sum(d_i * C_i) == C - lo*H, Horner over the power-of-two digits."""
        group = self.params.group
        k = len(bit_commitments)
        if k == 0:
            return True
        acc = group.identity
        for c in reversed(bit_commitments[: k - 1]):
            acc = group.sum((acc, acc, c))
        top = group.lincomb(((self.digits[-1], bit_commitments[-1]),))
        return group.sum((acc, top)) == self.shifted

    def prove(
        self, opening: Opening, *, context: bytes = b"", rng: RandomSource = DEFAULT_RNG
    ) -> RangeProof:
        """Prover role. Raises InvalidInputError if the value is outside [lo, hi]."""
        u = opening.value - self.lo
        if not 0 <= u <= self.hi - self.lo:
            raise InvalidInputError("the committed value is outside the range")
        bits = decompose(u, self.hi - self.lo)
        k = len(bits)
        blindings: list[int] = []
        if k:
            rest = [random_scalar(rng, N) for _ in range(k - 1)]
            weighted = sum(d * r for d, r in zip(self.digits[1:], rest, strict=True))
            blindings = [(opening.blinding - weighted) % N, *rest]
        group = self.params.group
        h = self.params.value_base
        # Constant-time in the bits: compute r*G and r*G + H for every bit and keep
        # one, so neither the scalar multiplication nor the addition depends on b.
        commitments = tuple(
            (base, group.sum((base, h)))[b]
            for b, base in ((b, group.mul_base(r)) for b, r in zip(bits, blindings, strict=True))
        )
        statement, secrets = self._statement(commitments)
        witness = dict(zip(secrets, blindings if k else [opening.blinding], strict=True))
        proof = statement.prove(witness, context=context, rng=rng, transcript=self.transcript())
        return RangeProof(commitments, proof)

    def verify(self, proof: RangeProof | bytes, *, context: bytes = b"") -> None:  # type: ignore[override]
        """Verifier role: None if valid, else InvalidProofError."""
        if not isinstance(proof, RangeProof):
            proof = RangeProof.from_bytes(proof, self.params.group)
        if len(proof.bit_commitments) != len(self.digits):
            raise InvalidProofError("range proof has the wrong number of bits")
        if any(c.group is not self.params.group for c in proof.bit_commitments):
            raise InvalidProofError("range proof points come from another backend")
        if not self._sum_matches(proof.bit_commitments):
            raise InvalidProofError("range proof bit commitments do not add up")
        if not proof.bit_commitments:
            statement, _ = self._statement(proof.bit_commitments)
            statement.verify(proof.proof, context=context, transcript=self.transcript())
            return
        self._verify_bits(proof.bit_commitments, proof.proof, context)

    def _verify_bits(
        self, commitments: tuple[Point, ...], proof: SigmaProof, context: bytes
    ) -> None:
        """Specialised verifier for ``And(bit_statement(C_i) ...)``.

        Same arithmetic and transcript as the generic :meth:`Statement.verify`
        of :meth:`_statement` (the tests check both agree), without building
        the statement objects: two double multiplications per bit.
        """
        k = len(commitments)
        scalars = proof.scalars
        if len(scalars) != 1 + 3 * k:
            raise InvalidProofError("proof has the wrong length for this statement")
        group = self.params.group
        g = group.generator
        neg_h = -self.params.value_base
        c = scalars[0]
        description = [b"S\x00\x00", k.to_bytes(2, "big")]
        recomputed: list[Point] = []
        lincomb, add = group.lincomb, group.sum
        for i, ci in enumerate(commitments):
            c0, z0, z1 = scalars[1 + 3 * i : 4 + 3 * i]
            c1 = (c - c0) % N
            di = add((ci, neg_h))
            description.append(b"O\x00\x02")
            description.append(single_secret_branch(g, ci))
            description.append(single_secret_branch(g, di))
            recomputed.append(lincomb(((z0, g), (N - c0 if c0 else 0, ci))))
            recomputed.append(lincomb(((z1, g), (N - c1 if c1 else 0, di))))
        check_challenge(self.transcript(), group, context, b"".join(description), recomputed, c)

    def verify_generic(self, proof: RangeProof, *, context: bytes = b"") -> None:
        """Reference verifier through the generic sigma engine (used by tests)."""
        if len(proof.bit_commitments) != len(self.digits):
            raise InvalidProofError("range proof has the wrong number of bits")
        if not self._sum_matches(proof.bit_commitments):
            raise InvalidProofError("range proof bit commitments do not add up")
        statement, _ = self._statement(proof.bit_commitments)
        statement.verify(proof.proof, context=context, transcript=self.transcript())
