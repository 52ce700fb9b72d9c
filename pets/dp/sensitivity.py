"""Sensitivity of a compiled plan, and the noise each slot gets: the :class:`NoisePlan`.

Unit of privacy and neighbouring datasets (add/remove one unit):

* ``row`` (the default): one row of one holder — one patient, one shipment.
  Adding or removing it changes, in exactly one group, every field that row
  touches by at most that field's per-row bound ``Δ_f = max(|term_lo|,
  |term_hi|)`` (fixed-point units, after clipping and scaling: 1 for a count
  or a bin, ``max(|lo|,|hi|)·scale`` for a sum, the largest square for a sum of
  squares). A row touches ``k`` fields: all of ``count, sum, sum_sq`` for
  sum/mean/variance/vector_sum (``k`` = the number of fields with ``Δ_f > 0``),
  but only ONE bin of a histogram (bins are exclusive), so ``k = 1`` there.
  On a vector dataset a "row" is a holder's whole vector: it touches every
  element, ``k = length``.
* ``holder``: one holder's whole contribution (one organisation). Its change
  is a sum of at most ``max_rows`` row changes (1 on a vector dataset), so by
  the triangle inequality its sensitivity is ``m = max_rows`` times a row's.

Calibration. Divide each field by its ``Δ_f``: the normalised change of one
unit then has L1 norm at most ``m·k`` and L2 norm at most ``m·√k``. Noise of
one normalised scale on every slot is therefore the standard mechanism on the
normalised vector, which is the same as per-slot noise proportional to
``Δ_f`` (each field gets an equal share of the budget):

* ε-DP, discrete Laplace: scale ``b_f = Δ_f · m · k / ε`` (L1 sensitivity of
  the normalised vector over its scale is ε);
* ρ-zCDP, discrete Gaussian: ``σ_f² = Δ_f² · m² · k / (2ρ)`` (its squared L2
  sensitivity over 2σ² is ρ, CKS20).

For mean and variance the noise goes on the underlying count, sum and sum of
squares; the released mean and variance are post-processing
(:mod:`pets.dp.release`), free of further privacy cost.

Every aggregation server adds this noise, each at the full scale, to its own
share, so the release is private as long as one server is honest; the
analyst's answer carries the noise of all ``servers`` together (intervals in
:mod:`pets.dp.release` account for it). Each server charges the same ``ρ``
to its own filter: ``ρ`` for a Gaussian release, ``ε²/2`` for a Laplace one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from typing import Any

import numpy as np

from pets.dp.accountant import rho_of_pure_dp
from pets.dp.fast import (
    MAX_FAST_SIGMA2,
    MIN_FAST_SIGMA2,
    discrete_gaussian,
    discrete_laplace,
    representable_sigma2,
)
from pets.dp.randomness import KeyedStream, RandomBytes
from pets.dp.rational import exact, positive
from pets.dp.tails import half_width
from pets.errors import QueryError
from pets.query.model import Aggregate, DpRequest
from pets.query.plan import QueryPlan


class Mechanism(StrEnum):
    """The two exact mechanisms."""

    LAPLACE = "discrete_laplace"
    GAUSSIAN = "discrete_gaussian"


class Unit(StrEnum):
    """The unit of privacy."""

    ROW = "row"
    HOLDER = "holder"


@dataclass(frozen=True)
class FieldNoise:
    """Noise of one field (the same in every group).

    ``sensitivity`` is ``Δ_f`` for ONE unit (already multiplied by ``max_rows``
    for the holder unit), in fixed-point units; ``param`` is the discrete
    Laplace scale ``b`` or the discrete Gaussian ``σ²`` (0: no noise, the slot
    cannot change); ``scale`` is the fixed-point scale of the field's values
    (1 for counts, ``scale²`` for sums of squares).
    """

    label: str
    sensitivity: int
    param: Fraction
    scale: int

    def stddev(self, mechanism: Mechanism) -> float:
        """Standard deviation of one server's noise on this field (fixed-point units)."""
        if self.param == 0:
            return 0.0
        if mechanism == Mechanism.GAUSSIAN:  # the discrete Gaussian's variance is <= σ²
            return math.sqrt(float(self.param))
        p = math.exp(-1 / float(self.param))
        return math.sqrt(2 * p) / (1 - p)


