"""Pedersen commitments (single and vector) and proofs about committed values.

Commitment to value v with blinding r (Pedersen, CRYPTO 1991):

    C = v * H + r * G          (vector form: C = sum(v_i * H_i) + r * G)

G is the standard secp256k1 generator and the value bases H, H_i are
RFC 9380 hash-to-curve outputs (labels ``pets/pedersen/value/<i>``), so no
one knows log_G(H): commitments are perfectly hiding and computationally
binding. Putting G on the blinding side keeps every verifier equation of
the form ``z * G - c * Y`` (one double multiplication on the fast backend).

Relations (each with ``prove``/``verify``):

* :class:`OpeningRelation`: knowledge of (v, r) for C (or of a vector opening);
* :class:`EqualityRelation`: C1 and C2 commit to the same value, proved as
  knowledge of r1 - r2 with ``C1 - C2 = (r1 - r2) * G``;
* :class:`LinearRelation`: ``sum(a_i * v_i) = c`` for public a_i, c, proved as
  knowledge of ``sum(a_i * r_i)`` with ``sum(a_i * C_i) - c * H`` on G.

Values and coefficients are integers taken mod the group order n.
Commitments are computed from secret values with
:meth:`pets.zk.group.Group.lincomb_secret`, whose running time does not
depend on them (issue 15 item 13); verifiers use the fast variable-time
:meth:`~pets.zk.group.Group.lincomb` on public scalars only.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

from pets.errors import InvalidInputError
from pets.zk.curve import N
from pets.zk.group import Group, Point, get_group
from pets.zk.relation import Relation
from pets.zk.rng import DEFAULT_RNG, RandomSource, random_scalar
from pets.zk.sigma import DLRep, Secret, SigmaProof
from pets.zk.transcript import Transcript

VALUE_BASE_LABEL = "pets/pedersen/value/{}"


@dataclass(frozen=True)
class Opening:
    """The secret opening (value, blinding) of a commitment. ``repr`` hides both."""

    value: int = field(repr=False)
    blinding: int = field(repr=False)


@dataclass(frozen=True)
class VectorOpening:
    """Opening of a vector commitment. ``repr`` hides the secrets."""

    values: tuple[int, ...] = field(repr=False)
    blinding: int = field(repr=False)


class PedersenParams:
    """Generators for commitments to vectors of up to ``size`` values."""

    def __init__(self, group: Group, size: int = 1) -> None:
        if size < 1:
            raise InvalidInputError("Pedersen parameters need at least one value base")
        self.group = group
        self.blinding_base = group.generator
        self.value_bases = tuple(
            group.derive_generator(VALUE_BASE_LABEL.format(i)) for i in range(size)
        )

    @property
    def value_base(self) -> Point:
        return self.value_bases[0]

    def commit(
        self, value: int, blinding: int | None = None, *, rng: RandomSource = DEFAULT_RNG
    ) -> tuple[Point, Opening]:
        """Commit to one value; returns (commitment, opening).

        Value and blinding are secret, so the commitment is computed with
        :meth:`Group.lincomb_secret` (blinded scalars, constant-time on G):
        its running time does not depend on the value or the blinding.
        """
        r = random_scalar(rng, N) if blinding is None else blinding % N
        c = self.group.lincomb_secret(((value % N, self.value_base), (r, self.blinding_base)))
        return c, Opening(value % N, r)

    def commit_vector(
        self, values: Sequence[int], blinding: int | None = None, *, rng: RandomSource = DEFAULT_RNG
    ) -> tuple[Point, VectorOpening]:
        """Commit to ``len(values) <= size`` values with one blinding."""
        if not 1 <= len(values) <= len(self.value_bases):
            raise InvalidInputError("vector length does not match the Pedersen parameters")
        r = random_scalar(rng, N) if blinding is None else blinding % N
        vs = tuple(v % N for v in values)
        terms = [(v, h) for v, h in zip(vs, self.value_bases, strict=False)]
        terms.append((r, self.blinding_base))
        return self.group.lincomb_secret(terms), VectorOpening(vs, r)

    def opens(self, commitment: Point, opening: Opening | VectorOpening) -> bool:
        """Whether ``opening`` opens ``commitment`` (recomputes the commitment)."""
        if isinstance(opening, Opening):
            expected, _ = self.commit(opening.value, opening.blinding)
        else:
            expected, _ = self.commit_vector(opening.values, opening.blinding)
        return expected == commitment

    def absorb(self, transcript: Transcript) -> None:
        transcript.append_points(b"pedersen-value-bases", self.value_bases)
        transcript.append_point(b"pedersen-blinding-base", self.blinding_base)


@functools.cache
def default_params(backend: str = "coincurve", size: int = 1) -> PedersenParams:
    """Cached project-wide parameters for the given backend."""
    return PedersenParams(get_group(backend), size)


class _PedersenRelation(Relation):
    params: PedersenParams

    def _absorb_constants(self, transcript: Transcript) -> None:
        self.params.absorb(transcript)


class OpeningRelation(_PedersenRelation):
    """Knowledge of an opening of ``commitment`` (single value or vector of ``length``)."""

    label = b"pets/zk/pedersen-opening/v1"

    def __init__(self, params: PedersenParams, commitment: Point, length: int = 1) -> None:
        if not 1 <= length <= len(params.value_bases):
            raise InvalidInputError("vector length does not match the Pedersen parameters")
        self.params, self.commitment, self.length = params, commitment, length
        self.value_secrets = tuple(Secret(f"v{i}") for i in range(length))
        self.blinding_secret = Secret("r")
        expr = self.blinding_secret * params.blinding_base
        for s, h in zip(self.value_secrets, params.value_bases, strict=False):
            expr = expr + s * h
        self.statement = DLRep(commitment, expr)

    def witness(self, opening: Opening | VectorOpening) -> dict[Secret, int]:
        values = (opening.value,) if isinstance(opening, Opening) else opening.values
        if len(values) != self.length:
            raise InvalidInputError("opening length does not match the relation")
        w = dict(zip(self.value_secrets, values, strict=True))
        w[self.blinding_secret] = opening.blinding
        return w

    def prove(
        self,
        opening: Opening | VectorOpening,
        *,
        context: bytes = b"",
        rng: RandomSource = DEFAULT_RNG,
    ) -> SigmaProof:
        return self.statement.prove(
            self.witness(opening), context=context, rng=rng, transcript=self.transcript()
        )


class EqualityRelation(_PedersenRelation):
    """``c1`` and ``c2`` commit to the same value."""

    label = b"pets/zk/pedersen-equal/v1"

    def __init__(self, params: PedersenParams, c1: Point, c2: Point) -> None:
        self.params, self.c1, self.c2 = params, c1, c2
        self.secret = Secret("r1-r2")
        self.statement = DLRep(c1 - c2, self.secret * params.blinding_base)

    def _absorb_constants(self, transcript: Transcript) -> None:
        super()._absorb_constants(transcript)
        transcript.append_points(b"commitments", (self.c1, self.c2))

    def prove(
        self, o1: Opening, o2: Opening, *, context: bytes = b"", rng: RandomSource = DEFAULT_RNG
    ) -> SigmaProof:
        return self.statement.prove(
            {self.secret: o1.blinding - o2.blinding},
            context=context,
            rng=rng,
            transcript=self.transcript(),
        )


class LinearRelation(_PedersenRelation):
    """``sum(coefficients[i] * value_i) == constant`` over committed values."""

    label = b"pets/zk/pedersen-linear/v1"

    def __init__(
        self,
        params: PedersenParams,
        commitments: Sequence[Point],
        coefficients: Sequence[int],
        constant: int,
    ) -> None:
        if not commitments or len(commitments) != len(coefficients):
            raise InvalidInputError("need one coefficient per commitment")
        self.params = params
        self.commitments = tuple(commitments)
        self.coefficients = tuple(a % N for a in coefficients)
        self.constant = constant % N
        group = params.group
        terms = list(zip(self.coefficients, self.commitments, strict=True))
        terms.append(((-self.constant) % N, params.value_base))
        self.secret = Secret("sum(a_i r_i)")
        self.statement = DLRep(group.lincomb(terms), self.secret * params.blinding_base)

    def _absorb_constants(self, transcript: Transcript) -> None:
        super()._absorb_constants(transcript)
        transcript.append_points(b"commitments", self.commitments)
        for a in self.coefficients:
            transcript.append_scalar(b"coefficient", a)
        transcript.append_scalar(b"constant", self.constant)

    def prove(
        self,
        openings: Sequence[Opening],
        *,
        context: bytes = b"",
        rng: RandomSource = DEFAULT_RNG,
    ) -> SigmaProof:
        if len(openings) != len(self.commitments):
            raise InvalidInputError("need one opening per commitment")
        r = sum(a * o.blinding for a, o in zip(self.coefficients, openings, strict=True))
        return self.statement.prove(
            {self.secret: r % N}, context=context, rng=rng, transcript=self.transcript()
        )
