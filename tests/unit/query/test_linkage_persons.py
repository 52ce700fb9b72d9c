"""The holder's per-person evaluation against the plaintext pandas join (pets.devtools.linkjoin).

The secure path is emulated up to the join: each holder's :func:`evaluate_persons`, the
matched set computed from the normalised identifiers as the servers' join computes it from
pseudonyms (union within a side, intersection across sides, value-side people per holder),
the sum of the matched people's vectors, and the ordinary decoder.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pets.devtools import datagen, datagen_linked
from pets.devtools.datafiles import write_generated
from pets.devtools.gen_fast import write_generated_fast
from pets.devtools.linkjoin import linked_intersection, linked_plaintext, read_frame
from pets.errors import InvalidInputError
from pets.linkage.persons import PersonAccumulator, PersonRecords, domain_of, evaluate_persons
from pets.query import (
    Column,
    Dataset,
    QueryPlan,
    Result,
    Schema,
    Table,
    compile,
    decode,
    evaluate,
    parse_csv,
    parse_query,
)
from pets.query.schema import ONE_ROW_RULES, Linkage

DATA = datagen.generate("linked", 2, 600, seed=7)
SCHEMA = DATA.schema


def _tables() -> dict[str, list[Table]]:
    out: dict[str, list[Table]] = {}
    for files in DATA.files.values():
        for dataset, text in files.items():
            out.setdefault(dataset, []).append(parse_csv(str(text), SCHEMA.dataset(dataset)))
    return out


def _frames() -> dict[str, list[pd.DataFrame]]:
    out: dict[str, list[pd.DataFrame]] = {}
    for files in DATA.files.values():
        for dataset, text in files.items():
            frame = pd.read_csv(io.StringIO(str(text)), dtype=str, keep_default_na=False)
            out.setdefault(dataset, []).append(frame)
    return out


TABLES = _tables()
FRAMES = _frames()


def secure_emulation(plan: QueryPlan, tables: Mapping[str, Sequence[Table]]) -> Result:
    """Per-person evaluation, the servers' join on identifiers, summed vectors, decode."""
    assert plan.linkage is not None
    others = []
    for side in plan.linkage.sides[1:]:
        people: set[bytes] = set()
        for table in tables[side.name]:
            people.update(evaluate_persons(plan, side.name, table).ids)
        others.append(people)
    value = plan.linkage.value_side
    total = np.zeros(plan.length, dtype=np.uint64)
    for table in tables[value.name]:
        rec = evaluate_persons(plan, value.name, table)
        matched = [i for i, ident in enumerate(rec.ids) if all(ident in o for o in others)]
        total += rec.sum_vectors(np.asarray(matched, dtype=np.int64))
    return decode(plan, total, len(tables[value.name]))


QUERIES = [
    "mean(care_cost) from ltc linked to hospitals where hospitals.diagnosis = E "
    "group by care_level",
    "count(*) from hospitals linked to ltc, claims where ltc.care_level in (care3, care4, care5)",
    "variance(amount) from claims linked to ltc group by claim_type",
    "sum(amount) from claims linked to hospitals where hospitals.age >= 75 and amount > 10",
    "histogram(age) from hospitals linked to claims where claims.claim_type = inpatient "
    "bins [0, 65, 75, 85, 110]",
    "histogram(service) from ltc linked to hospitals, claims group by care_level",
    "sum(cost) from hospitals linked to ltc where age >= 65 group by sex clip [0, 2000]",
]


@pytest.mark.parametrize("text", QUERIES)
def test_per_person_evaluation_equals_the_plaintext_join(text: str) -> None:
    plan = compile(parse_query(text, SCHEMA), SCHEMA)
    expected = linked_plaintext(plan, FRAMES)
    assert expected.rows  # every group is listed
    got = secure_emulation(plan, TABLES)
    assert got.close_to(expected), (got.rows, expected.rows)
    counted = sum(int(row.get("count", 0)) for row in got.rows)
    if plan.query.aggregate.value != "histogram":
        assert counted == linked_intersection(plan, FRAMES) > 0


def test_the_known_overlaps_are_what_the_declared_normalisation_links() -> None:
    overlaps = DATA.overlaps
    assert overlaps is not None
    persons = overlaps["persons"]
    assert isinstance(persons, dict)
    for dataset in datagen_linked.DATASETS:
        other = "ltc" if dataset == "hospitals" else "hospitals"
        plan = compile(parse_query(f"count(*) from {dataset} linked to {other}"), SCHEMA)
        people: set[bytes] = set()
        for table in TABLES[dataset]:
            people.update(evaluate_persons(plan, dataset, table).ids)
        assert len(people) == persons[dataset]
    both = overlaps["intersections"]
    assert isinstance(both, dict)
    plan = compile(parse_query("count(*) from ltc linked to hospitals"), SCHEMA)
    assert linked_intersection(plan, FRAMES) == both["hospitals&ltc"]
    assert secure_emulation(plan, TABLES).rows == [{"count": both["hospitals&ltc"]}]
    plan = compile(parse_query("count(*) from claims linked to hospitals, ltc"), SCHEMA)
    assert secure_emulation(plan, TABLES).rows == [{"count": both["hospitals&ltc&claims"]}]