@dataclass(frozen=True)
class NoisePlan:
    """Per-slot noise for one DP release of a compiled plan (see the module docstring)."""

    mechanism: Mechanism
    unit: Unit
    epsilon: Fraction | None
    rho: Fraction
    fields: tuple[FieldNoise, ...]
    touched: int
    multiplier: int
    groups: int
    width: int

    @property
    def length(self) -> int:
        """Slots in the vector."""
        return self.groups * self.width

    def field_of_slot(self, slot: int) -> FieldNoise:
        """The :class:`FieldNoise` of a slot index."""
        return self.fields[0] if len(self.fields) == 1 else self.fields[slot % self.width]

    def slot_params(self) -> list[Fraction]:
        """The noise parameter of every slot (``b`` or ``σ²``), in slot order."""
        if len(self.fields) == 1:
            return [self.fields[0].param] * self.length
        return [f.param for f in self.fields] * self.groups

    def sample(self, rng: RandomBytes | None = None) -> np.ndarray:
        """One server's noise vector (int64, ``length`` slots), exact and fresh.

        Drawn by the fast samplers of :mod:`pets.dp.fast` (same laws as the
        reference samplers of :mod:`pets.dp.samplers`) from one fresh
        :class:`~pets.dp.randomness.KeyedStream` per call unless ``rng`` is given.
        """
        rng = KeyedStream() if rng is None else rng
        draw = discrete_gaussian if self.mechanism == Mechanism.GAUSSIAN else discrete_laplace
        if len(self.fields) == 1 and self.fields[0].param:
            return draw(self.fields[0].param, self.length, rng)  # a fresh int64 array
        out = np.zeros(self.length, dtype=np.int64)
        if len(self.fields) == 1:
            return out
        for i, f in enumerate(self.fields):
            if f.param:
                out[i :: self.width] = draw(f.param, self.groups, rng)
        return out

    def tail_bound(self, servers: int = 1, log2_failure: int = 64) -> int:
        """``W`` with ``P(|noise of `servers` servers| > W) <= 2^-log2_failure`` on every slot.

        For encodings that need a fixed range for the noise, e.g. Paillier
        packing, which treats the leader's noise as one more contribution in
        ``[-W, W]``. A draw beyond ``W`` must be refused, never clamped
        (:func:`pets.dp.noise.check_noise_bound`).
        """
        return max(
            half_width(self.mechanism.value, f.param, servers, 2.0**-log2_failure)
            for f in self.fields
        )

    def to_dict(self) -> dict[str, Any]:
        """What the analyst's result reports: mechanism, unit, budget and per-field scales.

        ``noise_scale`` is b (Laplace) or σ (Gaussian) in the field's own units
        (fixed point divided out), ``stddev`` likewise, for one server.
        """
        fields = []
        for f in self.fields:
            spread = float(f.param) if self.mechanism == Mechanism.LAPLACE else math.sqrt(f.param)
            fields.append(
                {
                    "field": f.label,
                    "sensitivity": f.sensitivity / f.scale,
                    "noise_scale": spread / f.scale,
                    "stddev": f.stddev(self.mechanism) / f.scale,
                    "param_exact": str(f.param),
                }
            )
        out: dict[str, Any] = {
            "mechanism": self.mechanism.value,
            "unit": self.unit.value,
            "rho": str(self.rho),
            "fields": fields,
        }
        if self.epsilon is not None:
            out["epsilon"] = str(self.epsilon)
        return out


def _row_sensitivities(plan: QueryPlan) -> list[tuple[str, int, int]]:
    """Per field: (label, Δ_f for one row, fixed-point scale of the field's values)."""
    out = []
    for f in plan.fields:
        delta = max(abs(f.term_lo), abs(f.term_hi))
        if f.kind in ("count", "bin"):
            scale = 1
        else:
            b = plan.bound(f.column if f.column is not None else "*")
            scale = b.scale * b.scale if f.kind == "sum_sq" else b.scale
        out.append((f.label, delta, scale))
    return out


def gaussian_sigma2(sigma2: Fraction) -> Fraction:
    """The σ² actually used for a requested σ²: itself, or for 2^20 <= σ² < 2^61 the next
    value the fast sampler represents exactly (:func:`pets.dp.fast.representable_sigma2`:
    at most ``σ + 2`` more, a relative increase below 2^-9).

    More noise than requested never weakens the guarantee: the ρ charged (the
    requested one) bounds the true ``Δ²/(2σ²)`` of the σ² used.
    """
    if not MIN_FAST_SIGMA2 <= sigma2 < MAX_FAST_SIGMA2:
        return sigma2
    return representable_sigma2(sigma2)


def noise_plan(plan: QueryPlan, request: DpRequest | None = None) -> NoisePlan:
    """The noise of a DP release of ``plan`` (``request`` defaults to the query's ``dp``).

    Raises :class:`QueryError` if the query asks for no DP and none is given.
    """
    req = request if request is not None else plan.query.dp
    if req is None:
        raise QueryError("the query asks for no differential privacy (add dp epsilon|rho)")
    unit = Unit(req.unit)
    per_row = _row_sensitivities(plan)
    if plan.is_vector:
        touched, multiplier = plan.width, 1
    else:
        touched = (
            1
            if plan.query.aggregate == Aggregate.histogram
            else sum(1 for _, d, _ in per_row if d > 0)
        )
        multiplier = plan.max_rows if unit == Unit.HOLDER else 1
    touched = max(touched, 1)
    fields: list[FieldNoise] = []
    if req.epsilon is not None:
        mechanism = Mechanism.LAPLACE
        eps = positive(req.epsilon, "dp epsilon")
        epsilon: Fraction | None = eps
        rho = rho_of_pure_dp(eps)
        for label, delta, scale in per_row:
            param = Fraction(delta * multiplier * touched) / eps
            fields.append(FieldNoise(label, delta * multiplier, param, scale))
    else:
        mechanism = Mechanism.GAUSSIAN
        epsilon = None
        rho = positive(exact(req.rho, "dp rho"), "dp rho")  # type: ignore[arg-type]
        for label, delta, scale in per_row:
            param = gaussian_sigma2(Fraction((delta * multiplier) ** 2 * touched) / (2 * rho))
            fields.append(FieldNoise(label, delta * multiplier, param, scale))
    return NoisePlan(
        mechanism=mechanism,
        unit=unit,
        epsilon=epsilon,
        rho=rho,
        fields=tuple(fields),
        touched=touched,
        multiplier=multiplier,
        groups=len(plan.groups),
        width=plan.width,
    )
