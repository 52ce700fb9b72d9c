"""Property tests: evaluation against a pure-Python reference, and the secure sum
of several holders decoded against the plaintext answer."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pets.errors import OverflowDetectedError
from pets.query import (
    Aggregate,
    Column,
    Dataset,
    Filter,
    Query,
    QueryPlan,
    Table,
    compile,
    decode,
    evaluate,
    group_row_counts,
    plaintext,
)

DOMAINS = {"c": ("x", "y", "z"), "d": ("p", "q")}
DATASET = Dataset(
    "t",
    (
        Column("a", "int", 0, 50),
        Column("b", "float", -10, 10, 100),
        Column("c", "category", domain=DOMAINS["c"]),
        Column("d", "category", domain=DOMAINS["d"]),
        Column("e", "float", scale=10),
    ),
    30,
)
NUMERIC = ("a", "b", "e")
_number = {
    "a": st.integers(-5, 60),
    "b": st.floats(-20, 20, allow_nan=False),
    "e": st.floats(-100, 100, allow_nan=False),
}
_row = st.fixed_dictionaries(
    {
        "a": _number["a"],
        "b": _number["b"],
        "c": st.sampled_from(DOMAINS["c"]),
        "d": st.sampled_from(DOMAINS["d"]),
        "e": _number["e"],
    }
)
_rows = st.lists(_row, max_size=DATASET.max_rows)


@st.composite
def _filter(draw: st.DrawFn) -> Filter:
    column = draw(st.sampled_from(["a", "b", "c", "d", "e"]))
    if column in DOMAINS:
        op = draw(st.sampled_from(["=", "!=", "in"]))
        values = st.sampled_from(DOMAINS[column])
    else:
        op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "in"]))
        values = _number[column]
    if op == "in":
        return Filter(column, op, tuple(draw(st.lists(values, min_size=1, max_size=3))))
    return Filter(column, op, draw(values))


@st.composite
def _query(draw: st.DrawFn) -> Query:
    agg = draw(st.sampled_from(list(Aggregate)))
    column, columns, bins, clip = None, (), None, None
    clip_strategy = st.tuples(st.floats(-50, 0), st.floats(0, 50))
    if agg in (Aggregate.sum, Aggregate.mean, Aggregate.variance):
        column = draw(st.sampled_from(NUMERIC))
        if column == "e" or draw(st.booleans()):
            clip = draw(clip_strategy)
    elif agg == Aggregate.histogram:
        column = draw(st.sampled_from(["a", "b", "c", "e"]))
        if column != "c":
            edges = draw(st.lists(st.floats(-20, 60), min_size=2, max_size=5, unique=True))
            bins = tuple(sorted(edges))
    elif agg == Aggregate.vector_sum:
        columns = tuple(draw(st.lists(st.sampled_from(NUMERIC), min_size=1, unique=True)))
        if "e" in columns or draw(st.booleans()):
            clip = draw(clip_strategy)
    group_by = draw(st.permutations(["c", "d"]))[: draw(st.integers(0, 2))]
    return Query(
        "t",
        agg,
        column=column,
        columns=columns,
        where=tuple(draw(st.lists(_filter(), max_size=3))),
        group_by=tuple(group_by),
        bins=bins,
        clip=clip,
    )


def _table(rows: list[dict[str, Any]]) -> Table:
    return Table.from_columns(DATASET, {c: [r[c] for r in rows] for c in DATASET.column_names})


def _matches(f: Filter, v: Any) -> bool:
    w = f.value
    return {
        "=": lambda: v == w,
        "!=": lambda: v != w,
        "<": lambda: v < w,
        "<=": lambda: v <= w,
        ">": lambda: v > w,
        ">=": lambda: v >= w,
        "in": lambda: v in w,  # type: ignore[operator]
    }[f.op]()


def reference(plan: QueryPlan, rows: list[dict[str, Any]]) -> list[int]:
    """The holder's vector, one row at a time in plain Python."""
    q = plan.query
    group_of = {g: i for i, g in enumerate(plan.groups)}
    out = [0] * plan.length
    for row in rows:
        if not all(_matches(f, row[f.column]) for f in q.where):
            continue
        base = group_of[tuple(row[c] for c in q.group_by)] * plan.width
        if q.aggregate == Aggregate.histogram:
            assert q.column is not None
            v = row[q.column]
            if q.bins is None:
                b = DOMAINS[q.column].index(v)
            else:
                b = max([0] + [i for i, e in enumerate(q.bins[:-1]) if e <= v])
            out[base + b] += 1
            continue
        for j, f in enumerate(plan.fields):
            if f.kind == "count":
                out[base + j] += 1
                continue
            bound = plan.bound(str(f.column))
            x = round(min(max(float(row[str(f.column)]), bound.lo), bound.hi) * bound.scale)
            out[base + j] += x if f.kind == "sum" else x * x
    return out


@settings(max_examples=200, deadline=None)
@given(_query(), _rows)
def test_evaluate_matches_reference(query: Query, rows: list[dict[str, Any]]) -> None:
    plan = compile(query, DATASET)
    vec = evaluate(plan, _table(rows))
    assert vec.dtype == np.int64 and vec.shape == (plan.length,)
    assert vec.tolist() == reference(plan, rows)
    counts = group_row_counts(plan, _table(rows))
    assert list(counts) == list(plan.groups)
    matching = [r for r in rows if all(_matches(f, r[f.column]) for f in query.where)]
    assert sum(counts.values()) == len(matching)


@settings(max_examples=120, deadline=None)
@given(_query(), st.lists(_rows, min_size=1, max_size=4))
def test_secure_sum_decodes_to_plaintext(query: Query, holders: list[list[dict]]) -> None:
    plan = compile(query, DATASET)
    tables = [_table(rows) for rows in holders]
    total = np.zeros(plan.length, dtype=np.uint64)
    for table in tables:
        total += evaluate(plan, table).view(np.uint64)  # wrap-around ring addition
    result = decode(plan, total, len(tables))
    expected = plaintext(plan, tables)
    assert result.close_to(expected), (result.rows, expected.rows)
    assert expected.close_to(result)
    exact = [sum(col) for col in zip(*(reference(plan, rows) for rows in holders), strict=True)]
    assert decode(plan, exact, len(tables)).rows == result.rows


@settings(max_examples=120, deadline=None)
@given(_query(), st.lists(_rows, min_size=1, max_size=3), st.data())
def test_a_wrapped_slot_is_detected(query: Query, holders: list[list[dict]], data: Any) -> None:
    plan = compile(query, DATASET)
    total = np.zeros(plan.length, dtype=np.uint64)
    for rows in holders:
        total += evaluate(plan, _table(rows)).view(np.uint64)
    slot = data.draw(st.integers(0, plan.length - 1))
    shift = np.array([data.draw(st.integers(1, 3)) << 62], dtype=np.uint64)
    total[slot : slot + 1] += shift  # array addition wraps silently
    try:
        decode(plan, total, len(holders))
    except OverflowDetectedError:
        return
    raise AssertionError(f"slot {plan.slot_labels[slot]} wrapped but was decoded")