def test_generated_data_has_messy_ids_duplicates_and_blanks() -> None:
    for dataset in datagen_linked.DATASETS:
        link = SCHEMA.dataset(dataset).linkage
        assert link is not None and link.domain == "resident"
        raw = np.concatenate([t.ids for t in TABLES[dataset] if t.ids is not None])
        assert any(str(v) != str(v).strip().casefold() for v in raw)  # messy
        assert "" in set(raw.tolist())  # blanks, dropped
        other = "ltc" if dataset == "claims" else "claims"
        plan = compile(parse_query(f"count(*) from {dataset} linked to {other}"), SCHEMA)
        rec = evaluate_persons(plan, dataset, TABLES[dataset][0])
        assert rec.dropped > 0 and len(rec) < rec.matched - rec.dropped  # repeats collapsed
        assert all(len(i) == 9 and i.startswith(b"r") for i in rec.ids)  # canonical form
        assert rec.domain == domain_of(plan.linkage.side(dataset))  # type: ignore[union-attr]


def test_files_written_by_gen_data_give_the_same_answer(tmp_path: Path) -> None:
    written = write_generated("linked", 2, 600, 7, tmp_path / "csv")
    assert (tmp_path / "csv" / "linkage.json") in written
    assert json.loads((tmp_path / "csv" / "linkage.json").read_text()) == DATA.overlaps
    write_generated_fast("linked", 2, 600, 7, tmp_path / "pq", "parquet")
    text = QUERIES[0]
    plan = compile(parse_query(text, SCHEMA), SCHEMA)
    expected = linked_plaintext(plan, FRAMES)
    for root, suffix in ((tmp_path / "csv", "csv"), (tmp_path / "pq", "parquet")):
        schema = Schema.from_toml((root / "schema.toml").read_text())
        assert schema == SCHEMA
        paths: dict[str, list[Path]] = {}
        for holder in DATA.holders:
            for dataset in DATA.files[holder]:
                paths.setdefault(dataset, []).append(root / holder / f"{dataset}.{suffix}")
        assert linked_plaintext(plan, paths).close_to(expected)
        frame = read_frame(paths["ltc"][0], "ltc")
        assert next(iter(frame.columns)) == "resident_id"


def _hand_schema(rule: str = "first") -> Schema:
    return Schema(
        (
            Dataset(
                "a",
                (Column("x", "float", 0, 100, 10), Column("g", "category", domain=("u", "v"))),
                50,
                linkage=Linkage("people", "pid", rule, ("nfkc", "remove_whitespace", "casefold")),
            ),
            Dataset(
                "b",
                (Column("y", "int", 0, 9),),
                50,
                linkage=Linkage("people", "bid", "first", ("nfkc", "strip", "casefold")),
            ),
        )
    )


def test_empty_and_full_intersections() -> None:
    schema = _hand_schema()
    a = Table.from_columns(
        schema.dataset("a"),
        {"pid": ["P 1", "p2", "P3", "p 1"], "x": [1.0, 2.0, 3.0, 4.0], "g": ["u", "v", "u", "v"]},
    )
    b = Table.from_columns(
        schema.dataset("b"), {"bid": [" p1", "P2 ", "p3", "p9"], "y": [1, 2, 3, 4]}
    )
    frames = {
        "a": [pd.DataFrame({"pid": a.ids, "x": [1.0, 2.0, 3.0, 4.0], "g": list("uvuv")})],
        "b": [pd.DataFrame({"bid": b.ids, "y": [1, 2, 3, 4]})],
    }
    tables = {"a": [a], "b": [b]}
    full = compile(parse_query("mean(x) from a linked to b group by g", schema), schema)
    got = secure_emulation(full, tables)
    assert got.close_to(linked_plaintext(full, frames))
    assert got.rows == [  # all three people of a matched; p1 kept from its first row
        {"g": "u", "count": 2, "mean": 2.0},
        {"g": "v", "count": 1, "mean": 2.0},
    ]
    empty = compile(parse_query("mean(x) from a linked to b where b.y > 3", schema), schema)
    got = secure_emulation(empty, tables)
    assert got.close_to(linked_plaintext(empty, frames))
    assert got.rows == [{"count": 0, "mean": None}]


