"""A node reads every source type from its TOML, checks it at start, and logs bad rows."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pets.client.config import load_node_config
from pets.client.node import Node
from pets.errors import InvalidInputError
from pets.query import compile, evaluate, parse_csv, parse_query
from pets.v1 import aggregation_pb2 as pb
from tests.unit.sources.conftest import QUERIES, Files


def _node(tmp_path: Path, files: Files, data: str) -> Node:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "schema.toml").write_text(files.schema.to_toml())
    config = tmp_path / "node.toml"
    config.write_text(
        'name = "h1"\nschema = "schema.toml"\nleader = "127.0.0.1:9"\nstate_dir = "state"\n'
        '[helpers]\nhelper-1 = "127.0.0.1:10"\n' + data
    )
    return Node(load_node_config(config, insecure=True))


def _settings(files: Files, pg_conninfo: str) -> list[str]:
    return [
        f'[data]\nhospitals = "{files.csv}"\n',
        f'[data.hospitals]\nformat = "parquet"\npath = "{files.parquet}"\nbatch_rows = 100\n',
        f'[data.hospitals]\nformat = "arrow"\npath = "{files.arrow}"\n',
        f'[data.hospitals]\nformat = "sqlite"\npath = "{files.sqlite}"\ntable = "stays"\n',
        f'[data.hospitals]\nformat = "postgresql"\nconninfo = "{pg_conninfo}"\n'
        'query = "SELECT * FROM stays"\n',
    ]


def test_every_source_type_answers_through_the_node(
    tmp_path: Path, files: Files, pg_conninfo: str, node_loop: asyncio.AbstractEventLoop
) -> None:
    reference = parse_csv(files.csv.read_text(), files.dataset)
    for i, data in enumerate(_settings(files, pg_conninfo)):
        node = _node(tmp_path / str(i), files, data)
        for text in QUERIES:
            plan = compile(parse_query(text), node.schema)
            vector, reason = node.evaluate(plan)
            assert reason == "" and vector is not None
            assert np.array_equal(vector, evaluate(plan, reference)), (data, text)


def test_a_schema_mismatch_stops_the_node_at_start(
    tmp_path: Path, files: Files, node_loop: asyncio.AbstractEventLoop
) -> None:
    bad = tmp_path / "bad.parquet"
    pq.write_table(files.table.set_column(0, "age", pa.array(["x"] * files.table.num_rows)), bad)
    with pytest.raises(InvalidInputError, match="column 'age' has type string"):
        _node(tmp_path, files, f'[data]\nhospitals = "{bad}"\n')


def test_a_bad_row_is_one_log_line_without_the_value(
    tmp_path: Path,
    files: Files,
    caplog: pytest.LogCaptureFixture,
    node_loop: asyncio.AbstractEventLoop,
) -> None:
    csv = tmp_path / "h.csv"
    csv.write_text(
        "age,sex,prefecture,diagnosis,length_of_stay,cost\n70,F,Tokyo,C,3,1\n70,F,Tokyo,C,3,\n"
    )
    node = _node(tmp_path, files, f'[data]\nhospitals = "{csv}"\n')
    plan = compile(parse_query("sum(cost) from hospitals"), node.schema)
    ann = pb.QueryAnnouncement(
        query_id="q1",
        fingerprint=plan.fingerprint(),
        vector_length=plan.length,
        helpers=["helper-1"],
        deadline_unix=int(time.time()) + 60,
        spec=pb.QuerySpec(protocol=pb.PROTOCOL_ADDITIVE, query_json=plan.query.to_json()),
    )
    with caplog.at_level(logging.INFO, logger="pets.client.node"):
        node_loop.run_until_complete(node.handle(ann))
    records = [r for r in caplog.records if r.name == "pets.client.node"]
    refused = [r for r in records if r.getMessage() == "query refused"]
    assert len(refused) == 1 and refused[0].exc_info is None
    assert not [r for r in records if r.levelno >= logging.ERROR]
    reason = str(refused[0].__dict__.get("reason", ""))
    assert f"{csv}" in reason and "row 2, column 'cost': value is empty" in reason
    assert node.journal.decided("q1")  # a refusal, remembered: not retried
    (entry,) = node.journal.history()  # and `pets node history` shows it, without the value
    assert entry.outcome == "refused" and "row 2, column 'cost'" in entry.reason
