"""Evaluating a compiled query on one holder's rows into its int64 vector.

Every holder runs :func:`evaluate` on its own :class:`Table` and gets a vector
in the plan's fixed layout (see :mod:`pets.query.plan`); the vectors of all
holders are then summed secretly. The steps are vectorised numpy: filter
mask, group index (mixed radix over the group-by codes, first column
slowest), clip to the effective bounds, fixed-point scaling with
:mod:`pets.encoding`, and grouped sums via ``np.bincount``/``np.add.at``.

Exactness: :func:`~pets.query.plan.compile` proved that with at most
``max_rows`` rows every slot stays within int64, so int64 arithmetic here is
exact; :func:`evaluate` refuses a table with more rows, and checks its own
result against the slot bounds before returning it.
"""

from __future__ import annotations

import numpy as np

from pets.encoding import INT64_MAX, INT64_MIN, clip, to_fixed
from pets.errors import InvalidInputError, OverflowDetectedError
from pets.query.model import Aggregate
from pets.query.plan import QueryPlan
from pets.query.table import Table, parse_csv

__all__ = ["Table", "evaluate", "group_row_counts", "parse_csv"]


def evaluate(plan: QueryPlan, table: Table) -> np.ndarray:
    """The holder's int64 vector of length ``plan.length`` for ``table``.

    Raises :class:`InvalidInputError` if the table is of another dataset or
    has more than ``max_rows`` rows, :class:`OverflowDetectedError` if a slot
    could not be computed exactly in int64.
    """
    check_table(plan, table)
    if table.n_rows > plan.max_rows:
        raise InvalidInputError(
            f"this holder has {table.n_rows} rows of dataset {plan.dataset.name!r}, more "
            f"than its declared max_rows={plan.max_rows}; refusing to contribute"
        )
    lo, hi = plan.holder_bounds()
    if lo < INT64_MIN or hi > INT64_MAX:  # compile() refuses such plans already
        raise OverflowDetectedError("the query's slots do not fit in 64 bits")
    if plan.is_vector:
        assert table.vector is not None
        b = plan.bounds[0]
        return to_fixed(clip(table.vector, b.lo, b.hi), b.scale)
    mask = row_mask(plan, table)
    g = group_index(plan, table)[mask]
    n_groups = len(plan.groups)
    out = np.zeros((n_groups, plan.width), dtype=np.int64)
    if plan.query.aggregate == Aggregate.histogram:
        n_bins = plan.width
        bins = bin_index(plan, table)[mask]
        out[:, :] = np.bincount(g * n_bins + bins, minlength=n_groups * n_bins).reshape(
            n_groups, n_bins
        )
    else:
        fixed = {
            b.column: to_fixed(clip(table.values(b.column)[mask], b.lo, b.hi), b.scale)
            for b in plan.bounds
        }
        for j, f in enumerate(plan.fields):
            slot = np.zeros(n_groups, dtype=np.int64)
            if f.kind == "count":
                slot += np.bincount(g, minlength=n_groups)
            elif f.kind == "sum":
                np.add.at(slot, g, fixed[str(f.column)])
            elif f.kind == "sum_sq":
                x = fixed[str(f.column)]
                np.add.at(slot, g, x * x)
            out[:, j] = slot
    for j, f in enumerate(plan.fields):
        column = out[:, j]
        if column.size and (int(column.min()) < f.holder_lo or int(column.max()) > f.holder_hi):
            raise OverflowDetectedError(f"{f.label} left its bounds; refusing to contribute")
    return out.ravel()


def group_row_counts(plan: QueryPlan, table: Table) -> dict[tuple[str, ...], int]:
    """Rows matching the filters, per group (every group, zeros included).

    A holder's local policy uses it to refuse queries with groups of 1..k-1
    rows. A vector dataset has one group holding the holder's one vector.
    """
    check_table(plan, table)
    if plan.is_vector:
        return {(): 1}
    g = group_index(plan, table)[row_mask(plan, table)]
    counts = np.bincount(g, minlength=len(plan.groups))
    return {group: int(c) for group, c in zip(plan.groups, counts, strict=True)}


def check_table(plan: QueryPlan, table: Table) -> None:
    """Raise :class:`InvalidInputError` unless ``table`` is of the plan's dataset."""
    if not isinstance(table, Table):
        raise InvalidInputError(f"expected a Table, got {type(table).__name__}")
    if table.dataset != plan.dataset:
        raise InvalidInputError(
            f"table is of dataset {table.dataset.name!r} as declared differently from "
            f"the query's dataset {plan.dataset.name!r}"
            if table.dataset.name == plan.dataset.name
            else f"table is of dataset {table.dataset.name!r}, the query of {plan.dataset.name!r}"
        )


def row_mask(plan: QueryPlan, table: Table) -> np.ndarray:
    """Boolean mask of the rows that pass every filter (raw, unclipped values)."""
    mask = np.ones(table.n_rows, dtype=bool)
    for f in plan.query.where:
        column = plan.dataset.column(f.column)
        values = table.values(f.column)
        wanted = f.value if isinstance(f.value, tuple) else (f.value,)
        if column.type == "category":
            codes = [column.domain.index(str(v)) for v in wanted]
            target = np.asarray(codes, dtype=np.int64)
        else:
            target = np.asarray([float(v) for v in wanted], dtype=np.float64)
        if f.op == "in":
            mask &= np.isin(values, target)
        elif f.op == "=":
            mask &= values == target[0]
        elif f.op == "!=":
            mask &= values != target[0]
        elif f.op == "<":
            mask &= values < target[0]
        elif f.op == "<=":
            mask &= values <= target[0]
        elif f.op == ">":
            mask &= values > target[0]
        else:
            mask &= values >= target[0]
    return mask


def group_index(plan: QueryPlan, table: Table) -> np.ndarray:
    """Per row, the index of its group in ``plan.groups`` (int64)."""
    index = np.zeros(table.n_rows, dtype=np.int64)
    for name in plan.query.group_by:
        size = len(plan.dataset.column(name).domain)
        index = index * size + table.values(name)
    return index


def bin_index(plan: QueryPlan, table: Table) -> np.ndarray:
    """Per row, the histogram bin: a domain code, or the numeric bin (ends clipped)."""
    name = str(plan.query.column)
    values = table.values(name)
    if plan.query.bins is None:
        return values
    edges = np.asarray(plan.query.bins, dtype=np.float64)
    index = np.searchsorted(edges, values, side="right") - 1
    return np.clip(index, 0, len(edges) - 2).astype(np.int64)