@pytest.mark.parametrize("rule", ONE_ROW_RULES)
def test_each_rule_collapses_repeats(rule: str) -> None:
    schema = _hand_schema(rule)
    ids = ["k", "K", "m", " k "]
    x = [10.0, 30.0, 5.0, 20.0]
    g = ["u", "v", "v", "u"]
    a = Table.from_columns(schema.dataset("a"), {"pid": ids, "x": x, "g": g})
    b = Table.from_columns(schema.dataset("b"), {"bid": ["k", "m"], "y": [0, 0]})
    plan = compile(parse_query("sum(x) from a linked to b group by g", schema), schema)
    if rule == "reject":
        with pytest.raises(InvalidInputError, match="repeats an identifier"):
            evaluate_persons(plan, "a", a)
        return
    rec = evaluate_persons(plan, "a", a)
    assert rec.ids == [b"k", b"m"]
    want = {"first": 10.0, "last": 20.0, "sum": 60.0, "min": 10.0, "max": 30.0}[rule]
    group_of_k = {"first": "u", "last": "u"}.get(rule, "u")  # sum/min/max: the first row's
    result = decode(plan, rec.sum_vectors([0]), 1)
    assert {r["g"]: r["sum"] for r in result.rows}[group_of_k] == want
    frames = {
        "a": [pd.DataFrame({"pid": ids, "x": x, "g": g})],
        "b": [pd.DataFrame({"bid": ["k", "m"], "y": [0, 0]})],
    }
    assert secure_emulation(plan, {"a": [a], "b": [b]}).close_to(linked_plaintext(plan, frames))


def test_a_person_vector_is_the_ordinary_encoding_of_one_row() -> None:
    plan = compile(parse_query(QUERIES[2], SCHEMA), SCHEMA)  # variance(amount) by claim_type
    table = TABLES["claims"][0]
    rec = evaluate_persons(plan, "claims", table)
    assert rec.width == plan.length == 4 * 3
    persons = np.arange(len(rec), dtype=np.int64)
    vectors = rec.vectors(persons)
    assert vectors.dtype == np.uint64 and vectors.shape == (len(rec), plan.length)
    assert np.array_equal(vectors.sum(axis=0, dtype=np.uint64), rec.sum_vectors(persons))
    ordinary = compile(parse_query("variance(amount) from claims group by claim_type"), SCHEMA)
    # the 'sum' rule: a person's row is (first claim type, total amount)
    ids = table.ids
    assert ids is not None
    first: dict[bytes, int] = {}
    totals: dict[bytes, float] = {}
    for i, raw in enumerate(ids.tolist()):
        key = raw.strip().casefold().encode()
        if not key:
            continue
        first.setdefault(key, i)
        totals[key] = totals.get(key, 0.0) + float(table.values("amount")[i])
    for p in (0, 1, len(rec) - 1):
        key = rec.ids[p]
        one = Table.from_columns(
            SCHEMA.dataset("claims"),
            {
                "claim_type": table.values("claim_type")[[first[key]]],
                "amount": [totals[key]],
            },
        )
        assert np.array_equal(vectors[p], evaluate(ordinary, one).view(np.uint64))


def test_cells_count_people_per_released_cell() -> None:
    plan = compile(parse_query(QUERIES[5], SCHEMA), SCHEMA)  # histogram(service) by care_level
    rec = evaluate_persons(plan, "ltc", TABLES["ltc"][0])
    cells = rec.cells()
    assert cells.shape == (7 * 3,) and int(cells.sum()) == len(rec)
    everyone = np.arange(len(rec), dtype=np.int64)
    assert np.array_equal(cells, rec.vectors(everyone).view(np.int64).sum(axis=0))
    assert int(rec.cells([0, 1]).sum()) == 2
    plan = compile(parse_query(QUERIES[0], SCHEMA), SCHEMA)  # mean by care_level
    rec = evaluate_persons(plan, "ltc", TABLES["ltc"][0])
    counts = rec.vectors(np.arange(len(rec))).view(np.int64).reshape(len(rec), 7, 2)[:, :, 0]
    assert np.array_equal(rec.cells(), counts.sum(axis=0))


def test_streaming_batches_equal_one_table() -> None:
    plan = compile(parse_query(QUERIES[0], SCHEMA), SCHEMA)
    table = TABLES["ltc"][0]
    whole = evaluate_persons(plan, "ltc", table)
    acc = PersonAccumulator(plan, "ltc")
    n = table.n_rows
    ids = table.ids
    assert ids is not None
    for start in range(0, n, 97):
        stop = min(n, start + 97)
        part = Table(table.dataset, {c: v[start:stop] for c, v in table.columns.items()}, ids=None)
        acc.push(part, ids[start:stop])
    streamed = acc.finish()
    assert streamed.ids == whole.ids
    everyone = np.arange(len(whole), dtype=np.int64)
    assert np.array_equal(streamed.vectors(everyone), whole.vectors(everyone))
    assert (streamed.rows, streamed.matched, streamed.dropped) == (
        whole.rows,
        whole.matched,
        whole.dropped,
    )
    assert "r0" not in repr(whole) and "persons=" in repr(whole)


