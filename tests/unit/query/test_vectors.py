"""Known-answer vectors of the query model (tests/vectors/query/query_vectors.json)."""

from __future__ import annotations

import numpy as np
import pytest

from pets.query import Query, Schema, Table, compile, decode, evaluate, parse_csv, plaintext
from tests.vectors.loader import cases, load, rejected

VECTORS = load("query/query_vectors.json")
SCHEMA = Schema.from_toml(VECTORS["schema_toml"])


def _table(plan_dataset, data: str | list[float]) -> Table:  # type: ignore[no-untyped-def]
    if isinstance(data, str):
        return parse_csv(data, plan_dataset)
    return Table.from_vector(plan_dataset, np.array(data, dtype=np.float64))


@pytest.mark.parametrize("case", cases(VECTORS.accept))
def test_accept(case: dict) -> None:
    query = Query.from_dict(case["query"])
    plan = compile(query, SCHEMA)
    tables = [_table(plan.dataset, h) for h in case["holders"]]
    vectors = [evaluate(plan, t) for t in tables]
    for got, want in zip(vectors, case["vectors"], strict=True):
        assert got.dtype == np.int64
        assert got.tolist() == want
    total = np.zeros(plan.length, dtype=np.uint64)
    for v in vectors:
        total += v.view(np.uint64)
    result = decode(plan, total, len(tables))
    assert result.rows == case["result"]
    # the Paillier path (Python ints) decodes the same
    assert decode(plan, [int(x) for x in total], len(tables)).rows == case["result"]
    assert result.close_to(plaintext(plan, tables))


@pytest.mark.parametrize("case", cases(VECTORS.reject))
def test_reject(case: dict) -> None:
    step = case["step"]
    with rejected(case):
        if step == "compile":
            compile(Query.from_dict(case["query"]), SCHEMA)
        elif step == "parse_csv":
            parse_csv(case["csv"], SCHEMA.dataset(case["dataset"]))
        elif step == "evaluate":
            plan = compile(Query.from_dict(case["query"]), SCHEMA)
            table = parse_csv(case["csv"], plan.dataset)  # parsing must succeed
            evaluate(plan, table)
        else:
            plan = compile(Query.from_dict(case["query"]), SCHEMA)
            total = np.array([int(x) for x in case["total"]], dtype=np.uint64)
            decode(plan, total, case["contributors"])


def test_vectors_cover_every_aggregate_and_step() -> None:
    aggregates = {c["query"]["aggregate"] for c in VECTORS.accept}
    assert aggregates == {"count", "sum", "mean", "variance", "histogram", "vector_sum"}
    steps = {c["step"] for c in VECTORS.reject}
    assert steps == {"compile", "parse_csv", "evaluate", "decode"}
    assert all("match" in c for c in VECTORS.reject)
