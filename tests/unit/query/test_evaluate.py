"""Tables, CSV parsing and evaluation details."""

from __future__ import annotations

import time

import numpy as np
import pytest

from pets.errors import InvalidInputError
from pets.query import (
    Aggregate,
    Column,
    Dataset,
    Query,
    Table,
    compile,
    evaluate,
    group_row_counts,
    parse_csv,
    parse_query,
)

DS = Dataset(
    "visits",
    (
        Column("age", "int", 0, 100),
        Column("sex", "category", domain=("F", "M")),
        Column("cost", "float", 0, 1000, 10),
    ),
    4,
)
VEC = Dataset("series", (), 1, kind="vector", length=3, lo=0, hi=1, scale=100)


def test_parse_csv_any_column_order_whitespace_and_quotes() -> None:
    table = parse_csv(' cost , age,sex\n"1.5", 3 , F\n2.25,4,"M"\n\n', DS)
    assert table.n_rows == len(table) == 2
    assert table.values("age").tolist() == [3.0, 4.0]
    assert table.values("cost").dtype == np.float64
    assert table.values("sex").tolist() == [0, 1]
    assert table.labels("sex").tolist() == ["F", "M"]


def test_parse_csv_rejects_comma_decimal() -> None:
    with pytest.raises(InvalidInputError, match="CSV row 1, column 'cost': value is not a number"):
        parse_csv('cost,age,sex\n"1,5",3,F\n', DS)


