"""Schema: TOML format, round trips, defaults and strict validation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pets.errors import QueryError, SchemaError
from pets.query import Column, Dataset, Schema
from pets.query import schema as schema_module

EXAMPLE = """
[datasets.hospitals]
max_rows = 10000

[[datasets.hospitals.columns]]
name = "age"
type = "int"
lo = 0
hi = 110

[[datasets.hospitals.columns]]
name = "sex"
type = "category"
domain = ["F", "M"]

[[datasets.hospitals.columns]]
name = "cost"
type = "float"
lo = 0.0
hi = 5000.5

[[datasets.hospitals.columns]]
name = "weight"
type = "float"

[datasets.emissions_daily]
kind = "vector"
length = 365
lo = 0.0
hi = 1000000.0
"""


def test_example_parses_with_defaults() -> None:
    schema = Schema.from_toml(EXAMPLE)
    assert schema.names == ("hospitals", "emissions_daily")
    hospitals = schema.dataset("hospitals")
    assert hospitals.max_rows == 10000
    assert hospitals.kind == "table"
    age, sex, cost, weight = hospitals.columns
    assert (age.lo, age.hi, age.scale) == (0.0, 110.0, 1)
    assert sex.domain == ("F", "M") and sex.scale == 1 and not sex.is_numeric
    assert cost.scale == 100 and cost.hi == 5000.5
    assert weight.lo is None and weight.hi is None
    vector = schema.dataset("emissions_daily")
    assert (vector.kind, vector.length, vector.scale, vector.max_rows) == ("vector", 365, 100, 1)


def test_module_docstring_example_parses() -> None:
    doc = schema_module.__doc__ or ""
    start = doc.index("[datasets.hospitals]")
    end = doc.index("Names of datasets")
    text = "\n".join(line[4:] for line in doc[start - 4 : end].splitlines())
    schema = Schema.from_toml(text)
    assert schema.names == ("hospitals", "emissions_daily")


def test_toml_round_trip() -> None:
    schema = Schema.from_toml(EXAMPLE)
    text = schema.to_toml()
    assert Schema.from_toml(text) == schema
    assert Schema.from_toml(text).to_toml() == text
    assert Schema.from_dict(schema.to_dict()) == schema


def test_unknown_dataset_is_a_query_error() -> None:
    with pytest.raises(QueryError, match="unknown dataset 'patients'"):
        Schema.from_toml(EXAMPLE).dataset("patients")


def test_unknown_column_is_a_query_error() -> None:
    with pytest.raises(QueryError, match="no column 'height'"):
        Schema.from_toml(EXAMPLE).dataset("hospitals").column("height")


_names = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)
_domain_value = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zs"), blacklist_characters="\"'\\"),
    min_size=1,
    max_size=6,
)
_bound = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@st.composite
def _column(draw: st.DrawFn, name: str) -> Column:
    kind = draw(st.sampled_from(["int", "float", "category"]))
    if kind == "category":
        domain = draw(st.lists(_domain_value, min_size=1, max_size=4, unique=True))
        return Column(name, "category", domain=tuple(domain))
    lo, hi = sorted((draw(_bound), draw(_bound)))
    lo_opt = draw(st.sampled_from([lo, None]))
    hi_opt = draw(st.sampled_from([hi, None]))
    return Column(name, kind, lo_opt, hi_opt, draw(st.integers(1, 1000)))


@st.composite
def _schema(draw: st.DrawFn) -> Schema:
    names = draw(st.lists(_names, min_size=1, max_size=3, unique=True))
    datasets = []
    for name in names:
        if draw(st.booleans()):
            lo, hi = sorted((draw(_bound), draw(_bound)))
            datasets.append(
                Dataset(
                    name,
                    (),
                    1,
                    "vector",
                    draw(st.integers(1, 10)),
                    lo,
                    hi,
                    draw(st.integers(1, 100)),
                )
            )
        else:
            cols = draw(st.lists(_names, min_size=1, max_size=4, unique=True))
            columns = tuple(draw(_column(c)) for c in cols)
            datasets.append(Dataset(name, columns, draw(st.integers(1, 10**6))))
    return Schema(tuple(datasets))


@settings(max_examples=80, deadline=None)
@given(_schema())
def test_toml_round_trip_property(schema: Schema) -> None:
    assert Schema.from_toml(schema.to_toml()) == schema


def _dataset_toml(body: str, columns: str = "") -> str:
    return f"[datasets.d]\n{body}\n{columns}"


COL = '[[datasets.d.columns]]\nname = "x"\n'

BAD = [
    ("", "missing or empty 'datasets'"),
    ("[datasets", "not valid TOML"),
    ("version = 1\n[datasets.d]\nmax_rows = 1\n" + COL + 'type = "int"\n', "unknown top-level"),
    (_dataset_toml("max_rows = 1"), "dataset 'd': a table dataset needs at least one column"),
    (_dataset_toml("", COL + 'type = "int"\n'), "dataset 'd': missing 'max_rows'"),
    (_dataset_toml("max_rows = 0", COL + 'type = "int"\n'), "dataset 'd': max_rows"),
    (_dataset_toml("max_rows = true", COL + 'type = "int"\n'), "dataset 'd': max_rows"),
    (_dataset_toml("max_rows = 1\nrows = 2", COL + 'type = "int"\n'), "dataset 'd': unknown keys"),
    (_dataset_toml("max_rows = 1", COL), "column 'x': missing 'type'"),
    (_dataset_toml("max_rows = 1", COL + 'type = "text"\n'), "column 'x': type 'text'"),
    (_dataset_toml("max_rows = 1", COL + 'type = "int"\nlo = 5\nhi = 1\n'), "column 'x'.*inverted"),
    (
        _dataset_toml("max_rows = 1", COL + 'type = "int"\nlo = "a"\n'),
        "column 'x': lo must be a number",
    ),
    (
        _dataset_toml("max_rows = 1", COL + 'type = "int"\nlo = nan\n'),
        "column 'x': lo must be finite",
    ),
    (_dataset_toml("max_rows = 1", COL + 'type = "float"\nscale = 0\n'), "column 'x': scale"),
    (
        _dataset_toml("max_rows = 1", COL + 'type = "float"\nhi = 1e15\nscale = 100\n'),
        "column 'x'.*2\\^53",
    ),
    (
        _dataset_toml("max_rows = 1", COL + 'type = "int"\ndomain = ["a"]\n'),
        "column 'x': a numeric column has no domain",
    ),
    (
        _dataset_toml("max_rows = 1", COL + 'type = "category"\n'),
        "column 'x': a category column needs a non-empty domain",
    ),
    (
        _dataset_toml("max_rows = 1", COL + 'type = "category"\ndomain = ["a", "a"]\n'),
        "column 'x': domain value 'a' is repeated",
    ),
    (
        _dataset_toml("max_rows = 1", COL + 'type = "category"\ndomain = ["a", " b"]\n'),
        "column 'x': domain value ' b'",
    ),
    (
        _dataset_toml("max_rows = 1", COL + 'type = "category"\ndomain = "ab"\n'),
        "column 'x': domain must be a list",
    ),
    (
        _dataset_toml("max_rows = 1", COL + 'type = "category"\ndomain = ["a"]\nlo = 0\n'),
        "column 'x': a category column has no bounds",
    ),
    (
        _dataset_toml("max_rows = 1", COL + 'type = "int"\nunit = "kg"\n'),
        "column 'x': unknown keys",
    ),
    (
        _dataset_toml("max_rows = 1", COL + 'type = "int"\n' + COL + 'type = "int"\n'),
        "column 'x' is declared twice",
    ),
    (
        _dataset_toml("max_rows = 1", '[[datasets.d.columns]]\nname = "9x"\ntype = "int"\n'),
        "column name '9x'",
    ),
    ('[datasets."my data"]\nmax_rows = 1\n', "dataset name 'my data'"),
    (_dataset_toml('kind = "cube"\nmax_rows = 1'), "dataset 'd': kind 'cube'"),
    (
        _dataset_toml('kind = "vector"\nlength = 3\nlo = 0'),
        "dataset 'd': a vector dataset needs bounds",
    ),
    (_dataset_toml('kind = "vector"\nlo = 0\nhi = 1'), "dataset 'd': length"),
    (
        _dataset_toml('kind = "vector"\nlength = 3\nlo = 0\nhi = 1\nmax_rows = 2'),
        "dataset 'd': a vector dataset has max_rows = 1",
    ),
    (
        _dataset_toml('kind = "vector"\nlength = 3\nlo = 0\nhi = 1', COL + 'type = "int"\n'),
        "dataset 'd': a vector dataset has no columns",
    ),
    (
        _dataset_toml("max_rows = 1\nlength = 3", COL + 'type = "int"\n'),
        "dataset 'd': length/lo/hi belong to vector",
    ),
]


@pytest.mark.parametrize(("text", "match"), BAD)
def test_invalid_schemas_are_rejected_with_a_named_problem(text: str, match: str) -> None:
    with pytest.raises(SchemaError, match=match):
        Schema.from_toml(text)


def test_constructor_validation() -> None:
    with pytest.raises(SchemaError, match="at least one dataset"):
        Schema(())
    ds = Dataset("d", (Column("x", "int"),), 1)
    with pytest.raises(SchemaError, match="dataset 'd' is declared twice"):
        Schema((ds, ds))
    assert Column("x", "float").scale == 100
    assert Column("c", "category", domain=["a", "b"]).domain == ("a", "b")  # type: ignore[arg-type]


def test_toml_strings_are_escaped() -> None:
    schema = Schema((Dataset("d", (Column("c", "category", domain=("a\\b", "東京", "x y")),), 3),))
    text = schema.to_toml()
    assert Schema.from_toml(text) == schema
