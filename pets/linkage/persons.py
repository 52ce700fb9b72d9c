"""A holder's side of a linked query: its people, and one vector per person.

For a linked plan (:attr:`pets.query.QueryPlan.linkage`, see
:mod:`pets.query.linked`) a holder of one side's dataset

1. applies that side's filters to its rows
   (:func:`pets.query.evaluate.filter_mask`; filters see raw row values);
2. normalises the identifiers as its dataset declares and keeps one row per
   person by its dataset's rule (:func:`pets.linkage.normalise.normalise_ids`
   and :func:`pets.linkage.dedup.one_row_per_person`, the two steps of
   :func:`pets.linkage.holder.prepare_records`);
3. on the value side (the query's ``from`` dataset) computes each person's
   vector with exactly the encoding one row has in the ordinary plan
   (:mod:`pets.query.evaluate`): a 1 in the person's group's count slot,
   ``rint(clip(v)·scale)`` in its sum slot, the square in its ``sum_sq`` slot,
   a 1 in its histogram bin. The sum of these vectors over the matched people
   is therefore what :func:`pets.query.decode` expects from one holder of at
   most ``max_rows`` rows. Other sides send identifiers only (width 0).

What a person's values are, per rule: ``first``, ``last`` and ``reject``
take every column from the row kept. ``sum``, ``min`` and ``max`` combine the
aggregated numeric columns over the person's rows, on plain values before
clipping (so with ``sum`` the column's bounds, and a query's clip, bound the
person's total), and take category columns (group-by, histogram) from the
person's first row.

Memory: the identifiers of the rows that pass the filters (the strings
themselves, then their normalised bytes), a few numpy arrays of one entry per
row, and per person a group index and one int64 term per field. Vectors are
built on demand for the people asked for (:meth:`PersonRecords.vectors`), a
chunk at a time, so 10^6 people never need 10^6 full vectors at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from pets.errors import InvalidInputError
from pets.linkage.dedup import one_row_per_person
from pets.linkage.domain import LinkageDomain
from pets.linkage.normalise import normalise_ids
from pets.query.evaluate import bin_index, filter_mask, group_index
from pets.query.linked import LinkedSide
from pets.query.model import Aggregate
from pets.query.plan import QueryPlan
from pets.query.table import Table

__all__ = ["PersonAccumulator", "PersonRecords", "domain_of", "evaluate_persons"]


def domain_of(side: LinkedSide) -> LinkageDomain:
    """The pets.linkage domain of a side: the shared name, the dataset's normalisation."""
    return LinkageDomain(side.linkage.domain, side.linkage.normalisation)


