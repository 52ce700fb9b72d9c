"""A data holder's local policy applied to a linked query (issue 16; docs/LINKAGE.md,
"Node policy on linked queries").

An ordinary query reads one dataset, so :meth:`pets.client.node.Node.decide`
checks the node's ``[policy]`` against it. A linked query names several
datasets (its *sides*, :class:`pets.query.linked.LinkagePlan`); each holder
answers for the side it holds and reads nothing else, so the policy applies
to that side only:

* **which side**: the first side of the plan whose dataset the node holds
  and ``policy.datasets`` allows (:func:`choose_side`). A node that holds
  none of the sides is not addressed at all (:func:`addressed`): it neither
  answers nor records a refusal;
* **columns** (``policy.columns``): the columns of that side's own filters,
  and on the value side (the query's ``from`` dataset) the aggregated column
  and the group-by columns (:func:`touched_columns`). Another side's columns
  are another holder's data and are not checked here. The identifier column
  is read by every linked query; a node consents to that by listing
  ``"linkage"`` in ``policy.protocols``;
* **min_group_rows** (:func:`small_cells`), on the side's people after its
  filters and one row per person, before anything is sent: on the value side
  every released cell (group; histogram: group x bin) with 1 to
  ``min_group_rows - 1`` people, and on every side the filter result. This
  bounds what this holder's own people can make a cell of; the servers'
  ``min_intersection`` bounds the matched set as a whole, and neither bounds a
  cell of the *matched* set (docs/LINKAGE.md, "What leaks").
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from pets.client.config import NodePolicy
from pets.query import Query, QueryPlan
from pets.query.linked import LinkedSide

if TYPE_CHECKING:
    from pets.linkage.persons import PersonRecords

__all__ = ["addressed", "choose_side", "held_persons", "small_cells", "touched_columns"]


def addressed(query: Query, held: Iterable[str]) -> bool:
    """Whether ``query`` reads any dataset this node holds (its ``from`` or a linked one)."""
    names = set(held)
    return query.dataset in names or any(d in names for d in query.linked_to)


def touched_columns(plan: QueryPlan, side: LinkedSide) -> set[str]:
    """The columns of ``side``'s dataset that a holder of it reads for ``plan``."""
    touched = {f.column for f in side.where}
    if side.carries_values:
        query = plan.query
        prefix = f"{side.name}."
        named = ([query.column] if query.column else []) + [*query.columns, *query.group_by]
        touched |= {c[len(prefix) :] if c.startswith(prefix) else c for c in named}
    return touched


def choose_side(plan: QueryPlan, held: Iterable[str], policy: NodePolicy) -> tuple[int | None, str]:
    """The index of the side this node answers for, or ``None`` and the refusal."""
    assert plan.linkage is not None
    names = set(held)
    sides = [(i, s) for i, s in enumerate(plan.linkage.sides) if s.name in names]
    allowed = [(i, s) for i, s in sides if policy.datasets is None or s.name in policy.datasets]
    if not allowed:
        mine = ", ".join(s.name for _, s in sides)
        return None, f"dataset {mine} is not allowed by local policy"
    index, side = allowed[0]
    columns = policy.columns.get(side.name)
    if columns is not None:
        denied = sorted(touched_columns(plan, side) - set(columns))
        if denied:
            return None, f"columns {denied} of {side.name} are not allowed by local policy"
    return index, ""


def small_cells(persons: PersonRecords, min_rows: int) -> int:
    """How many released cells of this holder's people (or its filter result) have
    1 to ``min_rows - 1`` people (:meth:`pets.query.Evaluation.small_cells`, per person)."""
    if min_rows <= 1:
        return 0
    small = 0
    if persons.side.carries_values:
        cells = np.asarray(persons.cells())
        small = int(np.count_nonzero((cells > 0) & (cells < min_rows)))
    if small == 0 and 0 < len(persons) < min_rows:
        small = 1
    return small


async def held_persons(plan: QueryPlan, side: int, tables: Mapping[str, Any]) -> PersonRecords:
    """This holder's :class:`pets.linkage.persons.PersonRecords` for ``side`` of ``plan``
    (its rows and identifiers read, the side's filters applied, one row per person)."""
    from pets.client.linkage import read_ids
    from pets.linkage.persons import evaluate_persons
    from pets.sources import read_table

    assert plan.linkage is not None
    chosen = plan.linkage.sides[side]
    source = tables[chosen.name]
    table = await asyncio.to_thread(read_table, source)
    ids = await asyncio.to_thread(read_ids, source, chosen.linkage.id_column)
    return await asyncio.to_thread(evaluate_persons, plan, chosen.name, table, ids)
