"""Errors of the linkage protocol, each naming the step that refused.

Every class subclasses the project's tree (:mod:`pets.errors`), so the servers'
one mapping to gRPC status codes applies unchanged; ``step`` is a short stable
word (``"batch-length"``, ``"oversized-batch"``, ``"bad-point"``,
``"identity-point"``, ``"repeated-batch"``, ``"dleq"``, ``"duplicate-pseudonym"``, ``"digest"``,
``"floor"``) that tests, vectors and logs can rely on. Messages never contain
identifiers, points of a batch, pseudonyms, keys or the intersection size.
"""

from __future__ import annotations

from pets.errors import ConflictError, InvalidInputError, InvalidProofError, ThresholdNotMetError


class BatchRejectedError(InvalidInputError):
    """A batch of points or pseudonyms that a party refuses before using it."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"linkage {step}: {message}")
        self.step = step


class LinkageProofError(InvalidProofError):
    """A batched DLEQ proof that does not verify: a server did not apply its announced key."""

    def __init__(self, message: str = "the DLEQ proof does not verify") -> None:
        super().__init__(f"linkage dleq: {message}")
        self.step = "dleq"


class DigestMismatchError(ConflictError):
    """The two servers' digests of the matched set differ: the query fails, nothing is released."""

    def __init__(self) -> None:
        super().__init__("linkage digest: the servers' matched sets differ")
        self.step = "digest"


class IntersectionBelowFloorError(ThresholdNotMetError):
    """The matched set is below ``min_intersection``; the message does not say by how much."""

    def __init__(self) -> None:
        super().__init__("linkage floor: the intersection is below min_intersection")
        self.step = "floor"
