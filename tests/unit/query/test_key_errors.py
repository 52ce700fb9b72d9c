"""An unknown key in a query's JSON is refused with the keys that are allowed
(issue 15, item 22: the wire is self-describing)."""

from __future__ import annotations

import json

import pytest

from pets.errors import QueryError
from pets.query import Query

BASE = {"dataset": "hospitals", "aggregate": "count"}


def test_an_unknown_query_key_lists_the_allowed_keys() -> None:
    with pytest.raises(QueryError) as info:
        Query.from_json(json.dumps({**BASE, "filter": []}))
    message = str(info.value)
    assert "['filter']" in message
    for key in ("aggregate", "bins", "clip", "column", "columns", "dataset", "group_by", "where"):
        assert key in message.split("allowed:")[1]


def test_an_unknown_dp_key_lists_the_allowed_keys() -> None:
    with pytest.raises(QueryError, match=r"allowed: epsilon, rho, unit"):
        Query.from_json(json.dumps({**BASE, "dp": {"eps": 1}}))


def test_a_malformed_filter_names_its_keys_and_operators() -> None:
    bad = {**BASE, "where": [{"column": "age", "operator": ">=", "value": 3}]}
    with pytest.raises(QueryError, match=r"column, op, value \(op one of = != < <= > >= in\)"):
        Query.from_json(json.dumps(bad))