def test_refusals() -> None:
    plan = compile(parse_query(QUERIES[0], SCHEMA), SCHEMA)
    ltc = TABLES["ltc"][0]
    with pytest.raises(InvalidInputError, match="not a linked query"):
        PersonAccumulator(compile(parse_query("count(*) from ltc"), SCHEMA), "ltc")
    with pytest.raises(Exception, match="not a side of this linked query"):
        PersonAccumulator(plan, "claims")
    with pytest.raises(InvalidInputError, match="not a table of dataset 'hospitals'"):
        evaluate_persons(plan, "hospitals", ltc)
    bare = Table(ltc.dataset, ltc.columns)
    with pytest.raises(InvalidInputError, match="identifier column 'resident_id' was not read"):
        evaluate_persons(plan, "ltc", bare)
    with pytest.raises(InvalidInputError, match="identifiers for a batch of"):
        evaluate_persons(plan, "ltc", bare, ids=["x"])
    hospitals = evaluate_persons(plan, "hospitals", TABLES["hospitals"][0])
    assert hospitals.width == 0
    with pytest.raises(InvalidInputError, match="identifiers only"):
        hospitals.vectors([0])
    rec = evaluate_persons(plan, "ltc", ltc)
    with pytest.raises(InvalidInputError, match="out of range"):
        rec.vectors([len(rec)])
    small = Schema(
        tuple(
            Dataset(d.name, d.columns, 10, linkage=d.linkage) if d.name == "ltc" else d
            for d in SCHEMA.datasets
        )
    )
    plan = compile(parse_query(QUERIES[0], small), small)
    big = Table(small.dataset("ltc"), ltc.columns, ids=ltc.ids)
    with pytest.raises(InvalidInputError, match="more than max_rows=10 rows"):
        evaluate_persons(plan, "ltc", big)


# -- property: the sum over any id set decodes to the pandas answer -------------------------


@st.composite
def linked_case(draw: st.DrawFn) -> tuple[str, str, list[str], list[float], list[str], list[str]]:
    rule = draw(st.sampled_from([r for r in ONE_ROW_RULES if r != "reject"]))
    aggregate = draw(st.sampled_from(["count", "sum", "mean", "variance", "histogram"]))
    n = draw(st.integers(0, 25))
    people = [f"p{k}" for k in range(8)]
    raw_ids = []
    for _ in range(n):
        person = draw(st.sampled_from(people))
        form = draw(st.sampled_from(["{}", " {} ", "{} ", "{}"]))
        upper = draw(st.booleans())
        text = form.format(person)
        raw_ids.append(text.upper() if upper else text)
    x = draw(
        st.lists(
            st.floats(-20, 120, allow_nan=False).map(lambda v: round(v, 1)), min_size=n, max_size=n
        )
    )
    g = draw(st.lists(st.sampled_from(["u", "v"]), min_size=n, max_size=n))
    subset = draw(st.lists(st.sampled_from([*people, "nobody"]), unique=True, max_size=9))
    return rule, aggregate, raw_ids, x, g, subset


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(linked_case())
def test_summed_person_vectors_over_any_id_set_decode_to_pandas(
    case: tuple[str, str, list[str], list[float], list[str], list[str]],
) -> None:
    rule, aggregate, raw_ids, x, g, subset = case
    schema = _hand_schema(rule)
    text = {
        "count": "count(*) from a linked to b group by g",
        "sum": "sum(x) from a linked to b where x > 0 group by g",
        "mean": "mean(x) from a linked to b group by g",
        "variance": "variance(x) from a linked to b",
        "histogram": "histogram(x) from a linked to b bins [0, 25, 50, 100]",
    }[aggregate]
    plan = compile(parse_query(text, schema), schema)
    table = Table.from_columns(schema.dataset("a"), {"pid": raw_ids, "x": x, "g": g})
    rec = evaluate_persons(plan, "a", table)
    chosen = [i for i, ident in enumerate(rec.ids) if ident.decode() in subset]
    got = decode(plan, rec.sum_vectors(np.asarray(chosen, dtype=np.int64)), 1)
    frames = {
        "a": [pd.DataFrame({"pid": raw_ids, "x": x, "g": g})],
        "b": [pd.DataFrame({"bid": subset, "y": [0] * len(subset)})],
    }
    assert got.close_to(linked_plaintext(plan, frames)), (got.rows, rule)
    assert isinstance(rec, PersonRecords)
