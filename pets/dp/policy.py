"""A server's DP policy: whether DP is required, per-query maxima, the budget.

Issue 11 lets an operator require DP for every release and cap the ε or ρ one
query may ask for. :class:`DpPolicy` is that configuration as pure data (read
from a TOML/JSON table with :meth:`DpPolicy.from_dict`), and
:meth:`DpPolicy.admit` is the one check a server runs when a query arrives:
it returns the query's :class:`~pets.dp.sensitivity.NoisePlan` (or ``None``
for a query without DP on a server that allows that) or refuses with
:class:`~pets.errors.PermissionDeniedError`. Charging the budget stays with
:class:`~pets.dp.budget.PrivacyFilter`, at release time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from pets.dp.budget import DEFAULT_BUDGET_RHO, DEFAULT_DELTA, PrivacyFilter
from pets.dp.rational import exact, positive
from pets.dp.sensitivity import NoisePlan, noise_plan
from pets.errors import ConfigError, InvalidInputError, PermissionDeniedError
from pets.query.plan import QueryPlan

_KEYS = ("require", "max_epsilon", "max_rho", "budget_rho", "delta")


@dataclass(frozen=True)
class DpPolicy:
    """``require``: refuse queries without ``dp``; ``max_epsilon``/``max_rho``: per-query caps;
    ``budget_rho``: the budget of a new (analyst, dataset) filter; ``delta``: for reports.
    """

    require: bool = False
    max_epsilon: Fraction | None = None
    max_rho: Fraction | None = None
    budget_rho: Fraction = DEFAULT_BUDGET_RHO
    delta: float = DEFAULT_DELTA

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> DpPolicy:
        """Read a ``[dp]`` configuration table; unknown keys and bad values raise ConfigError."""
        if not isinstance(d, Mapping):
            raise ConfigError(f"the dp configuration must be a table, got {type(d).__name__}")
        unknown = set(d) - set(_KEYS)
        if unknown:
            raise ConfigError(f"dp configuration has unknown keys {sorted(unknown)}")
        try:
            require = d.get("require", False)
            if not isinstance(require, bool):
                raise ConfigError("dp.require must be true or false")
            caps = {
                key: None if d.get(key) is None else positive(d[key], f"dp.{key}")  # type: ignore[arg-type]
                for key in ("max_epsilon", "max_rho")
            }
            budget = exact(d.get("budget_rho", DEFAULT_BUDGET_RHO), "dp.budget_rho")  # type: ignore[arg-type]
            delta = d.get("delta", DEFAULT_DELTA)
            if isinstance(delta, bool) or not isinstance(delta, int | float) or not 0 < delta < 1:
                raise ConfigError(f"dp.delta must be a number in (0, 1), got {delta!r}")
        except InvalidInputError as exc:
            raise ConfigError(str(exc)) from None
        if budget < 0:
            raise ConfigError("dp.budget_rho must be non-negative")
        return cls(require, caps["max_epsilon"], caps["max_rho"], budget, float(delta))

    def admit(self, plan: QueryPlan) -> NoisePlan | None:
        """The noise plan of ``plan`` if admitted; ``None`` for an allowed query without DP."""
        request = plan.query.dp
        if request is None:
            if self.require:
                raise PermissionDeniedError(
                    "this server releases only differentially private results: add "
                    "'dp epsilon E' or 'dp rho R' to the query"
                )
            return None
        noise = noise_plan(plan)
        eps, cap = noise.epsilon, self.max_epsilon
        if eps is not None and cap is not None and eps > cap:
            raise PermissionDeniedError(
                f"dp epsilon {eps} exceeds this server's per-query maximum {cap}"
            )
        if self.max_rho is not None and noise.rho > self.max_rho:
            raise PermissionDeniedError(
                f"the query costs rho={noise.rho}, above this server's per-query maximum "
                f"{self.max_rho}"
            )
        return noise

    def new_filter(self, analyst: str, dataset: str) -> PrivacyFilter:
        """A fresh filter for an (analyst, dataset) pair seen for the first time."""
        return PrivacyFilter(analyst, dataset, self.budget_rho, delta=self.delta)
