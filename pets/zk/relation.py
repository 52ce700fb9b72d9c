"""Common shape of the named proof relations (Schnorr, DLEQ, Pedersen, range, ...).

A *relation* object holds only public data (the verifier can build it), and
offers the two roles separately: ``prove(...)`` for the prover, who also
passes the witness, and ``verify(proof)`` for the verifier, which returns
None or raises :class:`~pets.errors.InvalidProofError`. Each relation has its
own protocol label and absorbs its statement constants into the transcript
before the generic sigma engine absorbs the statement and the commitments.
Relations compose with ``&`` and ``|`` through their underlying
:class:`~pets.zk.sigma.Statement` (witness keys are the relation's secrets).
"""

from __future__ import annotations

from pets.zk.sigma import And, Or, SigmaProof, Statement
from pets.zk.transcript import Transcript


def as_statement(item: Relation | Statement) -> Statement:
    return item.statement if isinstance(item, Relation) else item


class Relation:
    """Base class: a labelled sigma statement plus its public constants."""

    label: bytes = b"pets/zk/relation/v1"
    statement: Statement

    def _absorb_constants(self, transcript: Transcript) -> None:
        """Subclasses absorb statement constants that are not points of the statement."""

    def transcript(self) -> Transcript:
        t = Transcript(self.label)
        self._absorb_constants(t)
        return t

    def verify(self, proof: SigmaProof | bytes, *, context: bytes = b"") -> None:
        """Verifier role: None if valid, else :class:`~pets.errors.InvalidProofError`."""
        self.statement.verify(proof, context=context, transcript=self.transcript())

    def __and__(self, other: Relation | Statement) -> And:
        return And(self.statement, as_statement(other))

    def __or__(self, other: Relation | Statement) -> Or:
        return Or(self.statement, as_statement(other))
