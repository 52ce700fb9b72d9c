"""Issue 15, item 2: ``min_group_rows`` covers every released cell, histogram bins included.

Before the fix a node checked only whole groups: with ``min_group_rows = 5``,
``count() where age >= 99`` (3 rows) was refused but
``histogram(age) bins [0, 98, 99, 100]`` released bins of 5 and 3 rows.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pets.client.config import load_node_config
from pets.client.node import Node
from pets.devtools.datagen import schema_for
from pets.query import compile, parse_query
from pets.query.evaluate import cell_row_counts, evaluate_batches
from pets.sources import open_source, read_table

REFUSED = (
    "histogram(age) from hospitals bins [0, 98, 99, 100]",
    "histogram(age) from hospitals group by sex bins [0, 50, 110]",
    "count() from hospitals where age >= 99",
    "mean(cost) from hospitals where age >= 98 group by sex",
    "histogram(sex) from hospitals where age >= 98",
)
ACCEPTED = (
    "histogram(age) from hospitals bins [0, 50, 100]",
    "count() from hospitals where age >= 98",
    "count() from hospitals where age >= 100",  # nothing released: 0 rows is no one
    "mean(cost) from hospitals where age < 99 group by sex",
)


@pytest.fixture
def node(tmp_path: Path, node_loop: asyncio.AbstractEventLoop) -> Node:
    (tmp_path / "schema.toml").write_text(schema_for("hospitals", 1000).to_toml())
    rows = ["30,F,Tokyo,C,3,10.5"] * 20 + ["98,F,Tokyo,C,3,1"] * 5 + ["99,M,Osaka,I,2,2"] * 3
    (tmp_path / "h.csv").write_text(
        "age,sex,prefecture,diagnosis,length_of_stay,cost\n" + "\n".join(rows) + "\n"
    )
    config = tmp_path / "node.toml"
    config.write_text(
        'name = "h1"\nschema = "schema.toml"\nleader = "127.0.0.1:9"\n'
        'state_dir = "state"\n[data]\nhospitals = "h.csv"\n[policy]\nmin_group_rows = 5\n'
    )
    return Node(load_node_config(config, insecure=True))


@pytest.mark.parametrize("text", REFUSED)
def test_node_refuses_a_query_releasing_any_small_cell(node: Node, text: str) -> None:
    vector, reason = node.evaluate(compile(parse_query(text), node.schema))
    assert vector is None
    assert "fewer than 5 matching rows" in reason


@pytest.mark.parametrize("text", ACCEPTED)
def test_node_answers_when_every_cell_is_empty_or_large(node: Node, text: str) -> None:
    plan = compile(parse_query(text), node.schema)
    vector, reason = node.evaluate(plan)
    assert vector is not None and reason == ""
    assert len(vector) == plan.length


def test_cell_counts_split_histogram_bins(node: Node) -> None:
    plan = compile(parse_query(REFUSED[0]), node.schema)
    table = read_table(open_source(node.schema, "hospitals", node.config.data["hospitals"]))
    assert list(cell_row_counts(plan, table).values()) == [20, 5, 3]
    assert evaluate_batches(plan, [table]).small_cells(5) == 1
