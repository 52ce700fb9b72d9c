"""Precise messages for two linked-query mistakes the black-box check found
(a huge min_intersection; a filter column with nothing before the '.')."""

from __future__ import annotations

import json

import pytest

from pets.devtools.linked_schema import care_and_hospitals
from pets.errors import QueryError
from pets.query import Query
from pets.query import compile as compile_query

SCHEMA = care_and_hospitals(max_rows=100)


def test_a_huge_min_intersection_says_the_bound() -> None:
    with pytest.raises(QueryError, match=r"min_intersection must be at most \d+, got 9{23}"):
        Query.parse("count(*) from ltc linked to hospitals min_intersection " + "9" * 23)


def test_a_column_with_an_empty_dataset_name_says_so() -> None:
    body = {
        "dataset": "ltc",
        "aggregate": "count",
        "linked_to": ["hospitals"],
        "where": [{"column": ".diagnosis", "op": "=", "value": "E11"}],
    }
    with pytest.raises(QueryError, match=r"'\.diagnosis' names no dataset before the '\.'"):
        compile_query(Query.from_json(json.dumps(body)), SCHEMA)
