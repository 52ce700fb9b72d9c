"""Decoding summed vectors: input forms, overflow checks, results and tolerances."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pets.errors import InvalidInputError, OverflowDetectedError
from pets.query import Column, Dataset, Schema, compile, decode, parse_csv, parse_query, plaintext

DS = Dataset(
    "visits",
    (
        Column("age", "int", 0, 100),
        Column("sex", "category", domain=("F", "M")),
        Column("cost", "float", 0, 1000, 10),
    ),
    4,
)
SERIES = Dataset("series", (), 1, kind="vector", length=2, lo=-1, hi=1, scale=10)
SCHEMA = Schema((DS, SERIES))
ROWS = parse_csv("age,sex,cost\n70,F,100.25\n30,M,5\n", DS)


def _plan(text: str):  # type: ignore[no-untyped-def]
    return compile(parse_query(text), SCHEMA)


def test_input_forms_agree() -> None:
    plan = _plan("sum(age) from visits group by sex")
    want = [{"sex": "F", "count": 1, "sum": 70.0}, {"sex": "M", "count": 2, "sum": 60.0}]
    assert decode(plan, np.array([1, 70, 2, 60], dtype=np.int64), 2).rows == want
    assert decode(plan, np.array([1, 70, 2, 60], dtype=np.uint64), 2).rows == want
    assert decode(plan, [1, 70, 2, 60], 2).rows == want
    assert decode(plan, [np.int64(1), 70, 2, 60], 2).rows == want


def test_negative_sums_from_ring_and_python_ints() -> None:
    plan = _plan("vector_sum(*) from series")
    ring = np.array([-15, 7], dtype=np.int64).view(np.uint64)
    assert decode(plan, ring, 2).rows == [{"vector": [-1.5, 0.7]}]
    assert decode(plan, [2**64 - 15, 7], 2).rows == [{"vector": [-1.5, 0.7]}]
    assert decode(plan, [-15, 7], 2).rows == [{"vector": [-1.5, 0.7]}]


@pytest.mark.parametrize(
    ("total", "contributors", "error", "match"),
    [
        ([1, 2], 0, InvalidInputError, "contributors must be a positive integer"),
        ([1, 2], True, InvalidInputError, "contributors"),
        ([1, 2, 3], 1, InvalidInputError, "shape \\(3,\\), the query needs \\(2,\\)"),
        (np.array([1.0, 2.0]), 1, InvalidInputError, "uint64 or int64"),
        ([1, "2"], 1, InvalidInputError, "must be integers"),
        ([1, 2**64], 1, OverflowDetectedError, "outside the 64-bit range"),
        ([1, -(2**63) - 1], 1, OverflowDetectedError, "outside the 64-bit range"),
    ],
)
def test_bad_inputs(total: object, contributors: int, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        decode(_plan("sum(age) from visits"), total, contributors)  # type: ignore[arg-type]


def test_ring_range_too_wide_to_prove_is_refused() -> None:
    # each holder's slots fit, but 10^6 holders' sum of squares might not
    ds = Dataset("d", (Column("x", "float", 0, 1e5, 100),), 1000)
    plan = compile(parse_query("variance(x) from d"), ds)
    assert plan.max_holders() < 1000
    with pytest.raises(OverflowDetectedError, match=r"slot sum_sq\(x\): .* may exceed the 64-bit"):
        decode(plan, [10**6, 0, 0], 1000)


def test_every_slot_wrap_is_named() -> None:
    plan = _plan("variance(cost) from visits group by sex")
    total = [0, 0, 0, 1, 1000, 10**6]
    decode(plan, total, 1)
    for slot, label in enumerate(plan.slot_labels):
        wrapped = list(total)
        wrapped[slot] = (wrapped[slot] + 2**63) % 2**64
        with pytest.raises(
            OverflowDetectedError, match=f"slot {label.replace('(', '.').replace(')', '.')}"
        ):
            decode(plan, wrapped, 1)


def test_result_shapes_and_printing() -> None:
    tables = [ROWS, ROWS]
    for text, headers in [
        ("count(*) from visits", ["count"]),
        ("mean(cost) from visits where age > 50 group by sex", ["sex", "count", "mean"]),
        ("variance(age) from visits", ["count", "mean", "variance"]),
        ("histogram(age) from visits bins [0, 50, 100]", ["[0, 50)", "[50, 100]"]),
        ("vector_sum(age, cost) from visits", ["count", "sum(age)", "sum(cost)"]),
    ]:
        plan = _plan(text)
        result = plaintext(plan, tables)
        assert result.to_table_rows()[0] == headers
        assert list(result.columns) == [k for k in result.rows[0]]
        obj = result.to_json_obj()
        assert json.loads(json.dumps(obj, allow_nan=False)) == obj
        assert obj["description"] == text and obj["contributors"] == 2
    mean = plaintext(_plan("mean(cost) from visits where age > 50 group by sex"), tables)
    assert mean.rows[1] == {"sex": "M", "count": 0, "mean": None}
    assert mean.to_table_rows()[1] == [["F", "2", "100.25"], ["M", "0", "-"]]
    vec = plaintext(_plan("vector_sum(*) from series"), [])
    assert vec.to_table_rows() == (["index", "value"], [["0", "0"], ["1", "0"]])


def test_variance_is_population_variance() -> None:
    table = parse_csv("age,sex,cost\n1,F,0\n2,F,0\n3,F,0\n4,F,0\n", DS)
    plan = _plan("variance(age) from visits")
    total = [4, 10, 30]
    result = decode(plan, total, 1)
    assert result.rows == [{"count": 4, "mean": 2.5, "variance": 1.25}]
    assert result.close_to(plaintext(plan, [table]))


def test_close_to_tolerances() -> None:
    plan = _plan("sum(cost) from visits")
    a = decode(plan, [4, 10000], 2)  # 1000.0 from 4 rows: fixed-point error <= 4 * 0.05
    b = plaintext(
        plan, [parse_csv("age,sex,cost\n1,F,250.04\n1,F,250.04\n1,F,250.04\n1,F,249.88\n", DS)]
    )
    assert abs(b.rows[0]["sum"] - 1000.0) < 1e-9
    c = plaintext(
        plan, [parse_csv("age,sex,cost\n1,F,250.04\n1,F,250.04\n1,F,250.04\n1,F,250.04\n", DS)]
    )
    assert a.close_to(c) and c.close_to(a)  # off by 0.16 <= 0.2
    d = plaintext(
        plan, [parse_csv("age,sex,cost\n1,F,250.06\n1,F,250.06\n1,F,250.06\n1,F,250.06\n", DS)]
    )
    assert not a.close_to(d)  # off by 0.24 > 0.2
    assert a.close_to(d, abs_tol=0.5)
    three = decode(plan, [3, 7500], 2)
    assert not a.close_to(three)  # counts differ
    assert not a.close_to(decode(_plan("count(*) from visits"), [4], 2))
    m1 = decode(_plan("mean(cost) from visits"), [0, 0], 1)
    m2 = decode(_plan("mean(cost) from visits"), [1, 0], 1)
    assert m1.close_to(m1) and not m1.close_to(m2)
