"""The DP error: a release refused because it would overspend a privacy budget.

A subclass of :class:`pets.errors.PermissionDeniedError` (the caller is known
but may not have this release), so servers map it to ``PERMISSION_DENIED``
with no change to the status table; clients can catch it by name.
"""

from __future__ import annotations

from fractions import Fraction

from pets.errors import PermissionDeniedError


class PrivacyBudgetExceededError(PermissionDeniedError):
    """A release whose privacy cost exceeds the remaining budget (nothing was spent).

    ``requested_rho`` and ``remaining_rho`` are exact zCDP figures; the message
    names both (and their (ε, δ) equivalents when a δ is known).
    """

    def __init__(self, message: str, *, requested_rho: Fraction, remaining_rho: Fraction) -> None:
        super().__init__(message)
        self.requested_rho = requested_rho
        self.remaining_rho = remaining_rho
