"""What an analyst sees of a DP answer: JSON, pandas interval columns, the printed block.

The answer comes from :func:`pets.dp.decode_noisy` over a ring total with
known noise, exactly as :meth:`pets.client.analyst.AnalystClient.fetch`
builds it; a negative noisy count is reported, never clamped.
"""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
from rich.console import Console

from pets.client.analyst import Outcome
from pets.client.render import outcome_json, print_outcome
from pets.dp import decode_noisy, noise_plan
from pets.query import Query, Result, Schema
from pets.query import compile as compile_query
from pets.v1 import aggregation_pb2 as pb

SCHEMA = Schema.from_toml(
    """
[datasets.t]
max_rows = 100
[[datasets.t.columns]]
name = "sex"
type = "category"
domain = ["F", "M"]
[[datasets.t.columns]]
name = "cost"
type = "float"
lo = 0
hi = 50
scale = 10
[datasets.v]
kind = "vector"
length = 3
lo = -5
hi = 5
"""
)


def _release(text: str, total: list[int], contributors: int = 3) -> tuple[Query, Result]:
    query = Query.parse(text)
    plan = compile_query(query, SCHEMA)
    ring = np.array([v % (1 << 64) for v in total], dtype=np.uint64)
    noisy = decode_noisy(plan, noise_plan(plan), ring, contributors, 2)
    result = dataclasses.replace(
        noisy.result, dp=noisy.dp, intervals=tuple(noisy.intervals), notes=tuple(noisy.notes)
    )
    return query, result


def test_a_dp_answer_in_json_pandas_and_print() -> None:
    # Group F: count 12, sum 153.0 (fixed point 1530); group M: a noisy count of -2.
    query, result = _release("sum(cost) from t group by sex dp epsilon 1", [12, 1530, -2, 40])
    obj = json.loads(json.dumps(result.to_json_obj()))
    assert obj["dp"]["mechanism"] == "discrete_laplace" and obj["dp"]["servers"] == 2
    assert [row["count"] for row in obj["rows"]] == [12, -2]  # not clamped
    assert any("negative" in note for note in obj["notes"])
    lo, hi = obj["intervals"][0]["sum"]
    assert lo < 153.0 < hi

    frame = result.to_pandas()
    assert list(frame.columns) == [
        "sex",
        "count",
        "sum",
        "count_lo",
        "count_hi",
        "sum_lo",
        "sum_hi",
    ]
    assert frame["count_lo"][1] < -2 < frame["count_hi"][1]

    status = pb.QueryStatus(query_id="q-0000000000000001", state=pb.QUERY_STATE_READY)
    outcome = Outcome(status=status, result=result, seconds=0.1)
    assert outcome_json(query, outcome)["result"]["dp"]["unit"] == "row"
    out = io.StringIO()
    print_outcome(query, outcome, Console(file=out, width=200))
    printed = out.getvalue()
    assert "discrete_laplace" in printed and "95% intervals" in printed
    assert "negative" in printed


def test_a_vector_dataset_answer_has_flat_interval_lists() -> None:
    _, result = _release("vector_sum() from v dp rho 0.5", [10, -20, 30])
    (ivs,) = result.intervals
    assert set(ivs["vector"]) == {"lo", "hi"} and len(ivs["vector"]["lo"]) == 3
    frame = result.to_pandas()
    assert list(frame.columns) == ["index", "value", "value_lo", "value_hi"]
    assert (frame["value_lo"] < frame["value"]).all() and (frame["value"] < frame["value_hi"]).all()
    assert [label for label, _ in result.row_intervals(0)] == ["0", "1", "2"]
