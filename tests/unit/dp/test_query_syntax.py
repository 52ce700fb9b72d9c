"""The dp request in the query model: text form, JSON, and unchanged non-DP queries."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pets.errors import QueryError
from pets.query import Query, parse_query
from pets.query.model import DpRequest

BUDGETS = st.one_of(
    st.integers(1, 1000),
    st.floats(1e-9, 1e6, allow_nan=False, allow_infinity=False),
)


@given(st.sampled_from(["epsilon", "rho"]), BUDGETS, st.sampled_from(["row", "holder"]))
def test_round_trips(kind: str, value: float, unit: str) -> None:
    dp = DpRequest(**{kind: value}, unit=unit)  # type: ignore[arg-type]
    q = Query("hospitals", "count", group_by=("sex",), dp=dp)  # type: ignore[arg-type]
    assert parse_query(q.describe()) == q
    assert Query.from_json(q.to_json()) == q
    assert q.to_dict()["dp"] == {kind: float(value), "unit": unit}


def test_text_forms() -> None:
    q = parse_query("sum(cost) from hospitals where age >= 65 clip [0, 5000] DP Epsilon 1")
    assert q.dp == DpRequest(epsilon=1.0) and q.clip == (0.0, 5000.0)
    q = parse_query("count(*) from hospitals group by sex dp rho 0.05 unit holder")
    assert q.dp == DpRequest(rho=0.05, unit="holder")
    assert q.describe().endswith("group by sex dp rho 0.05 unit holder")
    assert parse_query("count(*) from h dp rho 2").describe() == "count(*) from h dp rho 2"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("count(*) from h dp", "'epsilon' or 'rho'"),
        ("count(*) from h dp delta 1", "'epsilon' or 'rho'"),
        ("count(*) from h dp epsilon", "a number after 'epsilon'"),
        ("count(*) from h dp epsilon x", "a number after 'epsilon'"),
        ("count(*) from h dp epsilon 0", "must be positive"),
        ("count(*) from h dp epsilon -1", "must be positive"),
        ("count(*) from h dp rho 1 unit", "'row' or 'holder'"),
        ("count(*) from h dp rho 1 unit person", "'row' or 'holder'"),
        ("count(*) from h dp rho 1 dp rho 1", "unexpected 'dp'"),
        ("count(*) from h dp rho 1 clip [0, 1]", "unexpected 'clip'"),
    ],
)
def test_bad_text(text: str, match: str) -> None:
    with pytest.raises(QueryError, match=match):
        parse_query(text)


@pytest.mark.parametrize(
    "dp",
    [{}, {"epsilon": 1, "rho": 1}, {"epsilon": True}, {"rho": "1"}, {"rho": 1, "unit": 3}, []],
)
def test_bad_json(dp: object) -> None:
    with pytest.raises(QueryError):
        Query.from_dict({"dataset": "h", "aggregate": "count", "dp": dp})
    with pytest.raises(QueryError):
        Query("h", "count", dp=dp)  # type: ignore[arg-type]


def test_queries_without_dp_keep_their_bytes() -> None:
    """No dp key in the canonical JSON, so fingerprints of existing queries do not move."""
    q = parse_query("mean(cost) from hospitals where age >= 65 group by sex")
    assert q.to_json() == (
        '{"aggregate":"mean","bins":null,"clip":null,"column":"cost","columns":[],'
        '"dataset":"hospitals","group_by":["sex"],'
        '"where":[{"column":"age","op":">=","value":65}]}'
    )
    assert Query.from_dict({**q.to_dict(), "dp": None}) == q
