"""Decoding a summed vector into the answer, and the plaintext reference.

:func:`decode` takes the sum of the holders' vectors (``uint64`` ring
elements, ``int64``, or Python ints from the Paillier path), reads every slot
as a signed 64-bit integer and proves each one exact with
:func:`pets.encoding.check_sum` before using it:

* a count or histogram bin is a sum of ``contributors * max_rows`` terms in
  ``[0, 1]``; the counts of all groups together are bounded the same way;
* a sum (or sum of squares) of a group is a sum of exactly ``count`` terms,
  each within the column's fixed-point bounds (squares: their exact range);
* an element of a vector dataset is a sum of ``contributors`` terms.

A slot outside its range, or whose range does not fit in 64 bits, raises
:class:`~pets.errors.OverflowDetectedError` naming the slot: a sum that may
have wrapped is never turned into a wrong number.

:func:`plaintext` computes the same answer directly in float64 from the raw
rows (clipping applied, no fixed point), for demos and tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pets.encoding import (
    FLOAT_EXACT_MAX,
    INT64_MAX,
    INT64_MIN,
    RING_MODULUS,
    check_sum,
    clip,
    from_ring,
)
from pets.errors import InvalidInputError, OverflowDetectedError
from pets.query.evaluate import bin_index, check_table, group_index, row_mask
from pets.query.model import Aggregate
from pets.query.plan import QueryPlan
from pets.query.result import Result
from pets.query.table import Table

__all__ = ["Result", "decode", "plaintext"]


def decode(plan: QueryPlan, total: np.ndarray | Sequence[int], contributors: int) -> Result:
    """Check and decode the summed vector of ``contributors`` holders."""
    if isinstance(contributors, bool) or not isinstance(contributors, int) or contributors < 1:
        raise InvalidInputError(f"contributors must be a positive integer, got {contributors!r}")
    slots = signed_slots(total, plan.length)
    if plan.is_vector:
        rows = [{"vector": _decode_vector(plan, slots, contributors)}]
        return result_for(plan, rows, contributors)
    rows_possible = contributors * plan.max_rows
    grid = slots.reshape(len(plan.groups), plan.width).tolist()
    seen_rows = 0
    rows = []
    for group, values in zip(plan.groups, grid, strict=True):
        prefix = plan.group_label(group)
        count = 0
        for f, v in zip(plan.fields, values, strict=True):
            label = f"{prefix}:{f.label}" if prefix else f.label
            terms = rows_possible if f.kind in ("count", "bin") else count
            _check(label, v, terms, f.term_lo, f.term_hi)
            if f.kind == "count":
                count = v
            elif f.kind == "bin":
                seen_rows += v
        seen_rows += count
        rows.append(_row(plan, group, values))
    if seen_rows > rows_possible:
        raise OverflowDetectedError(
            f"the groups count {seen_rows} rows, more than {contributors} holders of at "
            f"most {plan.max_rows} rows have; the aggregate cannot be trusted"
        )
    return result_for(plan, rows, contributors)


def signed_slots(total: np.ndarray | Sequence[int], length: int) -> np.ndarray:
    """``total`` as an int64 array of ``length`` signed slots.

    ``uint64`` ring elements are read as two's complement; Python ints must
    lie in ``[-2^63, 2^64)`` (values from ``2^63`` up are read as negative).
    """
    if isinstance(total, np.ndarray):
        if total.dtype == np.uint64:
            arr = from_ring(total)
        elif total.dtype == np.int64:
            arr = total
        else:
            raise InvalidInputError(f"summed vector must be uint64 or int64, got {total.dtype}")
    else:
        values = []
        for v in total:
            if isinstance(v, bool) or not isinstance(v, int | np.integer):
                raise InvalidInputError(f"summed vector entries must be integers, got {v!r}")
            v = int(v)
            if not INT64_MIN <= v < RING_MODULUS:
                raise OverflowDetectedError(
                    "a summed slot lies outside the 64-bit range; the aggregate cannot be trusted"
                )
            values.append(v - RING_MODULUS if v > INT64_MAX else v)
        arr = np.array(values, dtype=np.int64)
    if arr.ndim != 1 or len(arr) != length:
        raise InvalidInputError(f"summed vector has shape {arr.shape}, the query needs ({length},)")
    return arr


def _check(label: str, total: int, terms: int, lo: int, hi: int) -> None:
    try:
        check_sum(total, terms, lo, hi)
    except OverflowDetectedError as exc:
        raise OverflowDetectedError(f"slot {label}: {exc}") from None


def _decode_vector(plan: QueryPlan, slots: np.ndarray, contributors: int) -> list[float]:
    b = plan.bounds[0]
    low, high = contributors * b.lo_fixed, contributors * b.hi_fixed
    _check("[*]", low, contributors, b.lo_fixed, b.hi_fixed)  # does the range fit 64 bits?
    bad = np.flatnonzero((slots < low) | (slots > high))
    if bad.size:
        i = int(bad[0])
        _check(f"[{i}]", int(slots[i]), contributors, b.lo_fixed, b.hi_fixed)
    if slots.size and int(np.abs(slots).max()) > FLOAT_EXACT_MAX:
        return [v / b.scale for v in slots.tolist()]  # exact int division, slow path
    return (slots / b.scale).tolist()  # exact: every slot fits a float64 mantissa


def _row(plan: QueryPlan, group: tuple[str, ...], values: list[int]) -> dict[str, Any]:
    """One result row from a group's exact integer slots."""
    row: dict[str, Any] = dict(zip(plan.query.group_by, group, strict=True))
    agg = plan.query.aggregate
    if agg == Aggregate.histogram:
        row.update(zip(plan.bin_labels, values, strict=True))
        return row
    count = values[0]
    row["count"] = count
    if agg == Aggregate.count:
        return row
    if agg == Aggregate.vector_sum:
        row["vector"] = [v / b.scale for v, b in zip(values[1:], plan.bounds, strict=True)]
        return row
    scale = plan.bounds[0].scale
    s = values[1]
    if agg == Aggregate.sum:
        row["sum"] = s / scale
        return row
    row["mean"] = s / (count * scale) if count else None
    if agg == Aggregate.variance:
        ss = values[2]
        spread = count * ss - s * s  # exact: count^2 * scale^2 * variance
        if spread < 0:
            raise OverflowDetectedError(
                f"group {plan.group_label(group) or '(all)'}: sum of squares is inconsistent "
                "with the sum; the aggregate cannot be trusted"
            )
        row["variance"] = spread / (count * count * scale * scale) if count else None
    return row


