"""A privacy filter: one (analyst, dataset) budget in ρ-zCDP, spent release by release.

A :class:`PrivacyFilter` holds the total budget ρ granted to one analyst on
one dataset and the ρ already spent. :meth:`PrivacyFilter.try_spend` admits a
release only if the sum stays within the budget (sequential composition in
zCDP, :mod:`pets.dp.accountant`); otherwise it raises
:class:`~pets.dp.errors.PrivacyBudgetExceededError` naming what remains and
changes nothing. Because admission depends only on the sum of the ρ's spent so
far, this is a valid privacy filter even when the analyst chooses each ρ
adaptively: zCDP is Rényi DP at every order, and a Rényi filter is valid
under fully adaptive composition (Feldman and Zrnic 2021, *Individual Privacy
Accounting via a Rényi Filter*; Whitehouse, Ramdas, Rogers, Wu 2023).

The class is pure data with no I/O: a server loads it from durable storage,
calls :meth:`~PrivacyFilter.try_spend` (or the side-effect-free
:meth:`~PrivacyFilter.after_spending`), and writes it back *before* releasing
its noisy share. :meth:`to_json`/:meth:`from_json` give a stable exact form
(ρ as ``"p/q"`` strings), so a restart restores the same budget bit for bit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from pets.dp.accountant import describe_rho, epsilon_of_zcdp
from pets.dp.errors import PrivacyBudgetExceededError
from pets.dp.rational import Rational, exact
from pets.errors import InvalidInputError

_KEYS = {"analyst", "dataset", "budget_rho", "spent_rho", "releases", "delta"}

DEFAULT_BUDGET_RHO = Fraction(1, 2)
"""The default budget per (analyst, dataset): ρ = 1/2 (ε ≈ 3.54 at δ = 1e-6)."""
DEFAULT_DELTA = 1e-6
"""The δ at which (ε, δ) equivalents are reported by default."""


@dataclass
class PrivacyFilter:
    """The ρ-zCDP budget of ``analyst`` on ``dataset`` and what has been spent of it.

    ``delta`` is only used to report (ε, δ) equivalents in messages and
    :meth:`summary`; accounting is in exact ρ.
    """

    analyst: str
    dataset: str
    budget_rho: Fraction
    spent_rho: Fraction = Fraction(0)
    releases: int = 0
    delta: float = DEFAULT_DELTA

    def __post_init__(self) -> None:
        for name in ("analyst", "dataset"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise InvalidInputError(f"privacy filter {name} must be a non-empty string")
        self.budget_rho = _non_negative(self.budget_rho, "budget rho")
        self.spent_rho = _non_negative(self.spent_rho, "spent rho")
        if isinstance(self.releases, bool) or not isinstance(self.releases, int):
            raise InvalidInputError("privacy filter releases must be an integer")
        if self.releases < 0:
            raise InvalidInputError("privacy filter releases must be non-negative")
        if not 0 < self.delta < 1:
            raise InvalidInputError(f"privacy filter delta must lie in (0, 1), got {self.delta}")

    @property
    def remaining_rho(self) -> Fraction:
        """Budget left (never negative)."""
        return max(Fraction(0), self.budget_rho - self.spent_rho)

    def can_spend(self, rho: Rational) -> bool:
        """True if a release costing ``rho`` would stay within the budget."""
        return self.spent_rho + _positive_cost(rho) <= self.budget_rho

    def after_spending(self, rho: Rational) -> PrivacyFilter:
        """The filter as it would be after a release costing ``rho`` (self unchanged).

        Raises :class:`PrivacyBudgetExceededError` if that would overspend.
        """
        cost = _positive_cost(rho)
        if self.spent_rho + cost > self.budget_rho:
            raise PrivacyBudgetExceededError(
                f"privacy budget of analyst {self.analyst!r} on dataset {self.dataset!r} "
                f"refused: this release costs {describe_rho(cost)} but only "
                f"{describe_rho(self.remaining_rho, self.delta)} remains "
                f"(of {describe_rho(self.budget_rho)}); nothing was spent",
                requested_rho=cost,
                remaining_rho=self.remaining_rho,
            )
        return replace(self, spent_rho=self.spent_rho + cost, releases=self.releases + 1)

    def try_spend(self, rho: Rational) -> None:
        """Spend ``rho`` in place, or raise and leave the filter exactly as it was."""
        after = self.after_spending(rho)
        self.spent_rho, self.releases = after.spent_rho, after.releases

    def grant(self, extra_rho: Rational) -> None:
        """Raise the budget by ``extra_rho`` (an operator's decision)."""
        extra = _non_negative(extra_rho, "granted rho")
        self.budget_rho += extra

    def summary(self) -> dict[str, Any]:
        """Human-facing figures: exact ρ strings plus (ε, δ) equivalents."""
        out = self.to_dict()
        out["remaining_rho"] = str(self.remaining_rho)
        for key in ("budget", "spent", "remaining"):
            rho = exact(out[f"{key}_rho"], "rho")
            out[f"{key}_epsilon"] = epsilon_of_zcdp(rho, self.delta) if rho else 0.0
        return out

    # -- persistence ---------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible, exact: ρ as ``"p/q"`` strings."""
        return {
            "analyst": self.analyst,
            "dataset": self.dataset,
            "budget_rho": str(self.budget_rho),
            "spent_rho": str(self.spent_rho),
            "releases": self.releases,
            "delta": self.delta,
        }

    @classmethod
    def from_dict(cls, d: object) -> PrivacyFilter:
        """Strict inverse of :meth:`to_dict`."""
        if not isinstance(d, dict) or set(d) != _KEYS:
            keys = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise InvalidInputError(f"a privacy filter has the keys {sorted(_KEYS)}; got {keys}")
        for key in ("budget_rho", "spent_rho"):
            if not isinstance(d[key], str):
                raise InvalidInputError(f"privacy filter {key} must be an exact string like '1/32'")
        delta = d["delta"]
        if isinstance(delta, bool) or not isinstance(delta, int | float):
            raise InvalidInputError("privacy filter delta must be a number")
        return cls(
            analyst=d["analyst"],
            dataset=d["dataset"],
            budget_rho=exact(d["budget_rho"], "budget rho"),
            spent_rho=exact(d["spent_rho"], "spent rho"),
            releases=d["releases"],
            delta=float(delta),
        )

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, compact)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> PrivacyFilter:
        """Parse :meth:`to_json` output strictly."""
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            raise InvalidInputError("privacy filter is not valid JSON") from None
        return cls.from_dict(data)


def _non_negative(value: Rational, what: str) -> Fraction:
    out = exact(value, what)
    if out < 0:
        raise InvalidInputError(f"{what} must be non-negative, got {out}")
    return out


def _positive_cost(rho: Rational) -> Fraction:
    out = exact(rho, "release rho")
    if out <= 0:
        raise InvalidInputError(f"a release must cost a positive rho, got {out}")
    return out
