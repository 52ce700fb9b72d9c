"""Set membership: the committed value is one of a public set of values.

An OR over the set (CDS94): ``C - s_j * H = r * G`` for some j. Proof size
and cost grow linearly with the set, which suits the small categorical sets
of attribute policies (``purpose in {public-health, research}``). A
one-element set degenerates to an equality proof.
"""

from __future__ import annotations

from collections.abc import Iterable

from pets.errors import InvalidInputError
from pets.zk.curve import N
from pets.zk.group import Point
from pets.zk.pedersen import Opening, PedersenParams
from pets.zk.relation import Relation
from pets.zk.rng import DEFAULT_RNG, RandomSource
from pets.zk.sigma import DLRep, Or, Secret, SigmaProof
from pets.zk.transcript import Transcript

MAX_SET_SIZE = 256


class MembershipRelation(Relation):
    """The value committed in ``commitment`` belongs to ``values`` (deduplicated, sorted)."""

    label = b"pets/zk/membership/v1"

    def __init__(self, params: PedersenParams, commitment: Point, values: Iterable[int]) -> None:
        self.values = tuple(sorted({v % N for v in values}))
        if not self.values:
            raise InvalidInputError("set membership needs a non-empty set")
        if len(self.values) > MAX_SET_SIZE:
            raise InvalidInputError(f"set membership supports at most {MAX_SET_SIZE} values")
        self.params, self.commitment = params, commitment
        self.secret = Secret("r")
        group, g, h = params.group, params.blinding_base, params.value_base
        branches = [
            DLRep(group.lincomb(((1, commitment), ((-v) % N, h))), self.secret * g)
            for v in self.values
        ]
        self.statement = branches[0] if len(branches) == 1 else Or(*branches)

    def _absorb_constants(self, transcript: Transcript) -> None:
        self.params.absorb(transcript)
        transcript.append_point(b"commitment", self.commitment)
        for v in self.values:
            transcript.append_scalar(b"member", v)

    def prove(
        self, opening: Opening, *, context: bytes = b"", rng: RandomSource = DEFAULT_RNG
    ) -> SigmaProof:
        if opening.value % N not in self.values:
            raise InvalidInputError("the committed value is not in the set")
        return self.statement.prove(
            {self.secret: opening.blinding}, context=context, rng=rng, transcript=self.transcript()
        )
