"""Compiling a query against a schema into a fixed integer vector layout.

:func:`compile` validates a :class:`~pets.query.model.Query` against its
:class:`~pets.query.schema.Dataset` and returns a :class:`QueryPlan`: the
groups (cartesian product of the group-by domains, in domain order, first
column slowest), the fields each group has, and for every field the bounds of
one row's term and of one holder's slot. The layout is group-major::

    slot(group g, field f) = g * width + f

with these fields per group:

=============  ==========================================
aggregate      fields per group
=============  ==========================================
count          ``count``
sum, mean      ``count, sum(c)``
variance       ``count, sum(c), sum_sq(c)``
histogram      one count per bin
vector_sum     ``count, sum(c1), ..., sum(ck)`` (table);
               the ``length`` elements (vector dataset)
=============  ==========================================

Sums are of fixed-point values ``round(clip(v) * scale)``; ``sum_sq`` is in
``scale^2`` units. The count slot lets the decoder bound each sum by the rows
that actually entered it (tight overflow checks).

A linked query (``... from ltc linked to hospitals ...``, see
:mod:`pets.query.linked`) compiles to the same layout over its ``from``
dataset, with :attr:`QueryPlan.linkage` saying which datasets take part and
each one's filters; each *person* of the value side then fills the vector as
one row would (:mod:`pets.linkage.persons`). Its fingerprint also covers
every side's dataset declaration.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Literal

from pets.encoding import INT64_MAX, INT64_MIN, to_fixed
from pets.errors import InvalidInputError, QueryError
from pets.query._text import format_number
from pets.query.linked import LinkagePlan, compile_linkage
from pets.query.model import Aggregate, Filter, Query
from pets.query.schema import Column, Dataset, Schema

# Upper bound on a query's vector length (slots of 8 bytes: 512 MiB).
MAX_SLOTS = 1 << 26
FieldKind = Literal["count", "sum", "sum_sq", "bin", "element"]
_FINGERPRINT_DOMAIN = b"pets/query-plan/v1\x00"
# Names of result fields; a group-by column may not take one of them.
RESERVED_FIELDS = frozenset({"count", "sum", "mean", "variance", "vector"})


@dataclass(frozen=True)
class NumericBounds:
    """Effective clipping bounds of an aggregated numeric column.

    ``lo``/``hi`` are the schema bounds narrowed by the query's clip;
    ``lo_fixed``/``hi_fixed`` are their fixed-point images, which bound every
    scaled value (rounding is monotonic).
    """

    column: str
    lo: float
    hi: float
    scale: int
    lo_fixed: int
    hi_fixed: int

    @property
    def square_bounds(self) -> tuple[int, int]:
        """Exact bounds of ``x * x`` for a fixed-point ``x`` in ``[lo_fixed, hi_fixed]``."""
        lo, hi = self.lo_fixed, self.hi_fixed
        top = max(lo * lo, hi * hi)
        bottom = 0 if lo <= 0 <= hi else min(lo * lo, hi * hi)
        return bottom, top


@dataclass(frozen=True)
class Field:
    """One slot of each group: what it sums and its bounds.

    ``term_lo``/``term_hi`` bound one row's term (one holder's whole vector
    element for ``element``); ``holder_lo``/``holder_hi`` bound the slot of one
    holder with at most ``max_rows`` rows.
    """

    label: str
    kind: FieldKind
    column: str | None
    term_lo: int
    term_hi: int
    holder_lo: int
    holder_hi: int


@dataclass(frozen=True)
class QueryPlan:
    """A validated query with its vector layout (see the module docstring)."""

    query: Query
    dataset: Dataset
    groups: tuple[tuple[str, ...], ...]
    fields: tuple[Field, ...]
    bounds: tuple[NumericBounds, ...]
    result_fields: tuple[str, ...]
    bin_labels: tuple[str, ...] = ()
    linkage: LinkagePlan | None = None  # the sides of a linked query (pets.query.linked)

    @property
    def width(self) -> int:
        """Slots per group (``len(fields)``, or the vector length)."""
        if self.dataset.kind == "vector":
            return int(self.dataset.length or 0)
        return len(self.fields)

    @property
    def length(self) -> int:
        """Length of every holder's vector."""
        return len(self.groups) * self.width

    @property
    def max_rows(self) -> int:
        """The dataset's ``max_rows``."""
        return self.dataset.max_rows

    @property
    def is_vector(self) -> bool:
        """True for a query over a vector dataset."""
        return self.dataset.kind == "vector"

    def bound(self, column: str) -> NumericBounds:
        """Effective bounds of an aggregated numeric column (``"*"`` for vectors)."""
        for b in self.bounds:
            if b.column == column:
                return b
        raise QueryError(f"column {column!r} is not aggregated by this query")

    def group_label(self, group: tuple[str, ...]) -> str:
        """``"prefecture=Tokyo,sex=F"``; empty without group-by."""
        return ",".join(f"{c}={v}" for c, v in zip(self.query.group_by, group, strict=True))

    @property
    def slot_labels(self) -> tuple[str, ...]:
        """A label per slot, e.g. ``"prefecture=Tokyo:sum(cost)"`` or ``"[3]"``."""
        if self.is_vector:
            return tuple(f"[{i}]" for i in range(self.width))
        out = []
        for group in self.groups:
            prefix = self.group_label(group)
            for f in self.fields:
                out.append(f"{prefix}:{f.label}" if prefix else f.label)
        return tuple(out)

    def slot_bounds(self) -> tuple[tuple[int, int], ...]:
        """Per slot, the exact range one holder's value can take."""
        per_group = [(f.holder_lo, f.holder_hi) for f in self.fields]
        return tuple(per_group * (self.length // len(per_group)))

    def holder_bounds(self) -> tuple[int, int]:
        """The range ANY slot of ONE holder's int64 vector can take (exact, safe)."""
        return min(f.holder_lo for f in self.fields), max(f.holder_hi for f in self.fields)

    def max_holders(self) -> int:
        """The most holders whose summed vector :func:`decode` can still prove exact.

        Decoding bounds each slot by ``holders * max_rows`` terms (or ``count``
        rows for sums); this is the largest holder count for which every such
        range fits in signed 64 bits even if every holder sends ``max_rows``
        rows. Servers can compare it with the expected number of holders
        before collecting anything.
        """
        worst = 1
        for f in self.fields:
            per_holder = 1 if f.kind == "element" else self.max_rows
            worst = max(worst, per_holder * max(abs(f.term_lo), abs(f.term_hi)))
        return INT64_MAX // worst

    def fingerprint(self) -> bytes:
        """SHA-256 over the canonical query JSON and the dataset's schema.

        A linked plan adds every other side's dataset (with its linkage
        declaration), in side order; the query JSON already holds the sides,
        their filters and ``min_intersection``.
        """
        digest = hashlib.sha256(_FINGERPRINT_DOMAIN)
        digest.update(self.query.to_json().encode())
        digest.update(b"\x00")
        digest.update(_dataset_json(self.dataset).encode())
        if self.linkage is not None:
            for side in self.linkage.sides[1:]:
                digest.update(b"\x00")
                digest.update(_dataset_json(side.dataset).encode())
        return digest.digest()


def _dataset_json(dataset: Dataset) -> str:
    return json.dumps(dataset.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)


def compile(query: Query, schema: Schema | Dataset) -> QueryPlan:
    """Validate ``query`` against ``schema`` and fix its vector layout.

    Raises :class:`QueryError` naming the problem: unknown dataset or column,
    an aggregate on the wrong kind of column, missing bounds, group-by on a
    non-category column, bad bins or clip, a filter value of the wrong type or
    outside the domain, or bounds so wide that one holder's sums could leave
    the signed 64-bit range.
    """
    if not isinstance(query, Query):
        raise QueryError(f"expected a Query, got {type(query).__name__}")
    if query.is_linked:
        if isinstance(schema, Dataset):
            raise QueryError(
                "a linked query compiles against the whole schema (all its sides), not one dataset"
            )
        return _compile_linked(query, schema)
    dataset = schema if isinstance(schema, Dataset) else schema.dataset(query.dataset)
    if dataset.name != query.dataset:
        raise QueryError(f"query is on dataset {query.dataset!r}, not {dataset.name!r}")
    if dataset.kind == "vector":
        plan = _compile_vector(query, dataset)
    else:
        plan = _compile_table(query, dataset)
    if plan.length > MAX_SLOTS:
        raise QueryError(f"query needs {plan.length} slots, more than the limit {MAX_SLOTS}")
    for f in plan.fields:
        if f.holder_lo < INT64_MIN or f.holder_hi > INT64_MAX:
            raise QueryError(
                f"{f.label} of one holder can reach [{f.holder_lo}, {f.holder_hi}], beyond "
                f"64 bits (max_rows={dataset.max_rows}); narrow the bounds with clip, "
                "lower the scale, or lower max_rows"
            )
    return plan


def _compile_linked(query: Query, schema: Schema) -> QueryPlan:
    """The value side's ordinary layout (its own filters only) plus the linkage."""
    linkage = compile_linkage(query, schema)
    for side in linkage.sides[1:]:
        for f in side.where:
            try:
                _check_filter(f, side.dataset)
            except QueryError as exc:
                raise QueryError(f"{side.name}: {exc}") from None
    local = dataclasses.replace(
        query, where=linkage.value_side.where, linked_to=(), min_intersection=None
    )
    plan = compile(local, linkage.value_side.dataset)
    return dataclasses.replace(plan, query=query, linkage=linkage)


def _compile_vector(query: Query, dataset: Dataset) -> QueryPlan:
    what = f"dataset {dataset.name!r} is a vector dataset"
    if query.aggregate != Aggregate.vector_sum:
        raise QueryError(f"{what}; its only aggregate is vector_sum, not {query.aggregate.value}")
    if query.column is not None or query.columns:
        raise QueryError(f"{what}; vector_sum on it takes no column")
    if query.where or query.group_by:
        raise QueryError(f"{what}; it has no columns to filter or group by")
    if query.bins is not None:
        raise QueryError(f"{what}; bins apply to histograms only")
    assert dataset.scale is not None
    b = _effective_bounds("*", dataset.lo, dataset.hi, dataset.scale, query.clip)
    element = Field("value", "element", None, b.lo_fixed, b.hi_fixed, b.lo_fixed, b.hi_fixed)
    return QueryPlan(query, dataset, ((),), (element,), (b,), ("vector",))


def _compile_table(query: Query, dataset: Dataset) -> QueryPlan:
    agg = query.aggregate
    for f in query.where:
        _check_filter(f, dataset)
    groups = _groups(query, dataset)
    if query.bins is not None and agg != Aggregate.histogram:
        raise QueryError(f"bins apply to histograms only, not to {agg.value}")
    if agg != Aggregate.vector_sum and query.columns:
        raise QueryError(f"{agg.value} takes one column, not a list of columns")
    if agg == Aggregate.vector_sum and query.column is not None:
        raise QueryError("vector_sum on a table takes columns=[...], not column")
    if agg in (Aggregate.count, Aggregate.histogram) and query.clip is not None:
        raise QueryError(f"clip does not apply to {agg.value}")
    m = dataset.max_rows
    count = Field("count", "count", None, 0, 1, 0, m)
    bin_labels: tuple[str, ...] = ()
    bounds: tuple[NumericBounds, ...] = ()
    if agg == Aggregate.count:
        if query.column is not None:
            raise QueryError(f"count takes no column (got {query.column!r})")
        fields: tuple[Field, ...] = (count,)
        result_fields: tuple[str, ...] = ("count",)
    elif agg in (Aggregate.sum, Aggregate.mean, Aggregate.variance):
        b = _numeric_bounds(query, dataset, query.column)
        bounds = (b,)
        fields = (count, _sum_field(b, m))
        if agg == Aggregate.variance:
            sq_lo, sq_hi = b.square_bounds
            fields += (
                Field(f"sum_sq({b.column})", "sum_sq", b.column, sq_lo, sq_hi, 0, m * sq_hi),
            )
        result_fields = {
            Aggregate.sum: ("count", "sum"),
            Aggregate.mean: ("count", "mean"),
            Aggregate.variance: ("count", "mean", "variance"),
        }[agg]
    elif agg == Aggregate.histogram:
        bin_labels = _bin_labels(query, dataset)
        name = query.column
        fields = tuple(
            Field(
                f"{name}={label}" if query.bins is None else f"{name} in {label}",
                "bin",
                name,
                0,
                1,
                0,
                m,
            )
            for label in bin_labels
        )
        result_fields = bin_labels
    else:
        if not query.columns:
            raise QueryError("vector_sum on a table needs columns=[...] (numeric columns)")
        if len(set(query.columns)) != len(query.columns):
            raise QueryError(f"vector_sum columns repeat a column: {list(query.columns)}")
        bounds = tuple(_numeric_bounds(query, dataset, c) for c in query.columns)
        fields = (count, *(_sum_field(b, m) for b in bounds))
        result_fields = ("count", "vector")
    clash = set(query.group_by) & (RESERVED_FIELDS | set(result_fields))
    if clash:
        raise QueryError(f"group-by column {sorted(clash)[0]!r} clashes with a result field name")
    return QueryPlan(query, dataset, groups, fields, bounds, result_fields, bin_labels)


def _sum_field(b: NumericBounds, m: int) -> Field:
    return Field(
        f"sum({b.column})",
        "sum",
        b.column,
        b.lo_fixed,
        b.hi_fixed,
        min(0, m * b.lo_fixed),
        max(0, m * b.hi_fixed),
    )


def _numeric_bounds(query: Query, dataset: Dataset, name: str | None) -> NumericBounds:
    agg = query.aggregate.value
    if name is None:
        raise QueryError(f"{agg} needs a numeric column")
    column = dataset.column(name)
    if not column.is_numeric:
        raise QueryError(f"{agg} needs a numeric column; {name!r} is a category column")
    return _effective_bounds(name, column.lo, column.hi, column.fixed_scale, query.clip)


def _effective_bounds(
    name: str,
    lo: float | None,
    hi: float | None,
    scale: int,
    clip: tuple[float, float] | None,
) -> NumericBounds:
    what = "the vector" if name == "*" else f"column {name!r}"
    if clip is not None:
        lo = clip[0] if lo is None else max(lo, clip[0])
        hi = clip[1] if hi is None else min(hi, clip[1])
        if lo > hi:
            raise QueryError(f"clip {list(clip)} does not overlap the bounds of {what}")
    if lo is None or hi is None:
        raise QueryError(
            f"{what} has no bounds in the schema; give the query a clip [lo, hi] for it"
        )
    try:
        lo_fixed, hi_fixed = (int(v) for v in to_fixed([lo, hi], scale))
    except InvalidInputError as exc:
        raise QueryError(f"bounds of {what}: {exc}") from None
    return NumericBounds(name, float(lo), float(hi), scale, lo_fixed, hi_fixed)


def _check_filter(f: Filter, dataset: Dataset) -> None:
    column = dataset.column(f.column)
    values = f.value if isinstance(f.value, tuple) else (f.value,)
    what = f"filter on column {f.column!r}"
    if column.type == "category":
        if f.op not in ("=", "!=", "in"):
            raise QueryError(f"{what}: operator {f.op!r} does not apply to a category column")
        for v in values:
            if not isinstance(v, str) or v not in column.domain:
                domain = ", ".join(column.domain)
                raise QueryError(f"{what}: value {v!r} is not in its domain ({domain})")
    else:
        for v in values:
            if isinstance(v, str):
                raise QueryError(f"{what}: value {v!r} is not a number")


def _groups(query: Query, dataset: Dataset) -> tuple[tuple[str, ...], ...]:
    if len(set(query.group_by)) != len(query.group_by):
        raise QueryError(f"group by repeats a column: {list(query.group_by)}")
    domains = []
    for name in query.group_by:
        column: Column = dataset.column(name)
        if column.type != "category":
            raise QueryError(f"group by needs category columns; {name!r} is {column.type}")
        domains.append(column.domain)
    size = 1
    for d in domains:
        size *= len(d)
    if size > MAX_SLOTS:
        raise QueryError(f"group by {list(query.group_by)} makes {size} groups; too many")
    return tuple(itertools.product(*domains))


def _bin_labels(query: Query, dataset: Dataset) -> tuple[str, ...]:
    if query.column is None:
        raise QueryError("histogram needs a column")
    column = dataset.column(query.column)
    if column.type == "category":
        if query.bins is not None:
            raise QueryError(
                f"histogram of category column {column.name!r} takes no bins "
                "(one bin per domain value)"
            )
        return column.domain
    edges = query.bins
    if edges is None or len(edges) < 2:
        raise QueryError(
            f"histogram of numeric column {column.name!r} needs bins: at least two edges"
        )
    for a, b in itertools.pairwise(edges):
        if not a < b:
            raise QueryError(
                f"histogram bins of column {column.name!r} must be strictly increasing: "
                f"{format_number(a)} then {format_number(b)}"
            )
    labels = []
    last = len(edges) - 2
    for i, (a, b) in enumerate(itertools.pairwise(edges)):
        close = "]" if i == last else ")"
        labels.append(f"[{format_number(a)}, {format_number(b)}{close}")
    return tuple(labels)