def result_for(plan: QueryPlan, rows: list[dict[str, Any]], contributors: int) -> Result:
    """The :class:`Result` of ``plan`` with these rows (shared by the exact and DP decoders)."""
    if plan.query.aggregate == Aggregate.vector_sum and not plan.is_vector:
        labels = tuple(f"sum({b.column})" for b in plan.bounds)
    else:
        labels = ()
    return Result(
        aggregate=plan.query.aggregate,
        description=plan.query.describe(),
        dataset=plan.dataset.name,
        group_by=plan.query.group_by,
        fields=plan.result_fields,
        rows=rows,
        contributors=contributors,
        labels=labels,
        term_error=tuple(0.5 / b.scale for b in plan.bounds),
        term_magnitude=tuple(max(abs(b.lo), abs(b.hi)) for b in plan.bounds),
    )


# -- plaintext reference --------------------------------------------------------


def plaintext(plan: QueryPlan, tables: Sequence[Table]) -> Result:
    """The answer computed in float64 straight from all holders' rows.

    Filters and clipping are those of the secure path; values are not
    rounded to fixed point, so the two agree within :meth:`Result.close_to`.
    """
    if plan.linkage is not None:
        raise InvalidInputError(
            "a linked query's plaintext answer needs the join: pets.devtools.linkjoin"
        )
    for table in tables:
        check_table(plan, table)
    if plan.is_vector:
        b = plan.bounds[0]
        clipped = [clip(t.vector, b.lo, b.hi) for t in tables if t.vector is not None]
        total = np.sum(clipped, axis=0) if clipped else np.zeros(plan.width)
        return result_for(plan, [{"vector": [float(v) for v in total]}], len(tables))
    n_groups = len(plan.groups)
    masks = [row_mask(plan, t) for t in tables]
    g = _concat([group_index(plan, t)[m] for t, m in zip(tables, masks, strict=True)], np.int64)
    counts = np.bincount(g, minlength=n_groups)
    agg = plan.query.aggregate
    if agg == Aggregate.histogram:
        bins = _concat(
            [bin_index(plan, t)[m] for t, m in zip(tables, masks, strict=True)], np.int64
        )
        width = plan.width
        hist = np.bincount(g * width + bins, minlength=n_groups * width).reshape(n_groups, width)
        rows = [
            {
                **dict(zip(plan.query.group_by, group, strict=True)),
                **dict(zip(plan.bin_labels, map(int, hist[i]), strict=True)),
            }
            for i, group in enumerate(plan.groups)
        ]
        return result_for(plan, rows, len(tables))
    order = np.argsort(g, kind="stable")
    starts = np.concatenate(([0], np.cumsum(counts)))
    values = {}
    for b in plan.bounds:
        raw = _concat(
            [t.values(b.column)[m] for t, m in zip(tables, masks, strict=True)], np.float64
        )
        values[b.column] = clip(raw, b.lo, b.hi)[order]
    rows = []
    for i, group in enumerate(plan.groups):
        lo, hi = int(starts[i]), int(starts[i + 1])
        c = hi - lo
        row: dict[str, Any] = dict(zip(plan.query.group_by, group, strict=True))
        row["count"] = c
        parts = {name: x[lo:hi] for name, x in values.items()}
        if agg == Aggregate.vector_sum:
            row["vector"] = [float(np.sum(parts[b.column])) for b in plan.bounds]
        elif agg == Aggregate.sum:
            row["sum"] = float(np.sum(parts[plan.bounds[0].column]))
        elif agg in (Aggregate.mean, Aggregate.variance):
            x = parts[plan.bounds[0].column]
            mean = float(np.sum(x)) / c if c else None
            row["mean"] = mean
            if agg == Aggregate.variance:
                row["variance"] = float(np.sum((x - mean) ** 2)) / c if c else None
        rows.append(row)
    return result_for(plan, rows, len(tables))


def _concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)
