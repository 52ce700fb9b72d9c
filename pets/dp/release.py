"""Decoding a noisy aggregate: post-processed answers with 95% intervals.

:func:`decode_noisy` is the DP counterpart of :func:`pets.query.decode`: it
takes the sum of all servers' noisy shares, proves every slot is the true
noisy total (:func:`pets.dp.noise.check_noisy_range`), and returns the
answer in the same row format, plus for every released number an interval
that covers the exact (noise-free) value with probability at least
``confidence`` (default 95%) and a note wherever noise shows, e.g. a
negative count. Nothing is clamped.

How each interval is computed (``K`` = servers whose noise is in the sum,
``w(α)`` = :func:`pets.dp.tails.half_width` of a slot at level α):

* count, bin, sum, vector element: ``noisy ± w(α)``, α = 1 - confidence (a
  vector dataset's intervals are ``{"vector": VectorIntervals}``, a mapping
  ``{"lo": array, "hi": array}`` of read-only float64 numpy arrays, element by
  element, made when first read; a table's vector
  field a list of ``(lo, hi)``);
* mean = sum / count: the count and the sum intervals each at level α/2
  (union bound, so both hold together with probability >= 1-α); the mean
  interval is the range of s/c over that box when its count interval is
  positive, intersected with the clipping bounds ``[lo, hi]`` (a true mean
  always lies there); otherwise it is ``[lo, hi]`` itself;
* variance = sum_sq/count - mean²: the three intervals at level α/3, the
  range of ``q/c - (s/c)²`` over the box, intersected with
  ``[0, ((hi - lo)/2)²]`` (the largest variance values in [lo, hi] can have).

Each interval's coverage is marginal (per number), not simultaneous over all
numbers of a result.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pets.dp.noise import DECODE_FAILURE_LOG2, RING_MODULUS, centered, check_noisy_range
from pets.dp.sensitivity import NoisePlan
from pets.dp.tails import half_width
from pets.errors import InvalidInputError, OverflowDetectedError
from pets.query.decode import result_for
from pets.query.model import Aggregate
from pets.query.plan import QueryPlan
from pets.query.result import Result

Interval = tuple[float, float]
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


@dataclass(frozen=True)
class DpRelease:
    """A noisy answer: ``result`` rows, an interval per released number, notes, DP facts."""

    result: Result
    intervals: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    dp: dict[str, Any] = field(default_factory=dict)

    def to_json_obj(self) -> dict[str, Any]:
        """``result`` JSON plus ``dp`` (mechanism, unit, scales), ``intervals`` and ``notes``."""
        out = self.result.to_json_obj()
        out["dp"] = self.dp
        out["intervals"] = [_json_row(iv) for iv in self.intervals]
        out["notes"] = self.notes
        return out


def _json_row(iv: dict[str, Any]) -> dict[str, Any]:
    """One row's intervals for JSON: a vector dataset's numpy ``lo``/``hi`` as lists."""
    return {
        k: {n: a.tolist() for n, a in v.items()} if isinstance(v, Mapping) else v
        for k, v in iv.items()
    }


class VectorIntervals(Mapping[str, np.ndarray]):
    """A vector dataset's intervals, ``{"lo": array, "hi": array}``: element ``i`` is
    ``(v[i] -+ w) / scale`` for the noisy fixed-point total ``v`` and the half-width
    ``w`` every element shares.

    The two arrays (read-only float64, 16 MB per 10^6 elements) are made the first
    time either is read (``Result.to_pandas``, JSON, the caller's own lookup) and
    kept; a fetch whose caller never reads them does not pay for them. ``v`` is
    :func:`decode_noisy`'s view of the noisy total, not a copy: a caller that reuses
    that buffer must read the intervals first (the analyst client's total is its own).
    """

    def __init__(self, values: np.ndarray, half_width: int, scale: int) -> None:
        self._values, self.half_width, self.scale = values, half_width, scale
        self._arrays: dict[str, np.ndarray] | None = None

    def _made(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            # Made in place on one float copy of the values: three 8 MB arrays at most.
            lows = np.array(self._values, dtype=np.float64)  # a copy, whatever the input
            highs = lows + self.half_width
            lows -= self.half_width
            if self.scale != 1:
                highs /= self.scale
                lows /= self.scale
            lows.setflags(write=False)
            highs.setflags(write=False)
            self._arrays = {"lo": lows, "hi": highs}
        return self._arrays

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in ("lo", "hi"):
            raise KeyError(key)
        return self._made()[key]

    def __contains__(self, key: object) -> bool:  # without making the arrays
        return key in ("lo", "hi")

    def __iter__(self) -> Iterator[str]:
        return iter(("lo", "hi"))

    def __len__(self) -> int:
        return 2

    def __repr__(self) -> str:
        return (
            f"VectorIntervals({len(self._values)} elements, half-width "
            f"{self.half_width}/{self.scale})"
        )


class _Widths:
    """Half-widths per field at a level, cached (fixed-point units)."""

    def __init__(self, noise: NoisePlan, servers: int) -> None:
        self.noise, self.servers = noise, servers
        self._cache: dict[tuple[int, float], int] = {}

    def __call__(self, field_index: int, alpha: float) -> int:
        key = (field_index, alpha)
        if key not in self._cache:
            f = self.noise.fields[field_index]
            self._cache[key] = half_width(self.noise.mechanism, f.param, self.servers, alpha)
        return self._cache[key]


def decode_noisy(
    plan: QueryPlan,
    noise: NoisePlan,
    total: np.ndarray | Sequence[int],
    contributors: int,
    servers: int,
    *,
    modulus: int = RING_MODULUS,
    confidence: float = 0.95,
) -> DpRelease:
    """Check and decode the noisy sum of ``contributors`` holders and ``servers`` noise draws.

    ``total`` holds ring (uint64) or field/Paillier elements reduced modulo
    ``modulus`` (Python ints, or signed ints already centred for Paillier
    when ``modulus`` is its ``n``). A vector dataset's intervals
    (:class:`VectorIntervals`) read a uint64 ``total`` when first read: do not
    change it before.
    """
    if isinstance(contributors, bool) or not isinstance(contributors, int) or contributors < 1:
        raise InvalidInputError(f"contributors must be a positive integer, got {contributors!r}")
    if isinstance(servers, bool) or not isinstance(servers, int) or servers < 1:
        raise InvalidInputError(f"servers must be a positive integer, got {servers!r}")
    if not 0.5 <= confidence < 1:
        raise InvalidInputError(f"confidence must lie in [0.5, 1), got {confidence!r}")
    if noise.length != plan.length:
        raise InvalidInputError("the noise plan was made for another query plan")
    ring = isinstance(total, np.ndarray) and total.dtype == np.uint64 and modulus == RING_MODULUS
    # A ring total stays a numpy view (two's complement) for a long vector; Python ints else.
    values: Any = np.asarray(total).view(np.int64) if ring else centered(total, modulus)
    if len(values) != plan.length:
        raise InvalidInputError(
            f"noisy total has {len(values)} slots, the query needs {plan.length}"
        )
    widths = _Widths(noise, servers)
    _check_ranges(plan, noise, values, total, contributors, modulus, widths)
    alpha = 1 - confidence
    notes: list[str] = []
    if plan.is_vector:
        b = plan.bounds[0]
        w = widths(0, alpha)
        # As the exact decoder: v / scale, as floats (10^6 Python objects either way).
        # The intervals (v -+ w) / scale are made only when read (VectorIntervals).
        numeric = values if isinstance(values, np.ndarray) else np.asarray(values, np.float64)
        rows = [{"vector": (numeric / b.scale).tolist()}]
        intervals = [{"vector": VectorIntervals(numeric, w, b.scale)}]
    else:
        values = [int(v) for v in values] if ring else values
        rows, intervals = [], []
        for g, group in enumerate(plan.groups):
            slots = values[g * plan.width : (g + 1) * plan.width]
            row, ivs = _group(plan, group, slots, widths, alpha, notes)
            rows.append(row)
            intervals.append(ivs)
    result = result_for(plan, rows, contributors)
    dp = noise.to_dict() | {
        "servers": servers,
        "confidence": confidence,
        "half_widths": [widths(i, alpha) / f.scale for i, f in enumerate(noise.fields)],
    }
    return DpRelease(result, intervals, notes, dp)


def _check_ranges(
    plan: QueryPlan,
    noise: NoisePlan,
    values: Sequence[int],
    total: np.ndarray | Sequence[int],
    contributors: int,
    modulus: int,
    widths: _Widths,
) -> None:
    """:func:`check_noisy_range` on every slot, field by field (vectorised for a ring).

    Slot labels are built only for a slot that fails (10^6 labels cost seconds).
    """
    alpha = 2.0**-DECODE_FAILURE_LOG2
    k = len(plan.fields)
    ring = isinstance(total, np.ndarray) and total.dtype == np.uint64 and modulus == RING_MODULUS
    signed = np.asarray(total).view(np.int64) if ring else None

    def check(i: int, low: int, high: int, margin: int) -> None:
        value = int(values[i])
        try:
            check_noisy_range("", value, low, high, margin, modulus)
        except OverflowDetectedError:
            check_noisy_range(plan.slot_labels[i], value, low, high, margin, modulus)

    for j, f in enumerate(plan.fields):
        if j >= plan.length:
            break
        margin = widths(0 if len(noise.fields) == 1 else j % noise.width, alpha)
        low, high = contributors * f.holder_lo, contributors * f.holder_hi
        check(j, low, high, margin)  # the widened range fits the modulus
        if signed is not None:
            column = signed[j::k]
            lo64, hi64 = max(low - margin, _INT64_MIN), min(high + margin, _INT64_MAX)
            # Two reductions, no temporaries; the first bad slot is searched only on failure.
            if column.size and (int(column.min()) < lo64 or int(column.max()) > hi64):
                bad = np.flatnonzero((column < lo64) | (column > hi64))
                check(j + k * int(bad[0]), low, high, margin)
        else:
            for i in range(j + k, plan.length, k):
                if not low - margin <= values[i] <= high + margin:
                    check(i, low, high, margin)


def _interval(v: int, w: int, scale: int) -> Interval:
    return ((v - w) / scale, (v + w) / scale)


def _group(
    plan: QueryPlan,
    group: tuple[str, ...],
    slots: list[int],
    widths: _Widths,
    alpha: float,
    notes: list[str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    row: dict[str, Any] = dict(zip(plan.query.group_by, group, strict=True))
    ivs: dict[str, Any] = {}
    where = plan.group_label(group) or "(all)"
    agg = plan.query.aggregate
    if agg == Aggregate.histogram:
        for i, (label, v) in enumerate(zip(plan.bin_labels, slots, strict=True)):
            row[label] = v
            ivs[label] = _interval(v, widths(i, alpha), 1)
            if v < 0:
                notes.append(f"group {where}: bin {label} is negative ({v}) after noise")
        return row, ivs
    count = slots[0]
    row["count"] = count
    ivs["count"] = _interval(count, widths(0, alpha), 1)
    if count < 0:
        notes.append(f"group {where}: the noisy count is negative ({count})")
    if agg == Aggregate.count:
        return row, ivs
    if agg == Aggregate.vector_sum:
        row["vector"] = [v / b.scale for v, b in zip(slots[1:], plan.bounds, strict=True)]
        ivs["vector"] = [
            _interval(v, widths(i + 1, alpha), b.scale)
            for i, (v, b) in enumerate(zip(slots[1:], plan.bounds, strict=True))
        ]
        return row, ivs
    b = plan.bounds[0]
    s = slots[1]
    if agg == Aggregate.sum:
        row["sum"] = s / b.scale
        ivs["sum"] = _interval(s, widths(1, alpha), b.scale)
        return row, ivs
    k = 2 if agg == Aggregate.mean else 3
    c_lo, c_hi = count - widths(0, alpha / k), count + widths(0, alpha / k)
    s_lo, s_hi = (s - widths(1, alpha / k)) / b.scale, (s + widths(1, alpha / k)) / b.scale
    row["mean"] = s / (count * b.scale) if count > 0 else None
    if count <= 0:
        notes.append(f"group {where}: no mean, the noisy count is {count}")
    if c_lo > 0:
        ratios = [x / y for x in (s_lo, s_hi) for y in (c_lo, c_hi)]
        m_lo, m_hi = max(b.lo, min(ratios)), min(b.hi, max(ratios))
    else:
        m_lo, m_hi = b.lo, b.hi
    ivs["mean"] = (m_lo, m_hi) if m_lo <= m_hi else (b.lo, b.hi)
    if agg == Aggregate.variance:
        q = slots[2]
        sq_scale = b.scale * b.scale
        q_lo = (q - widths(2, alpha / 3)) / sq_scale
        q_hi = (q + widths(2, alpha / 3)) / sq_scale
        cap = ((b.hi - b.lo) / 2) ** 2
        row["variance"] = (
            (q / sq_scale) / count - (s / (count * b.scale)) ** 2 if count > 0 else None
        )
        if c_lo > 0:
            mean_sq = [r * r for r in ratios]
            mean_sq_lo = 0.0 if min(ratios) <= 0 <= max(ratios) else min(mean_sq)
            v_lo = min(q_lo / c_lo, q_lo / c_hi) - max(mean_sq)
            v_hi = max(q_hi / c_lo, q_hi / c_hi) - mean_sq_lo
            v_lo, v_hi = max(0.0, v_lo), min(cap, v_hi)
            ivs["variance"] = (v_lo, v_hi) if v_lo <= v_hi else (0.0, cap)
        else:
            ivs["variance"] = (0.0, cap)
    return row, ivs
