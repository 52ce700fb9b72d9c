"""Schnorr proof of knowledge of a discrete log, and Chaum-Pedersen DLEQ.

* :class:`DLogRelation`: knowledge of x with ``public = x * base``
  (Schnorr, J. Cryptology 1991), non-interactive via Fiat-Shamir.
* :class:`DLEQRelation`: the same x satisfies ``y1 = x * b1`` and ``y2 = x * b2``
  (Chaum and Pedersen, CRYPTO 1992).

Both are thin, labelled wrappers around :mod:`pets.zk.sigma`.
"""

from __future__ import annotations

from pets.zk.group import Point
from pets.zk.relation import Relation
from pets.zk.rng import DEFAULT_RNG, RandomSource
from pets.zk.sigma import DLRep, Secret, SigmaProof


class DLogRelation(Relation):
    """Public statement ``public = x * base`` (base defaults to the standard generator G)."""

    label = b"pets/zk/schnorr/v1"

    def __init__(self, public: Point, base: Point | None = None) -> None:
        self.public = public
        self.base = public.group.generator if base is None else base
        self.secret = Secret("x")
        self.statement = DLRep(public, self.secret * self.base)

    def prove(self, x: int, *, context: bytes = b"", rng: RandomSource = DEFAULT_RNG) -> SigmaProof:
        """Prover role: a proof that the caller knows x."""
        return self.statement.prove(
            {self.secret: x}, context=context, rng=rng, transcript=self.transcript()
        )


class DLEQRelation(Relation):
    """Public statement ``public1 = x * base1`` and ``public2 = x * base2`` (same x)."""

    label = b"pets/zk/dleq/v1"

    def __init__(self, public1: Point, base1: Point, public2: Point, base2: Point) -> None:
        self.public1, self.base1, self.public2, self.base2 = public1, base1, public2, base2
        self.secret = Secret("x")
        self.statement = DLRep(public1, self.secret * base1) & DLRep(public2, self.secret * base2)

    def prove(self, x: int, *, context: bytes = b"", rng: RandomSource = DEFAULT_RNG) -> SigmaProof:
        """Prover role: a proof that both logs equal the caller's x."""
        return self.statement.prove(
            {self.secret: x}, context=context, rng=rng, transcript=self.transcript()
        )
