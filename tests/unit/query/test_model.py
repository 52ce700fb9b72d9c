"""Queries: wire form, text form, compilation, layout, bounds and fingerprints."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pets.encoding import INT64_MAX
from pets.errors import QueryError
from pets.query import (
    Aggregate,
    Column,
    Dataset,
    Filter,
    Query,
    Schema,
    Table,
    compile,
    evaluate,
    model,
    parse_query,
    parse_where,
)

HOSPITALS = Dataset(
    "hospitals",
    (
        Column("age", "int", 0, 110),
        Column("sex", "category", domain=("F", "M")),
        Column("prefecture", "category", domain=("Tokyo", "Osaka", "Aichi")),
        Column("code", "category", domain=("01", "02")),
        Column("cost", "float", 0, 5000, 10),
        Column("weight", "float", scale=100),
    ),
    1000,
)
SERIES = Dataset("series", (), 1, kind="vector", length=4, lo=-1, hi=1, scale=1000)
SCHEMA = Schema((HOSPITALS, SERIES))


# -- text form -------------------------------------------------------------------


def test_parse_where_example() -> None:
    got = parse_where("age >= 65 and sex = F and prefecture in (Tokyo, Osaka)")
    assert got == (
        Filter("age", ">=", 65),
        Filter("sex", "=", "F"),
        Filter("prefecture", "in", ("Tokyo", "Osaka")),
    )


def test_parse_where_values() -> None:
    assert parse_where("") == ()
    assert parse_where("cost < 2.5e3 AND sex != 'M'") == (
        Filter("cost", "<", 2500.0),
        Filter("sex", "!=", "M"),
    )
    assert parse_where('prefecture == "Tokyo"') == (Filter("prefecture", "=", "Tokyo"),)
    assert parse_where("weight > -1.5") == (Filter("weight", ">", -1.5),)
    # numeric-looking category values stay strings when the dataset is known
    assert parse_where("code = 01") == (Filter("code", "=", 1),)
    assert parse_where("code in (01, 02)", HOSPITALS) == (Filter("code", "in", ("01", "02")),)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("age >=", "ends where"),
        ("age >= 65 and", "ends where"),
        ("age 65", "expected an operator"),
        ("age >= 65 sex = F", "unexpected 'sex'"),
        ("age ! 3", "cannot parse"),
        ("sex = 'F", "cannot parse"),
        ("prefecture in Tokyo", "expected '\\(' or '\\['"),
        ("age ~ 3", "expected an operator"),
    ],
)
def test_parse_where_errors(text: str, match: str) -> None:
    with pytest.raises(QueryError, match=match):
        parse_where(text)


def test_describe_examples() -> None:
    q = Query(
        "hospitals",
        Aggregate.mean,
        "cost",
        where=parse_where("age >= 65"),
        group_by=("prefecture",),
    )
    assert q.describe() == "mean(cost) from hospitals where age >= 65 group by prefecture"
    assert Query("hospitals", Aggregate.count).describe() == "count(*) from hospitals"
    q = Query("hospitals", Aggregate.histogram, "age", bins=(0, 18, 65, 110.5))
    assert q.describe() == "histogram(age) from hospitals bins [0, 18, 65, 110.5]"
    q = Query("hospitals", Aggregate.sum, "cost", where=(Filter("sex", "=", "and"),), clip=(0, 1e3))
    assert q.describe() == 'sum(cost) from hospitals where sex = "and" clip [0, 1000]'
    q = Query("hospitals", "vector_sum", columns=("age", "cost"))  # type: ignore[arg-type]
    assert q.describe() == "vector_sum(age, cost) from hospitals"
    assert parse_query("VARIANCE(age) FROM hospitals GROUP BY sex").aggregate == Aggregate.variance


_word = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,6}", fullmatch=True)
_value = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\"'"),
        min_size=1,
        max_size=8,
    ),
)


@st.composite
def _filters(draw: st.DrawFn) -> Filter:
    op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "in"]))
    if op == "in":
        return Filter(draw(_word), op, tuple(draw(st.lists(_value, min_size=1, max_size=3))))
    return Filter(draw(_word), op, draw(_value))


@st.composite
def _queries(draw: st.DrawFn) -> Query:
    agg = draw(st.sampled_from(list(Aggregate)))
    many = agg == Aggregate.vector_sum
    bins = draw(st.none() | st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=4))
    clip = draw(st.none() | st.tuples(st.floats(-1e3, 0), st.floats(0, 1e3)))
    return Query(
        dataset=draw(_word),
        aggregate=agg,
        column=None if many or agg == Aggregate.count else draw(_word),
        columns=tuple(draw(st.lists(_word, max_size=3))) if many else (),
        where=tuple(draw(st.lists(_filters(), max_size=3))),
        group_by=tuple(draw(st.lists(_word, max_size=2))),
        bins=None if bins is None else tuple(bins),
        clip=clip,
    )


@settings(max_examples=150, deadline=None)
@given(_queries())
def test_wire_and_text_round_trips(query: Query) -> None:
    assert Query.from_json(query.to_json()) == query
    assert Query.from_dict(json.loads(query.to_json())) == query
    assert parse_query(query.describe()) == query


def test_to_json_is_canonical() -> None:
    q = Query("hospitals", Aggregate.mean, "cost", where=(Filter("age", ">=", 65),))
    text = q.to_json()
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    assert text.startswith('{"aggregate":"mean","bins":null,"clip":null,"column":"cost"')
    assert Query.from_json(text.encode()) == q


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        ([], "must be an object"),
        ({"aggregate": "count"}, "missing 'dataset'"),
        ({"dataset": "d"}, "missing 'aggregate'"),
        ({"dataset": "d", "aggregate": "count", "limit": 1}, "unknown keys \\['limit'\\]"),
        ({"dataset": 1, "aggregate": "count"}, "dataset must be a string"),
        ({"dataset": "d", "aggregate": 3}, "aggregate must be a string"),
        ({"dataset": "d", "aggregate": "median"}, "unknown aggregate 'median'"),
        ({"dataset": "d", "aggregate": "sum", "column": 1}, "column must be a string"),
        ({"dataset": "d", "aggregate": "count", "group_by": "sex"}, "group_by must be a list"),
        ({"dataset": "d", "aggregate": "count", "group_by": [1]}, "group_by entry"),
        ({"dataset": "d", "aggregate": "count", "where": {}}, "where must be a list"),
        ({"dataset": "d", "aggregate": "count", "where": [["age", ">", 1]]}, "must be an object"),
        (
            {"dataset": "d", "aggregate": "count", "where": [{"column": "a", "op": ">"}]},
            "exactly the keys",
        ),
        (
            {
                "dataset": "d",
                "aggregate": "count",
                "where": [{"column": "a", "op": "~", "value": 1}],
            },
            "operator '~'",
        ),
        (
            {
                "dataset": "d",
                "aggregate": "count",
                "where": [{"column": "a", "op": "=", "value": True}],
            },
            "column 'a': value True",
        ),
        (
            {
                "dataset": "d",
                "aggregate": "count",
                "where": [{"column": "a", "op": "in", "value": 1}],
            },
            "'in' takes a list",
        ),
        (
            {
                "dataset": "d",
                "aggregate": "count",
                "where": [{"column": "a", "op": "in", "value": []}],
            },
            "at least one value",
        ),
        (
            {
                "dataset": "d",
                "aggregate": "count",
                "where": [{"column": "a", "op": "=", "value": [1]}],
            },
            "column 'a': value \\(1,\\)",
        ),
        ({"dataset": "d", "aggregate": "histogram", "bins": [0, True]}, "bins: True"),
        ({"dataset": "d", "aggregate": "histogram", "bins": "0,1"}, "bins must be a list"),
        ({"dataset": "d", "aggregate": "sum", "clip": [0, 1, 2]}, "clip must be \\[lo, hi\\]"),
        ({"dataset": "d", "aggregate": "sum", "clip": [2, 1]}, "clip is inverted"),
    ],
)
def test_from_dict_is_strict(obj: object, match: str) -> None:
    with pytest.raises(QueryError, match=match):
        Query.from_dict(obj)


def test_from_json_is_strict() -> None:
    with pytest.raises(QueryError, match="not valid JSON"):
        Query.from_json("{")
    with pytest.raises(QueryError, match="repeats the key 'dataset'"):
        Query.from_json('{"dataset":"a","dataset":"b","aggregate":"count"}')
    with pytest.raises(QueryError, match="NaN"):
        Query.from_json('{"dataset":"a","aggregate":"sum","clip":[NaN,1]}')


# -- compile -----------------------------------------------------------------------


def _plan(text: str):  # type: ignore[no-untyped-def]
    return compile(parse_query(text, HOSPITALS), SCHEMA)


def test_layouts_and_labels() -> None:
    plan = _plan("variance(cost) from hospitals group by sex, prefecture")
    assert plan.groups == tuple((s, p) for s in ("F", "M") for p in ("Tokyo", "Osaka", "Aichi"))
    assert plan.width == 3 and plan.length == 18
    assert plan.slot_labels[:4] == (
        "sex=F,prefecture=Tokyo:count",
        "sex=F,prefecture=Tokyo:sum(cost)",
        "sex=F,prefecture=Tokyo:sum_sq(cost)",
        "sex=F,prefecture=Osaka:count",
    )
    assert _plan("count(*) from hospitals").slot_labels == ("count",)
    assert _plan("histogram(sex) from hospitals").slot_labels == ("sex=F", "sex=M")
    assert _plan("histogram(age) from hospitals bins [0, 65, 110]").slot_labels == (
        "age in [0, 65)",
        "age in [65, 110]",
    )
    assert _plan("vector_sum(age, cost) from hospitals").slot_labels == (
        "count",
        "sum(age)",
        "sum(cost)",
    )
    vec = compile(parse_query("vector_sum(*) from series"), SCHEMA)
    assert vec.length == 4 and vec.slot_labels == ("[0]", "[1]", "[2]", "[3]")
    assert len(vec.slot_bounds()) == 4


def test_clip_narrows_schema_bounds() -> None:
    b = _plan("sum(cost) from hospitals clip [-100, 2000.04]").bound("cost")
    assert (b.lo, b.hi, b.lo_fixed, b.hi_fixed) == (0.0, 2000.04, 0, 20000)
    b = _plan("mean(weight) from hospitals clip [-2, 3]").bound("weight")
    assert (b.lo_fixed, b.hi_fixed) == (-200, 300)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("count(*) from clinics", "unknown dataset 'clinics'"),
        ("count(age) from hospitals", "count takes no column \\(got 'age'\\)"),
        ("sum(height) from hospitals", "no column 'height'"),
        ("sum(sex) from hospitals", "'sex' is a category column"),
        ("sum(*) from hospitals", "sum needs a numeric column"),
        ("sum(age, cost) from hospitals", "takes one column"),
        ("mean(weight) from hospitals", "column 'weight' has no bounds"),
        ("mean(weight) from hospitals clip [0, 1e14]", "bounds of column 'weight'.*2\\^53"),
        ("sum(age) from hospitals clip [200, 300]", "does not overlap the bounds of column 'age'"),
        ("count(*) from hospitals group by age", "'age' is int"),
        ("count(*) from hospitals group by sex, sex", "repeats a column"),
        ("count(*) from hospitals where sex = X", "column 'sex': value 'X' is not in its domain"),
        ("count(*) from hospitals where sex in (F, Y)", "value 'Y' is not in its domain"),
        ("count(*) from hospitals where code = 1", "column 'code': value '1' is not in its domain"),
        ("count(*) from hospitals where age = old", "column 'age': value 'old' is not a number"),
        ("count(*) from hospitals where sex < M", "operator '<' does not apply"),
        ("count(*) from hospitals where height > 1", "no column 'height'"),
        ("count(*) from hospitals clip [0, 1]", "clip does not apply to count"),
        ("sum(age) from hospitals bins [0, 1]", "bins apply to histograms only"),
        ("histogram(age) from hospitals", "'age' needs bins"),
        ("histogram(age) from hospitals bins [3]", "'age' needs bins"),
        (
            "histogram(age) from hospitals bins [0, 5, 5]",
            "of column 'age' must be strictly increasing",
        ),
        ("histogram(sex) from hospitals bins [0, 1]", "'sex' takes no bins"),
        ("histogram(age) from hospitals clip [0, 1]", "clip does not apply to histogram"),
        ("histogram(*) from hospitals", "histogram needs a column"),
        ("vector_sum(*) from hospitals", "needs columns"),
        ("vector_sum(age, age) from hospitals", "repeat a column"),
        ("vector_sum(age, sex) from hospitals", "'sex' is a category"),
        ("mean(*) from series", "its only aggregate is vector_sum"),
        ("vector_sum(age) from series", "takes no column"),
        ("vector_sum(*) from series where x = 1", "no columns to filter"),
        ("vector_sum(*) from series clip [5, 6]", "does not overlap the bounds of the vector"),
    ],
)
def test_compile_rejects_with_named_problem(text: str, match: str) -> None:
    with pytest.raises(QueryError, match=match):
        compile(parse_query(text, HOSPITALS), SCHEMA)


def test_compile_rejects_group_by_clashing_with_result_fields() -> None:
    ds = Dataset("d", (Column("count", "category", domain=("a",)),), 1)
    with pytest.raises(QueryError, match="'count' clashes"):
        compile(Query("d", Aggregate.count, group_by=("count",)), ds)


def test_compile_rejects_slots_beyond_64_bits() -> None:
    ds = Dataset("d", (Column("x", "float", 0, 1e9, 1000),), 10)
    compile(Query("d", Aggregate.sum, "x"), ds)  # 10 * 1e12 fits
    with pytest.raises(QueryError, match=r"sum_sq\(x\) of one holder.*max_rows=10"):
        compile(Query("d", Aggregate.variance, "x"), ds)


def test_compile_accepts_a_dataset_directly() -> None:
    plan = compile(Query("hospitals", Aggregate.count), HOSPITALS)
    assert plan.dataset is HOSPITALS
    with pytest.raises(QueryError, match="not 'series'"):
        compile(Query("hospitals", Aggregate.count), SERIES)


def test_model_reexports_compile() -> None:
    assert model.compile is compile
    assert model.QueryPlan is type(compile(Query("hospitals", Aggregate.count), SCHEMA))


# -- bounds --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "count(*) from hospitals",
        "sum(cost) from hospitals",
        "mean(weight) from hospitals clip [-3, 2]",
        "variance(weight) from hospitals clip [-3, 2]",
        "variance(weight) from hospitals clip [1, 2]",
        "variance(weight) from hospitals clip [-3, -2]",
        "histogram(age) from hospitals bins [0, 50, 100]",
        "vector_sum(age, weight) from hospitals clip [-7, 5]",
    ],
)
def test_holder_bounds_are_exact_and_safe(text: str) -> None:
    plan = _plan(text)
    lo, hi = plan.holder_bounds()
    m = HOSPITALS.max_rows
    seen_lo, seen_hi = INT64_MAX, -INT64_MAX
    rng = np.random.default_rng(1)
    tables = []
    for value in (-1e9, -2.5, -3.0, 0.0, 1.0, 1e9):  # extremes and values in between
        for n in (0, 1, m):
            tables.append(_table(np.full(n, value), rng))
    tables.append(_table(rng.uniform(-10, 10, m), rng))
    for table in tables:
        vec = evaluate(plan, table)
        for (slo, shi), v in zip(plan.slot_bounds(), vec.tolist(), strict=True):
            assert slo <= v <= shi
        seen_lo, seen_hi = min(seen_lo, int(vec.min())), max(seen_hi, int(vec.max()))
    assert (seen_lo, seen_hi) == (lo, hi)


def _table(values: np.ndarray, rng: np.random.Generator) -> Table:
    n = len(values)
    return Table.from_columns(
        HOSPITALS,
        {
            "age": np.clip(np.rint(values), -(10**6), 10**6),
            "sex": rng.integers(0, 2, n),
            "prefecture": np.zeros(n, dtype=np.int64),
            "code": np.zeros(n, dtype=np.int64),
            "cost": values,
            "weight": values,
        },
    )


def test_vector_holder_bounds() -> None:
    plan = compile(parse_query("vector_sum(*) from series clip [-0.5, 2]"), SCHEMA)
    assert plan.holder_bounds() == (-500, 1000)
    assert plan.max_holders() == INT64_MAX // 1000


def test_max_holders() -> None:
    plan = _plan("variance(cost) from hospitals")
    assert plan.max_holders() == INT64_MAX // (1000 * 50000**2)


# -- fingerprints ------------------------------------------------------------------


def test_fingerprint() -> None:
    text = "mean(cost) from hospitals where age >= 65 group by prefecture"
    fp = _plan(text).fingerprint()
    assert len(fp) == 32
    assert _plan(text).fingerprint() == fp
    again = compile(Query.from_json(parse_query(text).to_json()), SCHEMA)
    assert again.fingerprint() == fp
    assert _plan(text.replace("65", "66")).fingerprint() != fp
    wider = Dataset(HOSPITALS.name, HOSPITALS.columns, 2000)
    assert compile(parse_query(text), wider).fingerprint() != fp


def test_huge_integers_are_query_errors_not_crashes() -> None:
    from pets.errors import QueryError
    from pets.query import Query

    huge = 10**400
    with pytest.raises(QueryError, match="2\\^53"):
        Query.from_dict({"dataset": "h", "aggregate": "sum", "column": "x", "clip": [0, huge]})
    with pytest.raises(QueryError, match="too large"):
        Query.from_dict(
            {
                "dataset": "h",
                "aggregate": "count",
                "where": [{"column": "x", "op": ">", "value": huge}],
            }
        )
