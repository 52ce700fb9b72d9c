"""Differential privacy for released aggregates: exact noise, sensitivity, accounting.

The pure core of issue 11; servers wire it in (see ``docs/DP.md``):

* :mod:`pets.dp.samplers` — exact discrete Laplace and discrete Gaussian
  samplers (Canonne, Kamath, Steinke 2020), vectorised, no floating point:
  the reference;
* :mod:`pets.dp.fast` — the same laws, rearranged for 10^6-slot vectors (what
  the servers draw), with :mod:`pets.dp.exact_exp` (exp(-x) bounds with
  integers, exact comparisons of a uniform with it);
* :mod:`pets.dp.sensitivity` — :func:`noise_plan`: from a compiled plan and
  its ``dp`` request to per-slot noise (unit of privacy: row or holder);
* :mod:`pets.dp.noise` — adding noise to a ring, field or Paillier share;
  centred decoding and range proofs of noisy totals;
* :mod:`pets.dp.release` — :func:`decode_noisy`: post-processed answers with
  95% intervals and notes (negative counts);
* :mod:`pets.dp.accountant` — zCDP composition, ε→ρ, ρ→(ε, δ) as OpenDP;
* :mod:`pets.dp.budget` — :class:`PrivacyFilter`, one budget per
  (analyst, dataset), persisted as JSON;
* :mod:`pets.dp.policy` — :class:`DpPolicy`, a server's DP configuration
  (require DP, per-query maxima, budget) and admission of a query.
"""

from __future__ import annotations

from pets.dp.accountant import (
    compose,
    differencing_floor,
    epsilon_of_zcdp,
    rho_of_gaussian,
    rho_of_pure_dp,
)
from pets.dp.budget import DEFAULT_BUDGET_RHO, DEFAULT_DELTA, PrivacyFilter
from pets.dp.errors import PrivacyBudgetExceededError
from pets.dp.noise import (
    FIELD64_MODULUS,
    FIELD128_MODULUS,
    RING_MODULUS,
    add_to_field_share,
    add_to_ring_share,
    centered,
    check_noise_bound,
    check_noisy_range,
    paillier_noise,
)
from pets.dp.policy import DpPolicy
from pets.dp.randomness import RandomBytes, SeededRandom, system_random
from pets.dp.release import DpRelease, decode_noisy
from pets.dp.samplers import discrete_gaussian, discrete_laplace
from pets.dp.sensitivity import FieldNoise, Mechanism, NoisePlan, Unit, noise_plan

__all__ = [
    "DEFAULT_BUDGET_RHO",
    "DEFAULT_DELTA",
    "FIELD64_MODULUS",
    "FIELD128_MODULUS",
    "RING_MODULUS",
    "DpPolicy",
    "DpRelease",
    "FieldNoise",
    "Mechanism",
    "NoisePlan",
    "PrivacyBudgetExceededError",
    "PrivacyFilter",
    "RandomBytes",
    "SeededRandom",
    "Unit",
    "add_to_field_share",
    "add_to_ring_share",
    "centered",
    "check_noise_bound",
    "check_noisy_range",
    "compose",
    "decode_noisy",
    "differencing_floor",
    "discrete_gaussian",
    "discrete_laplace",
    "epsilon_of_zcdp",
    "noise_plan",
    "paillier_noise",
    "rho_of_gaussian",
    "rho_of_pure_dp",
    "system_random",
]
