"""The linked part of a query plan: which datasets take part, and each one's filters.

A linked query (issue 16, ``docs/LINKAGE.md``) such as::

    mean(care_cost) from ltc linked to hospitals where hospitals.diagnosis = E
        group by care_level

aggregates the per-person values of its ``from`` dataset (here ``ltc``, the
*value side*) over the people who also appear in every dataset it is linked
to (here ``hospitals``; those sides contribute identifiers only). Every side
filters its own rows. :func:`compile_linkage` checks the linkage against the
schema and splits the filters by side; :func:`pets.query.plan.compile` uses
it and keeps the ordinary vector layout of the value side, so one person's
vector has exactly the encoding one row has in an ordinary query and the sum
over the matched people decodes with :func:`pets.query.decode`.

What is refused, with a message that says why:

* a dataset without a linkage declaration, a vector dataset, or datasets of
  different linkage domains (their identifiers hash differently);
* a column of another side in the aggregate (the values come from the
  ``from`` side only: swap the sides);
* grouping by another side's column: the group of a person would come from
  one holder and the value from another, and adding one's values into the
  other's groups needs secure multiplication, which pets does not do;
* ``vector_sum`` (linked queries support count, sum, mean, variance and
  histogram).
"""

from __future__ import annotations

from dataclasses import dataclass

from pets.errors import QueryError
from pets.query.model import Aggregate, Filter, Query
from pets.query.schema import Dataset, Linkage, Schema

LINKED_AGGREGATES = (
    Aggregate.count,
    Aggregate.sum,
    Aggregate.mean,
    Aggregate.variance,
    Aggregate.histogram,
)


@dataclass(frozen=True)
class LinkedSide:
    """One dataset of a linked query and the filters its holders apply.

    ``where`` holds this side's filters with unqualified column names.
    ``carries_values`` is True for the ``from`` side only: its holders send
    one vector per person, the others identifiers only.
    """

    dataset: Dataset
    where: tuple[Filter, ...]
    carries_values: bool

    @property
    def name(self) -> str:
        """The dataset's name."""
        return self.dataset.name

    @property
    def linkage(self) -> Linkage:
        """The dataset's linkage declaration (always present for a side)."""
        assert self.dataset.linkage is not None  # compile_linkage checked it
        return self.dataset.linkage

    @property
    def max_rows(self) -> int:
        """The most rows (so persons) one holder of this side may send."""
        return self.dataset.max_rows


@dataclass(frozen=True)
class LinkagePlan:
    """The sides of a linked query: ``sides[0]`` is the value side, then ``linked_to``."""

    domain: str
    sides: tuple[LinkedSide, ...]
    min_intersection: int | None

    @property
    def value_side(self) -> LinkedSide:
        """The ``from`` side, whose per-person values are aggregated."""
        return self.sides[0]

    @property
    def datasets(self) -> tuple[str, ...]:
        """The sides' dataset names, value side first."""
        return tuple(s.name for s in self.sides)

    def side(self, dataset: str) -> LinkedSide:
        """The side of ``dataset``; :class:`QueryError` if it takes no part."""
        for s in self.sides:
            if s.name == dataset:
                return s
        raise QueryError(
            f"dataset {dataset!r} is not a side of this linked query "
            f"(sides: {', '.join(self.datasets)})"
        )


def compile_linkage(query: Query, schema: Schema) -> LinkagePlan:
    """Check a linked ``query`` against ``schema`` and split its filters by side.

    Column checks of each side's filters (names, types, domains) are left to
    the caller, :func:`pets.query.plan.compile`, which has the filter rules.
    """
    if not query.is_linked:
        raise QueryError("not a linked query (it has no 'linked to')")
    if query.aggregate not in LINKED_AGGREGATES:
        supported = ", ".join(a.value for a in LINKED_AGGREGATES)
        raise QueryError(f"linked queries support {supported}; not {query.aggregate.value}")
    home = _linkable(schema.dataset(query.dataset))
    others = [_linkable(schema.dataset(name)) for name in query.linked_to]
    domain = home.linkage.domain if home.linkage is not None else ""
    for d in others:
        assert d.linkage is not None
        if d.linkage.domain != domain:
            raise QueryError(
                f"dataset {d.name!r} links in domain {d.linkage.domain!r} and "
                f"{home.name!r} in {domain!r}: only datasets of one linkage domain "
                "can be linked"
            )
    names = [home.name, *query.linked_to]
    for column in ([query.column] if query.column is not None else []) + list(query.columns):
        owner = _owner(column, names)
        if owner is not None:
            raise QueryError(
                f"a linked query aggregates values of its 'from' dataset ({home.name}); "
                f"{column!r} is on {owner}: write '... from {owner} linked to {home.name}'"
            )
    for column in query.group_by:
        owner = _owner(column, names)
        if owner is not None:
            raise QueryError(
                f"cannot group by {column!r}, a column of another side ({owner}): grouping "
                f"the values of {home.name} by columns of {owner} needs secure "
                f"multiplication, which pets does not do; group by columns of {home.name}, "
                f"or ask '... from {owner} linked to {home.name}' to aggregate the values "
                f"of {owner}"
            )
    where: dict[str, list[Filter]] = {name: [] for name in names}
    for f in query.where:
        owner = _owner(f.column, names)
        if owner is None:
            where[home.name].append(f)
        else:
            bare = f.column[len(owner) + 1 :]
            where[owner].append(Filter(bare, f.op, f.value))
    sides = (
        LinkedSide(home, tuple(where[home.name]), True),
        *(LinkedSide(d, tuple(where[d.name]), False) for d in others),
    )
    return LinkagePlan(domain, sides, query.min_intersection)


def _linkable(dataset: Dataset) -> Dataset:
    if dataset.kind != "table":
        raise QueryError(f"dataset {dataset.name!r} is a vector dataset and cannot be linked")
    if dataset.linkage is None:
        raise QueryError(
            f"dataset {dataset.name!r} declares no linkage (no [datasets.{dataset.name}.linkage] "
            "in the schema) and cannot be linked"
        )
    return dataset


def _owner(column: str, sides: list[str]) -> str | None:
    """The other side a qualified column name belongs to, or None for the home side's."""
    if "." not in column:
        return None
    owner = column.split(".", 1)[0]
    if not owner:
        raise QueryError(f"column {column!r} names no dataset before the '.'")
    if owner not in sides:
        raise QueryError(
            f"column {column!r} names {owner!r}, which is not a side of this query "
            f"(sides: {', '.join(sides)}); link it with 'linked to {owner}'"
        )
    return owner
