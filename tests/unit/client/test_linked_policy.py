"""client/linked_policy.py without servers: which side a node answers for, which
columns it reads, and min_group_rows on its own people (issue 16)."""

from __future__ import annotations

import pytest

from pets.client.config import NodePolicy
from pets.client.linked_policy import addressed, choose_side, small_cells, touched_columns
from pets.devtools.linked_schema import linked_dataset
from pets.linkage.persons import evaluate_persons
from pets.query import Column, Query, Schema, Table
from pets.query import compile as compile_query

SCHEMA = Schema(
    (
        linked_dataset(
            "ltc",
            "person_id",
            (
                Column("care_cost", "int", 0, 1000),
                Column("care_level", "category", domain=("care1", "care2")),
                Column("service", "category", domain=("home", "day")),
            ),
            max_rows=100,
        ),
        linked_dataset("hospitals", "patient_id", (Column("age", "int", 0, 120),), max_rows=100),
    )
)


def plan(text: str):  # type: ignore[no-untyped-def]
    return compile_query(Query.parse(text), SCHEMA)


def test_a_node_is_addressed_by_any_side_it_holds() -> None:
    q = Query.parse("count(*) from hospitals linked to ltc")
    assert addressed(q, ["ltc"]) and addressed(q, ["hospitals"])
    assert not addressed(q, ["claims"]) and not addressed(Query.parse("count(*) from ltc"), [])


def test_the_columns_a_side_reads() -> None:
    p = plan(
        "mean(care_cost) from ltc linked to hospitals where service = day "
        "and hospitals.age >= 65 group by care_level"
    )
    assert p.linkage is not None
    value, other = p.linkage.sides
    assert touched_columns(p, value) == {"care_cost", "service", "care_level"}
    assert touched_columns(p, other) == {"age"}


@pytest.mark.parametrize(
    ("policy", "side", "refusal"),
    [
        (NodePolicy(), 1, ""),
        (NodePolicy(datasets=("ltc",)), 1, ""),
        (NodePolicy(datasets=("hospitals",)), None, "dataset ltc is not allowed"),
        (NodePolicy(columns={"ltc": ("care_cost",)}), None, "['service'] of ltc"),
        (NodePolicy(columns={"ltc": ("service",), "hospitals": ()}), 1, ""),
    ],
)
def test_the_policy_is_checked_on_the_side_held(
    policy: NodePolicy, side: int | None, refusal: str
) -> None:
    p = plan("count(*) from hospitals linked to ltc where ltc.service = home and age >= 65")
    got, why = choose_side(p, ["ltc"], policy)
    assert got == side and refusal in why and (refusal or why == "")


def _people(text: str, dataset: str, rows: dict[str, list[object]], ids: list[str]):  # type: ignore[no-untyped-def]
    p = plan(text)
    table = Table.from_columns(SCHEMA.dataset(dataset), rows)
    return evaluate_persons(p, dataset, table, ids)


def test_small_cells_per_person_group_and_filter_result() -> None:
    ids = ["a", "b", "c", "d", "a", "e"]  # "a" twice: one row per person (the first)
    rows: dict[str, list[object]] = {
        "care_cost": [1, 2, 3, 4, 5, 6],
        "care_level": ["care1", "care1", "care1", "care2", "care2", "care2"],
        "service": ["home"] * 6,
    }
    text = "count(*) from ltc linked to hospitals group by care_level"
    persons = _people(text, "ltc", rows, ids)
    assert len(persons) == 5 and list(persons.cells()) == [3, 2]
    assert small_cells(persons, 1) == 0 and small_cells(persons, 3) == 1
    assert small_cells(persons, 4) == 2
    # Another side: only the filter result counts (filters first, then one row per
    # person: "a"'s second row is care2), and an empty one is not small.
    other = "count(*) from hospitals linked to ltc where ltc.care_level = care2"
    persons = _people(other, "ltc", rows, ids)
    assert len(persons) == 3 and small_cells(persons, 4) == 1 and small_cells(persons, 3) == 0
    none = "count(*) from hospitals linked to ltc where ltc.service = day"
    assert small_cells(_people(none, "ltc", rows, ids), 5) == 0
