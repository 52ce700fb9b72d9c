"""Errors of the VDAF core, each naming the protocol step that failed.

Every failure on bad input is raised as a subclass of :class:`VdafError`, which
carries ``step`` — the draft's name of the operation that refused the input
(``shard``, ``verify_init``, ``verifier_shares_to_message``, ``verify_next``,
``aggregate``, ``unshard``) — so a caller, a test vector or a status page can
say *where* a report was rejected. Messages never contain share values, seeds
or keys (draft-irtf-cfrg-vdaf-20 §9: verifier shares are secret until combined).

The classes derive from the project-wide tree in :mod:`pets.errors`, so the
service maps them to status codes without knowing about VDAFs.
"""

from __future__ import annotations

from pets.errors import InvalidInputError, InvalidProofError, PetsError


class VdafError(PetsError):
    """A VDAF operation refused its input; ``step`` names the operation."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason

    def __reduce__(self) -> tuple[type[VdafError], tuple[str, str]]:
        # Picklable with its own signature (batch results cross processes).
        return (type(self), (self.step, self.reason))


class VdafDecodeError(VdafError, InvalidInputError):
    """A message of the wrong length, or with a non-canonical field element."""


class VdafParameterError(VdafError, InvalidInputError):
    """A bad parameter or measurement (out of range, wrong length, bad sizes)."""


class VdafVerifyError(VdafError, InvalidProofError):
    """A report that does not verify: proof check or joint-randomness check failed."""
