"""``Result.to_pandas()``: one row per group, a column per value."""

from __future__ import annotations

import pytest

from pets.query import Column, Dataset, Schema, Table, compile, decode, evaluate, parse_query

pd = pytest.importorskip("pandas")

DS = Dataset(
    "d",
    (Column("g", "category", domain=("a", "b")), Column("x", "float", 0.0, 10.0, 10)),
    100,
)
V = Dataset("v", (), 1, kind="vector", length=3, lo=0.0, hi=5.0)
SCHEMA = Schema((DS, V))
TABLE = Table.from_columns(DS, {"g": ["a", "a", "b"], "x": [1.0, 2.0, 4.0]})


def _result(text: str, table: Table = TABLE):  # type: ignore[no-untyped-def]
    plan = compile(parse_query(text), SCHEMA)
    return decode(plan, evaluate(plan, table), 1)


def test_groups_become_rows_and_fields_columns() -> None:
    frame = _result("mean(x) from d group by g").to_pandas()
    assert list(frame.columns) == ["g", "count", "mean"]
    assert frame["g"].tolist() == ["a", "b"]
    assert frame["count"].tolist() == [2, 1]
    assert frame["mean"].tolist() == pytest.approx([1.5, 4.0])


def test_vector_sums_spread_into_one_column_per_label() -> None:
    frame = _result("vector_sum(x) from d").to_pandas()
    assert list(frame.columns) == ["count", "sum(x)"]
    assert frame.iloc[0].tolist() == pytest.approx([3, 7.0])


def test_histogram_bins_are_columns() -> None:
    frame = _result("histogram(g) from d").to_pandas()
    assert list(frame.columns) == ["a", "b"] and frame.iloc[0].tolist() == [2, 1]


def test_vector_dataset_gives_one_row_per_element() -> None:
    table = Table.from_vector(V, [1.0, 2.0, 3.0])
    frame = _result("vector_sum(*) from v", table).to_pandas()
    assert list(frame.columns) == ["index", "value"]
    assert frame["value"].tolist() == pytest.approx([1.0, 2.0, 3.0])


def test_extra_row_keys_become_extra_columns() -> None:
    result = _result("mean(x) from d group by g")
    for row in result.rows:
        row["mean_lo"], row["mean_hi"] = 0.0, 10.0  # what DP intervals will add
    assert list(result.to_pandas().columns) == ["g", "count", "mean", "mean_lo", "mean_hi"]
