"""Streaming evaluation: any split into batches gives the whole table's exact vector."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pets.query import Column, Dataset, Table, compile, evaluate, parse_query
from pets.query.evaluate import evaluate_batches

WIDE = float(2**50)  # one fixed-point term near 2^50: float sums of > 8 rows would round
DS = Dataset(
    "d",
    (
        Column("g", "category", domain=("a", "b", "c")),
        Column("x", "float", -100.0, 100.0, 100),
        Column("big", "float", -WIDE, WIDE, 1),
        Column("wide", "float", -1e5, 1e5, 1000),  # squares up to 1e16 > 2^53
    ),
    500,
)
QUERIES = (
    "variance(x) from d where x > -50 group by g",
    "sum(big) from d group by g",
    "variance(wide) from d group by g",
    "histogram(x) from d group by g bins [-100, -10, 0, 10, 100]",
    "vector_sum(x, big, wide) from d where g != b",
)

rows = st.lists(
    st.tuples(
        st.sampled_from(("a", "b", "c")),
        st.floats(-150, 150, allow_nan=False),
        st.sampled_from((-WIDE, WIDE, WIDE - 1, 3.0)),
        st.floats(-2e5, 2e5, allow_nan=False),
    ),
    min_size=1,
    max_size=300,
)


def _table(part: list[tuple[str, float, float, float]]) -> Table:
    g, x, big, wide = zip(*part, strict=True) if part else ((), (), (), ())
    return Table.from_columns(
        DS, {"g": list(g), "x": list(x), "big": list(big), "wide": list(wide)}
    )


@settings(max_examples=60, deadline=None)
@given(rows, st.lists(st.integers(1, 300), min_size=1, max_size=6), st.sampled_from(QUERIES))
def test_any_batch_split_gives_the_whole_tables_vector(
    data: list[tuple[str, float, float, float]], cuts: list[int], text: str
) -> None:
    plan = compile(parse_query(text), DS)
    whole = evaluate(plan, _table(data))
    points = sorted({min(c, len(data)) for c in cuts})
    parts = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    streamed = evaluate_batches(plan, [_table(p) for p in parts])
    assert np.array_equal(streamed.vector, whole)
    assert streamed.rows == len(data)


def test_wide_terms_are_summed_exactly() -> None:
    data = [("a", 1.0, WIDE - 1, 1e5)] * 20 + [("a", 1.0, 3.0, -1e5 + 0.001)]
    plan = compile(parse_query("sum(big) from d"), DS)
    got = evaluate(plan, _table(data))
    assert int(got[1]) == 20 * (2**50 - 1) + 3  # float64 sums would have rounded this
    sq = compile(parse_query("variance(wide) from d"), DS)
    got = evaluate(sq, _table(data))
    assert int(got[2]) == 20 * 10**16 + (10**8 - 1) ** 2
