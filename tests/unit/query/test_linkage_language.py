"""Linked queries: text and JSON forms, compilation to a linked plan, refusals, fingerprints."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pets.devtools import datagen_linked
from pets.errors import InvalidInputError, QueryError
from pets.query import (
    Accumulator,
    Column,
    Dataset,
    Filter,
    Query,
    Schema,
    Table,
    compile,
    decode,
    parse_query,
    plaintext,
)
from pets.query.schema import Linkage

BASE = datagen_linked.schema(1000)
SCHEMA = Schema(
    (
        *BASE.datasets,
        Dataset(
            "pharmacy",
            (Column("spend", "float", 0, 100),),
            1000,
            linkage=Linkage("insured", "member", "sum"),
        ),
        Dataset("survey", (Column("score", "int", 0, 10),), 1000),
        Dataset("daily", (), 1, kind="vector", length=3, lo=0, hi=1),
    )
)

EXAMPLE = (
    "mean(care_cost) from ltc linked to hospitals where hospitals.diagnosis = E "
    "group by ltc.care_level"
)


def test_the_issue_example_parses_and_compiles() -> None:
    query = parse_query(EXAMPLE, SCHEMA)
    assert query.dataset == "ltc"
    assert query.linked_to == ("hospitals",)
    assert query.is_linked
    assert query.where == (Filter("hospitals.diagnosis", "=", "E"),)
    assert query.group_by == ("care_level",)  # the from side's own columns are unqualified
    plan = compile(query, SCHEMA)
    assert plan.linkage is not None
    assert plan.linkage.domain == "resident"
    assert plan.linkage.datasets == ("ltc", "hospitals")
    value, other = plan.linkage.sides
    assert value.carries_values and not other.carries_values
    assert value.where == () and other.where == (Filter("diagnosis", "=", "E"),)
    assert plan.linkage.side("hospitals") is other
    assert plan.linkage.value_side is value
    # the value side's ordinary layout: 7 care levels x (count, sum)
    ordinary = compile(parse_query("mean(care_cost) from ltc group by care_level"), SCHEMA)
    assert plan.length == ordinary.length == 14
    assert plan.fields == ordinary.fields and plan.groups == ordinary.groups


def test_count_with_filters_on_every_side() -> None:
    text = (
        "count(*) from hospitals linked to ltc, claims where age >= 65 and "
        "ltc.care_level in (care3, care4) and claims.amount > 100 min_intersection 20"
    )
    plan = compile(parse_query(text, SCHEMA), SCHEMA)
    assert plan.linkage is not None
    assert plan.linkage.datasets == ("hospitals", "claims", "ltc")  # linked_to is sorted
    assert plan.linkage.min_intersection == 20
    sides = {s.name: s.where for s in plan.linkage.sides}
    assert sides == {
        "hospitals": (Filter("age", ">=", 65),),
        "ltc": (Filter("care_level", "in", ("care3", "care4")),),
        "claims": (Filter("amount", ">", 100),),
    }


@pytest.mark.parametrize(
    "text",
    [
        EXAMPLE,
        "count(*) from hospitals linked to ltc",
        "sum(amount) from claims linked to hospitals, ltc where ltc.service = home "
        "group by claim_type clip [0, 500] min_intersection 5",
        "variance(cost) from hospitals linked to claims where claims.claim_type != dental",
        "histogram(age) from hospitals linked to ltc bins [0, 65, 80, 110]",
        "histogram(care_level) from ltc linked to hospitals where hospitals.sex = F",
        "mean(cost) from hospitals linked to ltc dp epsilon 1",
    ],
)
def test_text_and_json_round_trip(text: str) -> None:
    query = parse_query(text, SCHEMA)
    assert parse_query(query.describe(), SCHEMA) == query
    assert Query.from_json(query.to_json()) == query
    plan = compile(query, SCHEMA)
    assert compile(Query.from_json(query.to_json()), SCHEMA).fingerprint() == plan.fingerprint()


def test_both_spellings_of_an_own_column_are_one_query() -> None:
    a = parse_query("mean(ltc.care_cost) from ltc linked to hospitals where ltc.service = day")
    b = parse_query("mean(care_cost) from ltc linked to hospitals where service = day")
    assert a == b and a.to_json() == b.to_json()
    c = parse_query("count(*) from ltc linked to hospitals, claims")
    d = parse_query("count(*) from ltc linked to claims, hospitals")
    assert c == d


def test_json_form_of_a_linked_query() -> None:
    query = Query.from_json(
        '{"aggregate":"count","dataset":"hospitals","linked_to":["ltc"],'
        '"where":[{"column":"ltc.care_level","op":"=","value":"care5"}],"min_intersection":3}'
    )
    assert query.linked_to == ("ltc",) and query.min_intersection == 3
    body = query.to_dict()
    assert body["linked_to"] == ["ltc"] and body["min_intersection"] == 3


def test_an_unlinked_query_keeps_its_json() -> None:
    query = parse_query("mean(cost) from hospitals group by sex")
    assert "linked_to" not in query.to_json() and "min_intersection" not in query.to_json()
    assert not query.is_linked and compile(query, SCHEMA).linkage is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("count(*) from ltc linked to nowhere", "unknown dataset 'nowhere'"),
        (
            "mean(care_cost) from ltc linked to hospitals group by hospitals.sex",
            "cannot group by 'hospitals.sex', a column of another side (hospitals): grouping "
            "the values of ltc by columns of hospitals needs secure multiplication, which pets "
            "does not do",
        ),
        (
            "mean(hospitals.cost) from ltc linked to hospitals",
            "aggregates values of its 'from' dataset (ltc); 'hospitals.cost' is on hospitals",
        ),
        (
            "count(*) from ltc linked to survey",
            "dataset 'survey' declares no linkage (no [datasets.survey.linkage] in the schema)",
        ),
        (
            "count(*) from survey linked to ltc",
            "dataset 'survey' declares no linkage",
        ),
        (
            "count(*) from ltc linked to pharmacy",
            "dataset 'pharmacy' links in domain 'insured' and 'ltc' in 'resident': only "
            "datasets of one linkage domain can be linked",
        ),
        ("count(*) from ltc linked to daily", "'daily' is a vector dataset and cannot be linked"),
        (
            "count(*) from ltc linked to hospitals where claims.amount > 3",
            "column 'claims.amount' names 'claims', which is not a side of this query "
            "(sides: ltc, hospitals)",
        ),
        (
            "count(*) from ltc linked to hospitals where hospitals.nope = 3",
            "hospitals: dataset 'hospitals' has no column 'nope'",
        ),
        (
            "count(*) from ltc linked to hospitals where hospitals.diagnosis = Z",
            "hospitals: filter on column 'diagnosis': value 'Z' is not in its domain",
        ),
        (
            "vector_sum(care_cost) from ltc linked to hospitals",
            "linked queries support count, sum, mean, variance, histogram; not vector_sum",
        ),
        ("count(*) from ltc linked to ltc", "dataset 'ltc' cannot be linked to itself"),
        ("count(*) from ltc linked to hospitals, hospitals", "linked to repeats a dataset"),
        ("count(*) from ltc min_intersection 3", "min_intersection applies to linked queries only"),
        ("count(*) from ltc linked to hospitals min_intersection 0", "must be a positive integer"),
        ("count(*) from ltc linked to hospitals min_intersection 2.5", "a whole number"),
        ("count(*) from ltc linked hospitals", "expected 'to'"),
    ],
)
def test_refusals_say_why(text: str, message: str) -> None:
    with pytest.raises(QueryError) as info:
        compile(parse_query(text, SCHEMA), SCHEMA)
    assert message in str(info.value)


def test_a_linked_query_needs_the_whole_schema() -> None:
    query = parse_query("count(*) from ltc linked to hospitals")
    with pytest.raises(QueryError, match="compiles against the whole schema"):
        compile(query, SCHEMA.dataset("ltc"))


def test_the_fingerprint_covers_the_linkage() -> None:
    def fp(text: str, schema: Schema = SCHEMA) -> bytes:
        return compile(parse_query(text, schema), schema).fingerprint()

    base = "mean(care_cost) from ltc linked to hospitals where hospitals.age >= 65"
    prints = {
        fp(base),
        fp("mean(care_cost) from ltc where care_cost >= 0"),
        fp("mean(care_cost) from ltc"),
        fp("mean(care_cost) from ltc linked to claims where claims.amount >= 65"),
        fp("mean(care_cost) from ltc linked to hospitals, claims where hospitals.age >= 65"),
        fp("mean(care_cost) from ltc linked to hospitals where hospitals.age >= 66"),
        fp(base + " min_intersection 10"),
        fp(base + " min_intersection 11"),
    }
    assert len(prints) == 8
    # ... and the other side's declaration: its normalisation, rule or max_rows
    for change in (
        {"linkage": Linkage("resident", "patient_id", "first", ("nfkc", "casefold"))},
        {"linkage": Linkage("resident", "patient_id", "last", ("nfkc", "alnum_only", "casefold"))},
        {"max_rows": 999},
    ):
        hospitals = dataclasses.replace(SCHEMA.dataset("hospitals"), **change)  # type: ignore[arg-type]
        other = Schema(tuple(hospitals if d.name == "hospitals" else d for d in SCHEMA.datasets))
        prints.add(fp(base, other))
    assert len(prints) == 11
    assert fp(base) == fp(
        "mean(ltc.care_cost) from ltc linked to hospitals where hospitals.age >= 65"
    )


def test_the_per_holder_evaluation_refuses_a_linked_plan() -> None:
    plan = compile(parse_query("count(*) from ltc linked to hospitals"), SCHEMA)
    with pytest.raises(InvalidInputError, match="evaluated per person"):
        Accumulator(plan)
    table = Table.from_columns(
        SCHEMA.dataset("ltc"), {"care_level": [], "service": [], "care_cost": []}
    )
    with pytest.raises(InvalidInputError, match="linkjoin"):
        plaintext(plan, [table])
    # decoding the sum of per-person vectors is the ordinary decoder
    assert decode(plan, np.asarray([7], dtype=np.uint64), 1).rows == [{"count": 7}]


_names = st.sampled_from(["hospitals", "ltc", "claims"])


@st.composite
def linked_queries(draw: st.DrawFn) -> Query:
    home = draw(_names)
    others = draw(st.lists(_names.filter(lambda n: n != home), min_size=1, max_size=2, unique=True))
    numeric = {"hospitals": ["age", "cost"], "ltc": ["care_cost"], "claims": ["amount"]}
    category = {"hospitals": ["sex", "diagnosis"], "ltc": ["care_level", "service"]}
    category["claims"] = ["claim_type"]
    where = []
    for side in [home, *others]:
        column = draw(st.sampled_from(numeric[side]))
        value = draw(st.integers(0, 100))
        prefix = "" if side == home and draw(st.booleans()) else f"{side}."
        where.append(Filter(prefix + column, draw(st.sampled_from(["<", ">=", "!="])), value))
    group = draw(st.lists(st.sampled_from(category[home]), max_size=1))
    aggregate = draw(st.sampled_from(["count", "sum", "mean", "variance"]))
    return Query(
        dataset=home,
        aggregate=aggregate,  # type: ignore[arg-type]
        column=None if aggregate == "count" else draw(st.sampled_from(numeric[home])),
        where=tuple(where),
        group_by=tuple(group),
        linked_to=tuple(others),
        min_intersection=draw(st.none() | st.integers(1, 1000)),
    )


@settings(max_examples=60, deadline=None)
@given(linked_queries())
def test_any_linked_query_round_trips_and_compiles(query: Query) -> None:
    assert parse_query(query.describe(), SCHEMA) == query
    assert Query.from_json(query.to_json()) == query
    plan = compile(query, SCHEMA)
    assert plan.linkage is not None
    assert plan.linkage.datasets == (query.dataset, *query.linked_to)
    split = sum(len(s.where) for s in plan.linkage.sides)
    assert split == len(query.where)