def test_header_only_gives_zero_rows() -> None:
    table = parse_csv("age,sex,cost\n", DS)
    assert table.n_rows == 0
    plan = compile(parse_query("variance(cost) from visits group by sex"), DS)
    assert evaluate(plan, table).tolist() == [0] * 6


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("age,sex,cost,age\n1,F,2,3\n", "has no column 'age'|repeats a column"),
        ("age,sex\n1,F\n", "column 'cost' of dataset 'visits' is missing"),
        ("age,sex,cost\n1,F,2,9\n", "CSV row 1 has 4 fields"),
        ("age,sex,cost\n1,F,2\nx,F,2\n", "CSV row 2, column 'age': value is not an integer"),
        ("age,sex,cost\n1,F,2\n1,F, \n", "CSV row 2, column 'cost': value is empty"),
        ("age,sex,cost\n1,F,inf\n", "row 1, column 'cost': value is missing or not finite"),
        ("age,sex,cost\n1,f,2\n", "row 1, column 'sex': value is not in the domain \\(F, M\\)"),
        ("\n\n", "header row is required"),
    ],
)
def test_parse_csv_errors_name_row_and_column(text: str, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        parse_csv(text, DS)


def test_errors_do_not_echo_values() -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_csv("age,sex,cost\n1,Secret-Name,2\n", DS)
    assert "Secret-Name" not in str(info.value)


def test_from_columns() -> None:
    table = Table.from_columns(DS, {"age": [1, 2], "sex": np.array(["M", "F"]), "cost": (0.5, 7)})
    assert table.values("sex").tolist() == [1, 0]
    codes = Table.from_columns(DS, {"age": [1], "sex": np.array([1]), "cost": [0]})
    assert codes.values("sex").tolist() == [1]
    with pytest.raises(ValueError, match="read-only"):
        table.values("age")[0] = 5


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"age": [1], "sex": ["F"]}, "column 'cost' of dataset 'visits' is missing"),
        ({"age": [1], "sex": ["F"], "cost": [1], "x": [1]}, "has no column 'x'"),
        ({"age": [1, 2], "sex": ["F"], "cost": [1]}, "column 'sex' has 1 values, the others 2"),
        ({"age": [1.5], "sex": ["F"], "cost": [1]}, "row 1, column 'age': value is not an integer"),
        ({"age": [1], "sex": ["F"], "cost": [np.nan]}, "row 1, column 'cost': value is missing"),
        (
            {"age": [1], "sex": ["X"], "cost": [1]},
            "row 1, column 'sex': value is not in the domain",
        ),
        ({"age": [1], "sex": [2], "cost": [1]}, "row 1, column 'sex'"),
        ({"age": [1], "sex": [True], "cost": [1]}, "column 'sex' takes strings or codes"),
        ({"age": ["1"], "sex": ["F"], "cost": [1]}, "column 'age' is numeric"),
        ({"age": 1, "sex": ["F"], "cost": [1]}, "column 'age' must be a 1-D array"),
        ({"age": [[1]], "sex": ["F"], "cost": [1]}, "column 'age' must be 1-D"),
    ],
)
def test_from_columns_errors(data: dict, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        Table.from_columns(DS, data)


def test_vector_tables() -> None:
    table = Table.from_vector(VEC, np.array([0.5, 2, -1], dtype=np.float32))
    assert table.n_rows == 1 and table.vector is not None
    plan = compile(parse_query("vector_sum(*) from series"), VEC)
    assert evaluate(plan, table).tolist() == [50, 100, 0]
    assert group_row_counts(plan, table) == {(): 1}
    for bad, match in [
        (np.zeros(4), "shape \\(3,\\)"),
        (np.zeros((3, 1)), "shape \\(3,\\)"),
        (np.array([0, np.inf, 0]), "element 1 is missing or not finite"),
        (np.array(["a", "b", "c"]), "must be numeric"),
    ]:
        with pytest.raises(InvalidInputError, match=match):
            Table.from_vector(VEC, bad)
    with pytest.raises(InvalidInputError, match="load it with Table"):
        parse_csv("x\n1\n", VEC)
    with pytest.raises(InvalidInputError, match="a table; use"):
        Table.from_vector(DS, [1])
    with pytest.raises(InvalidInputError, match="vector dataset; use Table"):
        Table.from_columns(VEC, {})


def test_holder_with_more_rows_than_declared_refuses() -> None:
    table = parse_csv("age,sex,cost\n" + "1,F,1\n" * 5, DS)
    plan = compile(Query("visits", Aggregate.count), DS)
    with pytest.raises(InvalidInputError, match=r"5 rows .* max_rows=4; refusing"):
        evaluate(plan, table)


def test_table_of_another_dataset_is_rejected() -> None:
    other = Dataset("visits", DS.columns, 10)
    table = parse_csv("age,sex,cost\n1,F,1\n", other)
    plan = compile(Query("visits", Aggregate.count), DS)
    with pytest.raises(InvalidInputError, match="declared differently"):
        evaluate(plan, table)
    plan = compile(parse_query("vector_sum(*) from series"), VEC)
    with pytest.raises(InvalidInputError, match="the query of 'series'"):
        evaluate(plan, table)


def test_group_row_counts_include_empty_groups() -> None:
    table = parse_csv("age,sex,cost\n70,F,1\n80,F,2\n20,M,3\n", DS)
    plan = compile(parse_query("mean(cost) from visits where age > 30 group by sex"), DS)
    assert group_row_counts(plan, table) == {("F",): 2, ("M",): 0}


def test_evaluation_is_vectorised() -> None:
    n = 200_000
    ds = Dataset("big", DS.columns, n)
    rng = np.random.default_rng(0)
    table = Table.from_columns(
        ds,
        {
            "age": rng.integers(0, 100, n),
            "sex": rng.integers(0, 2, n),
            "cost": rng.uniform(0, 2000, n),
        },
    )
    plan = compile(parse_query("variance(cost) from big where age >= 65 group by sex"), ds)
    start = time.perf_counter()
    vec = evaluate(plan, table)
    assert time.perf_counter() - start < 2.0
    assert int(vec[0] + vec[3]) == int((table.values("age") >= 65).sum())


def test_csv_bom_blank_lines_and_non_ascii_digits() -> None:
    from pets.errors import InvalidInputError
    from pets.query import Column, Dataset, parse_csv

    ds = Dataset("d", (Column("x", "int", 0, 100_000, 1, ()),), max_rows=10)
    table = parse_csv("\ufeffx\n1\n\n2\n\n", ds)
    assert len(table) == 2
    for bad in ("x\n1_000\n", "x\n\u0663\u0660\n"):  # 1_000 and Arabic-Indic 30
        with pytest.raises(InvalidInputError, match="row 1"):
            parse_csv(bad, ds)
