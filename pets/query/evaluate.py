"""Evaluating a compiled query on one holder's rows into its int64 vector, batch by batch.

Every holder runs the query on its own rows and gets a vector in the plan's
fixed layout (see :mod:`pets.query.plan`); the vectors of all holders are
then summed secretly. Rows arrive as a stream of :class:`Table` batches (a
file or database read a batch at a time, see :mod:`pets.sources`): an
:class:`Accumulator` filters, groups, clips and fixed-point encodes each batch
into a partial vector and adds it into the holder's vector. Every slot is a
sum over rows (counts, sums of fixed-point values, sums of their squares,
histogram counts), so the result is exactly the one of the whole table at
once, and memory is O(batch), not O(rows). :func:`evaluate` is the one-batch
case.

The per-batch steps are vectorised numpy: filter mask, group index (mixed
radix over the group-by codes, first column slowest), rows failing a filter
sent to a spare "discard" group instead of being copied out, clip to the
effective bounds, ``rint(clip(v) * scale)`` exactly as
:func:`pets.encoding.to_fixed`, and grouped sums with ``np.bincount``.

Exactness (no int64 overflow, no float rounding):

* :func:`~pets.query.plan.compile` proved that a holder with at most
  ``max_rows`` rows keeps every slot in ``[holder_lo, holder_hi]``, inside
  int64: each slot is a sum of at most ``max_rows`` terms in
  ``[term_lo, term_hi]`` with ``holder_lo = min(0, max_rows*term_lo)`` and
  ``holder_hi = max(0, max_rows*term_hi)``.
* The accumulator counts rows *before* it adds a batch and refuses once the
  count passes ``max_rows``. So every running total, and every batch's partial
  vector, is a sum over a subset of at most ``max_rows`` rows: it lies in the
  same proven range, whatever the batch sizes or the order batches are added.
* A grouped sum is taken in float64 by ``np.bincount`` only when the batch
  (or a slice of it) has ``k`` rows with ``k * max|term| <= 2^53``: every
  partial sum is then an integer of magnitude at most 2^53, which float64
  holds exactly, so the float result converts to int64 without error. Longer
  batches are cut into such slices; where even one term exceeds 2^53 (a
  ``sum_sq`` of very wide bounds) the sum is taken in int64 with
  ``np.add.at``.
* The finished vector is checked against the slot bounds once more.

The small-group check of a holder's policy needs the row count of every cell
it would release (:attr:`Evaluation.cells`): each group, and for a histogram
each group x bin; :meth:`Evaluation.small_cells` counts those with 1 to k-1
rows. The accumulator computes them in the same pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from pets.encoding import FLOAT_EXACT_MAX, INT64_MAX, INT64_MIN, clip, to_fixed
from pets.errors import InvalidInputError, OverflowDetectedError
from pets.query.model import Aggregate, Filter
from pets.query.plan import Field, QueryPlan
from pets.query.schema import Dataset
from pets.query.table import Table, parse_csv

__all__ = [
    "Accumulator",
    "Evaluation",
    "Table",
    "cell_row_counts",
    "evaluate",
    "evaluate_batches",
    "filter_mask",
    "group_row_counts",
    "parse_csv",
]


@dataclass(frozen=True)
class Evaluation:
    """A holder's finished evaluation: its vector and what its policy checks.

    ``cells`` holds the rows behind each released cell, in slot order: per
    group for every aggregate but histograms, per group x bin for histograms
    (a vector dataset: one cell, the holder's vector). ``rows`` is the number
    of rows read, ``matched`` the number that passed every filter.
    """

    vector: np.ndarray
    cells: np.ndarray
    rows: int
    matched: int

    def small_cells(self, min_rows: int) -> int:
        """How many released cells (or the filter result) have 1 to ``min_rows - 1`` rows."""
        small = int(np.count_nonzero((self.cells > 0) & (self.cells < min_rows)))
        if small == 0 and 0 < self.matched < min_rows:
            small = 1
        return small


class Accumulator:
    """The holder's vector for ``plan``, built from row batches added one at a time.

    :meth:`partial` is pure (it may run in several threads at once, one batch
    each); :meth:`count_rows` and :meth:`add` are called in stream order from one
    thread. :meth:`push` does all three for one batch.
    """

    def __init__(self, plan: QueryPlan, *, source: str = "") -> None:
        if plan.linkage is not None:
            raise InvalidInputError(
                "a linked query is evaluated per person (pets.linkage.persons), not per holder"
            )
        lo, hi = plan.holder_bounds()
        if lo < INT64_MIN or hi > INT64_MAX:  # compile() refuses such plans already
            raise OverflowDetectedError("the query's slots do not fit in 64 bits")
        self.plan = plan
        self.source = source
        self.rows = 0
        self.matched = 0
        n_cells = (
            1
            if plan.is_vector
            else len(plan.groups)
            * (plan.width if plan.query.aggregate == Aggregate.histogram else 1)
        )
        self.vector = np.zeros(plan.length, dtype=np.int64)
        self.cells = np.zeros(n_cells, dtype=np.int64)

    def count_rows(self, n: int) -> None:
        """Account for ``n`` more rows; refuse once they pass ``max_rows``."""
        self.rows += n
        if self.rows > self.plan.max_rows:
            where = self.source or f"dataset {self.plan.dataset.name!r}"
            raise InvalidInputError(
                f"{where}: this holder has more than max_rows={self.plan.max_rows} rows; "
                "refusing to contribute"
            )

    def partial(self, table: Table) -> tuple[np.ndarray, np.ndarray, int]:
        """One batch's (vector, cells, matched rows); see the module docstring."""
        check_table(self.plan, table)
        return _partial(self.plan, table)

    def add(self, part: tuple[np.ndarray, np.ndarray, int]) -> None:
        """Add a batch's :meth:`partial` (its rows already counted)."""
        vector, cells, matched = part
        self.vector += vector
        self.cells += cells
        self.matched += matched

    def push(self, table: Table) -> None:
        """Count, evaluate and add one batch."""
        check_table(self.plan, table)
        self.count_rows(table.n_rows)
        self.add(self.partial(table))

    def finish(self) -> Evaluation:
        """The holder's vector, checked against every slot's bounds."""
        plan = self.plan
        if plan.is_vector:
            return Evaluation(self.vector.copy(), self.cells.copy(), self.rows, self.matched)
        out = self.vector.reshape(len(plan.groups), plan.width)
        for j, f in enumerate(plan.fields):
            column = out[:, j]
            if column.size and (int(column.min()) < f.holder_lo or int(column.max()) > f.holder_hi):
                raise OverflowDetectedError(f"{f.label} left its bounds; refusing to contribute")
        return Evaluation(self.vector.copy(), self.cells.copy(), self.rows, self.matched)


def evaluate_batches(plan: QueryPlan, batches: Iterable[Table], *, source: str = "") -> Evaluation:
    """Evaluate ``plan`` over a stream of batches (memory: one batch at a time)."""
    acc = Accumulator(plan, source=source)
    for table in batches:
        acc.push(table)
    return acc.finish()


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
    return evaluate_batches(plan, [table]).vector


def group_row_counts(plan: QueryPlan, table: Table) -> dict[tuple[str, ...], int]:
    """Rows matching the filters, per group (every group, zeros included).

    A vector dataset has one group holding the holder's one vector. For a
    policy check use :func:`cell_row_counts`, which also splits histogram bins.
    """
    check_table(plan, table)
    if plan.is_vector:
        return {(): 1}
    g = group_index(plan, table)[row_mask(plan, table)]
    counts = np.bincount(g, minlength=len(plan.groups))
    return {group: int(c) for group, c in zip(plan.groups, counts, strict=True)}


def cell_row_counts(plan: QueryPlan, table: Table) -> dict[str, int]:
    """Rows behind every cell the query releases, by slot label (group, or group x bin)."""
    ev = evaluate_batches(plan, [table])
    if plan.is_vector:
        return {"vector": 1}
    if plan.query.aggregate == Aggregate.histogram:
        labels = plan.slot_labels
    else:
        labels = tuple(plan.group_label(g) or "all" for g in plan.groups)
    return {label: int(c) for label, c in zip(labels, ev.cells, strict=True)}


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
    return filter_mask(plan.dataset, plan.query.where, table)


def filter_mask(dataset: Dataset, where: Sequence[Filter], table: Table) -> np.ndarray:
    """Boolean mask of the rows of ``table`` that pass every filter of ``where``.

    The filters are checked against ``dataset`` already (by compile); a linked
    plan gives each side's own filters (:attr:`pets.query.linked.LinkedSide.where`).
    """
    mask: np.ndarray | None = None
    for f in where:
        column = dataset.column(f.column)
        values = table.values(f.column)
        wanted = f.value if isinstance(f.value, tuple) else (f.value,)
        if column.type == "category":
            codes = [column.domain.index(str(v)) for v in wanted]
            target = np.asarray(codes, dtype=np.int64)
        else:
            target = np.asarray([float(v) for v in wanted], dtype=np.float64)
        if f.op == "in":
            passed = np.isin(values, target)
        elif f.op == "=":
            passed = values == target[0]
        elif f.op == "!=":
            passed = values != target[0]
        elif f.op == "<":
            passed = values < target[0]
        elif f.op == "<=":
            passed = values <= target[0]
        elif f.op == ">":
            passed = values > target[0]
        else:
            passed = values >= target[0]
        if mask is None:
            mask = passed
        else:
            mask &= passed
    return np.ones(table.n_rows, dtype=bool) if mask is None else mask


def group_index(plan: QueryPlan, table: Table) -> np.ndarray:
    """Per row, the index of its group in ``plan.groups`` (int64)."""
    if not plan.query.group_by:
        return np.zeros(table.n_rows, dtype=np.int64)
    first, *rest = plan.query.group_by
    index = table.values(first)
    for name in rest:
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


# -- one batch --------------------------------------------------------------------

_SHIFT_GROUPS_MAX = 1 << 16


def _partial(plan: QueryPlan, table: Table) -> tuple[np.ndarray, np.ndarray, int]:
    if plan.is_vector:
        if table.vector is None:
            raise InvalidInputError(f"dataset {plan.dataset.name!r} needs the holder's vector")
        b = plan.bounds[0]
        return to_fixed(clip(table.vector, b.lo, b.hi), b.scale), np.ones(1, np.int64), 1
    n_groups = len(plan.groups)
    g = group_index(plan, table)
    spare = 1  # groups n_groups .. n_groups*(1+spare)-1 collect the rows filtered out
    if plan.query.where:
        mask = row_mask(plan, table)
        matched = int(np.count_nonzero(mask))
        # Rows failing a filter are moved to spare groups, dropped at the end:
        # cheaper than copying the passing rows out of every column. Shifting a
        # row's group by n_groups costs a quarter of np.where (measured), but
        # doubles the bincount length: only for modest group counts.
        if matched < table.n_rows:
            if n_groups <= _SHIFT_GROUPS_MAX:
                g = g + (~mask).astype(np.int64) * n_groups
                spare = n_groups
            else:
                g = np.where(mask, g, n_groups)
    else:
        matched = table.n_rows
    if plan.query.aggregate == Aggregate.histogram:
        n_bins = plan.width
        cells = np.bincount(
            g * n_bins + bin_index(plan, table), minlength=(n_groups + spare) * n_bins
        )
        hist = cells[: n_groups * n_bins].astype(np.int64)
        return hist, hist.copy(), matched
    out = np.zeros((n_groups, plan.width), dtype=np.int64)
    counts = np.bincount(g, minlength=n_groups + spare)[:n_groups].astype(np.int64)
    fixed: dict[str, np.ndarray] = {}
    for b in plan.bounds:
        x = np.clip(table.values(b.column), b.lo, b.hi)  # NaN never reaches here (Table)
        np.multiply(x, float(b.scale), out=x)
        np.rint(x, out=x)
        fixed[b.column] = x  # integral float64 values of magnitude <= 2^53
    for j, f in enumerate(plan.fields):
        if f.kind == "count":
            out[:, j] = counts
        elif f.kind == "sum":
            out[:, j] = _grouped_sum(g, fixed[str(f.column)], f, n_groups, spare, square=False)
        elif f.kind == "sum_sq":
            out[:, j] = _grouped_sum(g, fixed[str(f.column)], f, n_groups, spare, square=True)
    return out.ravel(), counts, matched


def _grouped_sum(
    g: np.ndarray, x: np.ndarray, f: Field, n_groups: int, spare: int, *, square: bool
) -> np.ndarray:
    """Exact per-group sums of ``x`` (or ``x*x``) for groups ``0..n_groups-1``."""
    magnitude = max(abs(f.term_lo), abs(f.term_hi), 1)
    step = FLOAT_EXACT_MAX // magnitude  # rows per slice whose float sums stay exact
    out = np.zeros(n_groups, dtype=np.int64)
    if step < 1:  # one term alone is beyond 2^53: sum in int64 (compile bounded it)
        terms = x.astype(np.int64)
        if square:
            terms = terms * terms
        keep = g < n_groups
        np.add.at(out, g[keep], terms[keep])
        return out
    for start in range(0, len(x), step):
        part = x[start : start + step]
        weights = part * part if square else part
        sums = np.bincount(g[start : start + step], weights=weights, minlength=n_groups + spare)
        out += sums[:n_groups].astype(np.int64)
    return out
