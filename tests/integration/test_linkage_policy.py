"""A holder's ``[policy]`` on linked queries (issue 16; client/linked_policy.py).

Real servers (leader + one helper, mTLS, SQLite) and real nodes
(:class:`pets.client.node.Node`, in process, reading CSV files with an
identifier column) with per-node policies. The policy applies to the side a
node holds: the columns of that side's filters (and, on the value side, the
aggregated and group-by columns), ``datasets`` naming only that side, and
``min_group_rows`` on the holder's own people; a node holding none of the
query's datasets records nothing.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from pets.client.analyst import AnalystClient
from pets.client.config import NodePolicy, load_node_config
from pets.client.node import Node
from pets.devtools.localcluster import LocalCluster
from pets.query import Column, Dataset, Query, Schema
from pets.v1 import aggregation_pb2 as pb
from tests.integration.linkage_support import schema

SURVEY = Dataset("survey", (Column("score", "int", 0, 10),), max_rows=1000)

LEVELS = ["care1", "care2"]


def _write(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(header)
        out.writerows(rows)
    return path


def _ltc(path: Path, first: int, last: int, *, care3: int = 0) -> Path:
    """People P<first>..P<last-1>; the first ``care3`` of them in care3 (a small cell)."""
    rows: list[list[object]] = [
        [f"P{i:04d}", (i * 37) % 1000, "care3" if i - first < care3 else LEVELS[i % 2]]
        for i in range(first, last)
    ]
    return _write(path, ["person_id", "care_cost", "care_level"], rows)


def _hospitals(path: Path, ids: range, *, j45: int = 0) -> Path:
    """Patients of ``ids``; the first ``j45`` of them diagnosed J45 (a small cohort)."""
    rows: list[list[object]] = [
        [f"p{i:04d}", "J45" if n < j45 else "E11"] for n, i in enumerate(ids)
    ]
    return _write(path, ["patient_id", "diagnosis"], rows)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    work = tmp_path_factory.mktemp("linkage-policy")
    data = work / "data"
    holders = {
        "muni-1": {"ltc": _ltc(data / "muni-1.csv", 0, 40, care3=2)},
        "muni-2": {"ltc": _ltc(data / "muni-2.csv", 40, 80)},
        "hosp-1": {"hospitals": _hospitals(data / "hosp-1.csv", range(0, 60))},
        "hosp-2": {"hospitals": _hospitals(data / "hosp-2.csv", range(20, 80), j45=3)},
        "surveyor": {"survey": _write(data / "survey.csv", ["score"], [[1], [2], [3]])},
    }
    c = LocalCluster(
        workdir=work,
        schema=Schema((*schema().datasets, SURVEY)),
        holder_data={h: dict(d) for h, d in holders.items()},
        helpers=1,
        min_holders=2,
        limits={"finalize_timeout_seconds": 5},
    )
    c.prepare(analysts=("analyst",))
    c.start_servers()
    yield c
    c.stop()


Spec = tuple[str, Path, dict[str, object]]  # node name, state dir, its policy


def _node(cluster: LocalCluster, spec: Spec) -> Node:
    name, state, policy = spec
    config = load_node_config(cluster.node_config(name))
    rules = NodePolicy(protocols=("linkage",), **policy)  # type: ignore[arg-type]
    return Node(dataclasses.replace(config, policy=rules, state_dir=state / name))


def _run(
    cluster: LocalCluster, text: str, specs: list[Spec], answering: int
) -> tuple[pb.QueryStatus, list[list[tuple[str, str]]]]:
    """Submit ``text`` (PROTOCOL_LINKAGE), let every node handle its announcement, wait;
    the status and each node's journal as (outcome, reason)."""

    async def go() -> pb.QueryStatus:
        analyst = AnalystClient(cluster.endpoints("analyst"))
        nodes = [_node(cluster, spec) for spec in specs]
        try:
            sub = await analyst.submit(
                Query.parse(text),
                protocol="linkage",
                min_holders=2,
                deadline_seconds=30,
                close_after=answering,
            )
            qid = sub.status.query_id
            anns = [await n.client.announcement(qid) for n in nodes]
            await asyncio.gather(*(n.handle(a) for n, a in zip(nodes, anns, strict=True)))
            return await analyst.wait(qid)
        finally:
            await analyst.close()
            for n in nodes:
                await n.client.close()
                histories.append([(e.outcome, e.reason) for e in n.journal.history()])
                n.journal.close()

    histories: list[list[tuple[str, str]]] = []
    return asyncio.run(go()), histories


def test_the_policy_applies_to_the_side_the_node_holds(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    specs: list[Spec] = [
        # filters on a column of its own side that its policy does not allow: refused
        ("muni-1", tmp_path, {"columns": {"ltc": ("care_cost",)}}),
        # lists only the side it holds, which is not the value side: answers
        ("muni-2", tmp_path, {"datasets": ("ltc",)}),
        # its columns policy does not name ltc.care_level, another side's column: answers
        ("hosp-1", tmp_path, {"datasets": ("hospitals",), "columns": {"hospitals": ()}}),
        # holds none of the query's datasets: not addressed, nothing recorded
        ("surveyor", tmp_path, {}),
    ]
    text = "count(*) from hospitals linked to ltc where ltc.care_level = care1"
    status, (muni_1, muni_2, hosp_1, surveyor) = _run(cluster, text, specs, answering=2)
    assert status.state == pb.QUERY_STATE_READY, (status.failure, status.failure_detail)
    assert muni_1[0][0] == "refused" and "['care_level'] of ltc" in muni_1[0][1], muni_1
    assert [o for o, _ in muni_2] == ["answered"], muni_2
    assert [o for o, _ in hosp_1] == ["answered"], hosp_1
    assert surveyor == []


def test_min_group_rows_covers_the_holders_own_people(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    # The value side: muni-1's care3 group has 2 people; ordinary queries refuse that.
    five = {"min_group_rows": 5}
    specs: list[Spec] = [("muni-1", tmp_path / "a", five), ("muni-2", tmp_path / "a", five)]
    specs.append(("hosp-1", tmp_path / "a", five))
    text = "count(*) from ltc linked to hospitals group by care_level"
    status, (muni_1, muni_2, hosp_1) = _run(cluster, text, specs, answering=2)
    assert status.state == pb.QUERY_STATE_READY, (status.failure, status.failure_detail)
    assert muni_1[0][0] == "refused" and "fewer than 5 people" in muni_1[0][1], muni_1
    assert [o for o, _ in muni_2] == ["answered"] and [o for o, _ in hosp_1] == ["answered"]

    # Another side: hosp-2's filter result (3 J45 patients) is below its min_group_rows;
    # hosp-1 has no J45 patient (an empty filter result is not a small cell).
    specs = [("muni-1", tmp_path / "b", {}), ("hosp-1", tmp_path / "b", five)]
    specs.append(("hosp-2", tmp_path / "b", five))
    text = "count(*) from ltc linked to hospitals where hospitals.diagnosis = J45"
    _, (muni_1, hosp_1, hosp_2) = _run(cluster, text, specs, answering=2)
    assert [o for o, _ in hosp_1] == ["answered"], hosp_1
    assert hosp_2[0][0] == "refused" and "fewer than 5 people" in hosp_2[0][1], hosp_2