@dataclass(frozen=True, eq=False)
class PersonRecords:
    """One holder's people for one side of a linked plan (see the module docstring).

    ``ids[i]`` is person ``i``'s normalised identifier (distinct);
    :meth:`vectors` gives the value side's vectors of any people by index.
    ``rows`` rows were read, ``matched`` passed the side's filters, and
    ``dropped`` of those had a missing or empty identifier.
    """

    plan: QueryPlan = field(repr=False)
    side: LinkedSide = field(repr=False)
    domain: LinkageDomain = field(repr=False)
    ids: list[bytes] = field(repr=False)
    rows: int
    matched: int
    dropped: int
    group: np.ndarray | None = field(default=None, repr=False)  # per person, the group index
    terms: np.ndarray | None = field(default=None, repr=False)  # per person x field: int64 term

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return (
            f"PersonRecords(side={self.side.name!r}, persons={len(self)}, rows={self.rows}, "
            f"matched={self.matched}, dropped={self.dropped})"
        )

    @property
    def width(self) -> int:
        """Slots of one person's vector: the plan's length on the value side, else 0."""
        return self.plan.length if self.side.carries_values else 0

    def _slots(self, persons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(slot index, int64 term) of every non-zero entry of these people's vectors.

        Both arrays have shape (len(persons), entries per person).
        """
        assert self.group is not None and self.terms is not None
        plan = self.plan
        base = self.group[persons] * plan.width
        if plan.query.aggregate == Aggregate.histogram:  # terms[:, 0] holds the bin
            bins = self.terms[persons, 0]
            return (base + bins)[:, None], np.ones((len(persons), 1), dtype=np.int64)
        offsets = np.arange(len(plan.fields), dtype=np.int64)
        return base[:, None] + offsets[None, :], self.terms[persons]

    def _persons(self, persons: Iterable[int] | np.ndarray) -> np.ndarray:
        if not self.side.carries_values:
            raise InvalidInputError(
                f"dataset {self.side.name!r} is not the value side of this linked query; "
                "its holders send identifiers only"
            )
        index = np.asarray(persons, dtype=np.int64).reshape(-1)
        if index.size and (int(index.min()) < 0 or int(index.max()) >= len(self)):
            raise InvalidInputError("person index out of range")
        return index

    def vectors(self, persons: Iterable[int] | np.ndarray) -> np.ndarray:
        """The ``uint64`` vectors of ``persons`` (indices into :attr:`ids`), one row each."""
        index = self._persons(persons)
        out = np.zeros((len(index), self.width), dtype=np.int64)
        if len(index):
            slots, terms = self._slots(index)
            rows = np.arange(len(index), dtype=np.int64)[:, None]
            out[rows, slots] = terms
        return out.view(np.uint64)

    def cells(self, persons: Iterable[int] | np.ndarray | None = None) -> np.ndarray:
        """People behind each released cell (per group; histograms: per group x bin).

        Over all people kept by default, or over ``persons``: the counts a
        holder's small-cell policy checks, as :attr:`pets.query.Evaluation.cells`
        for ordinary queries (the matched people are a subset of these).
        """
        index = self._persons(range(len(self)) if persons is None else persons)
        plan = self.plan
        histogram = plan.query.aggregate == Aggregate.histogram
        size = len(plan.groups) * (plan.width if histogram else 1)
        if not len(index):
            return np.zeros(size, dtype=np.int64)
        assert self.group is not None and self.terms is not None
        cell = self.group[index]
        if histogram:
            cell = cell * plan.width + self.terms[index, 0]
        return np.bincount(cell, minlength=size).astype(np.int64)

    def sum_vectors(self, persons: Iterable[int] | np.ndarray) -> np.ndarray:
        """The sum (in Z_2^64, ``uint64``) of the vectors of ``persons``, without building them."""
        index = self._persons(persons)
        out = np.zeros(self.width, dtype=np.uint64)
        if len(index):
            slots, terms = self._slots(index)
            np.add.at(out, slots.ravel(), terms.ravel().view(np.uint64))
        return out


class PersonAccumulator:
    """Collect one holder's rows of one side batch by batch; :meth:`finish` makes the people.

    Each batch's identifiers are normalised as it arrives, so what stays is
    the normalised identifiers of the rows that pass the filters and a few
    numbers per such row, never the raw strings or a vector per row.
    """

    def __init__(self, plan: QueryPlan, dataset: str, *, source: str = "") -> None:
        if plan.linkage is None:
            raise InvalidInputError("not a linked query; use pets.query.evaluate")
        self.plan = plan
        self.side = plan.linkage.side(dataset)
        self.source = source or f"dataset {dataset!r}"
        self.rows = 0
        self.matched = 0
        self.dropped = 0
        self._domain = domain_of(self.side)
        self._ids: list[bytes] = []
        self._numeric: list[np.ndarray] = []
        self._category: list[np.ndarray] = []
        self._numeric_columns, self._category_columns = _value_columns(plan, self.side)

    def push(self, table: Table, ids: Sequence[object] | np.ndarray | None = None) -> None:
        """Add one batch: its table and (unless the table holds them) its identifiers."""
        if not isinstance(table, Table) or table.dataset != self.side.dataset:
            raise InvalidInputError(
                f"{self.source}: the batch is not a table of dataset {self.side.name!r} "
                "as the schema declares it"
            )
        raw = table.ids if ids is None else np.asarray(ids, dtype=object)
        if raw is None:
            raise InvalidInputError(
                f"{self.source}: the identifier column {self.side.linkage.id_column!r} "
                "was not read; a linked query needs it"
            )
        if raw.ndim != 1 or len(raw) != table.n_rows:
            raise InvalidInputError(
                f"{self.source}: {len(raw)} identifiers for a batch of {table.n_rows} rows"
            )
        self.rows += table.n_rows
        if self.rows > self.side.max_rows:
            raise InvalidInputError(
                f"{self.source}: this holder has more than max_rows={self.side.max_rows} rows; "
                "refusing to contribute"
            )
        mask = filter_mask(self.side.dataset, self.side.where, table)
        self.matched += int(np.count_nonzero(mask))
        passed = np.flatnonzero(mask)
        kept, rows, dropped = normalise_ids(raw[passed].tolist(), self._domain.normalisation)
        self._ids.extend(kept)
        self.dropped += dropped
        if self.side.carries_values:
            usable = passed[np.asarray(rows, dtype=np.int64)]
            self._numeric.append(_matrix(table, self._numeric_columns, usable, np.float64))
            self._category.append(_matrix(table, self._category_columns, usable, np.int64))

    def finish(self) -> PersonRecords:
        """Normalise, keep one row per person, and encode each person's values."""
        side = self.side
        domain = self._domain
        rule = side.linkage.one_row
        kept, self._ids = self._ids, []
        dropped = self.dropped
        if not side.carries_values:
            distinct, _ = one_row_per_person(kept, None, rule)
            return PersonRecords(
                self.plan, side, domain, distinct, self.rows, self.matched, dropped
            )
        numeric = _stack(self._numeric, len(self._numeric_columns), np.float64)
        category = _stack(self._category, len(self._category_columns), np.int64)
        self._numeric = self._category = []
        if rule in ("first", "last", "reject"):
            both = np.concatenate([numeric, category.astype(np.float64)], axis=1)
            distinct, chosen = one_row_per_person(kept, both, rule)
            assert chosen is not None
            numeric = chosen[:, : numeric.shape[1]]
            category = chosen[:, numeric.shape[1] :].astype(np.int64)
        else:
            distinct, combined = one_row_per_person(kept, numeric, rule)
            _, first = one_row_per_person(kept, category, "first")
            assert combined is not None and first is not None
            numeric, category = combined, first
        group, terms = _encode(
            self.plan, self._numeric_columns, self._category_columns, numeric, category
        )
        return PersonRecords(
            self.plan, side, domain, distinct, self.rows, self.matched, dropped, group, terms
        )


def evaluate_persons(
    plan: QueryPlan, dataset: str, table: Table, ids: Sequence[object] | np.ndarray | None = None
) -> PersonRecords:
    """One holder's :class:`PersonRecords` for ``dataset``'s side of ``plan`` (one batch)."""
    acc = PersonAccumulator(plan, dataset)
    acc.push(table, ids)
    return acc.finish()


# -- helpers ------------------------------------------------------------------------


def _value_columns(plan: QueryPlan, side: LinkedSide) -> tuple[list[str], list[str]]:
    """The value side's numeric and category columns a person's vector depends on."""
    if not side.carries_values:
        return [], []
    numeric = [b.column for b in plan.bounds]
    category = list(plan.query.group_by)
    column = plan.query.column
    if plan.query.aggregate == Aggregate.histogram and column is not None:
        if plan.dataset.column(column).type == "category":
            category.append(column)
        else:
            numeric.append(column)
    return list(dict.fromkeys(numeric)), list(dict.fromkeys(category))


def _matrix(table: Table, columns: list[str], rows: np.ndarray, dtype: type) -> np.ndarray:
    out: np.ndarray = np.empty((len(rows), len(columns)), dtype=dtype)
    for j, name in enumerate(columns):
        out[:, j] = table.values(name)[rows]
    return out


def _stack(parts: list[np.ndarray], width: int, dtype: type) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros((0, width), dtype=dtype)


def _encode(
    plan: QueryPlan,
    numeric_columns: list[str],
    category_columns: list[str],
    numeric: np.ndarray,
    category: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per person: the group index and one int64 term per field (histograms: the bin)."""
    columns: dict[str, np.ndarray] = {}
    for j, name in enumerate(numeric_columns):
        columns[name] = numeric[:, j]
    for j, name in enumerate(category_columns):
        columns[name] = category[:, j]
    people = Table(plan.dataset, columns)  # one row per person, values already validated
    n = len(numeric)
    group = group_index(plan, people) if plan.query.group_by else np.zeros(n, dtype=np.int64)
    if plan.query.aggregate == Aggregate.histogram:
        return group, bin_index(plan, people)[:, None].astype(np.int64)
    fixed: dict[str, np.ndarray] = {}
    for b in plan.bounds:  # exactly the ordinary encoding: rint(clip(v) * scale)
        x = np.clip(columns[b.column], b.lo, b.hi) * float(b.scale)
        fixed[b.column] = np.rint(x).astype(np.int64)
    terms = np.zeros((len(group), len(plan.fields)), dtype=np.int64)
    for j, f in enumerate(plan.fields):
        if f.kind == "count":
            terms[:, j] = 1
        elif f.kind == "sum":
            terms[:, j] = fixed[str(f.column)]
        elif f.kind == "sum_sq":
            x = fixed[str(f.column)]
            terms[:, j] = x * x
    return group, terms
