"""Linkage declarations in schemas: validation, TOML/JSON round trips, and the pinned name lists."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pets.errors import SchemaError
from pets.linkage.dedup import ONE_ROW_RULES
from pets.linkage.domain import LinkageDomain
from pets.linkage.normalise import DEFAULT_NORMALISATION, NORMALISATION_STEPS
from pets.query import Column, Dataset, Schema
from pets.query import schema as schema_module
from pets.query.schema import Linkage

TOML = """
[datasets.ltc]
max_rows = 100

[[datasets.ltc.columns]]
name = "care_cost"
type = "float"
lo = 0
hi = 3000

[datasets.ltc.linkage]
domain = "resident"
id_column = "resident_id"
normalisation = ["nfkc", "remove_whitespace", "casefold"]
one_row = "last"

[datasets.hospitals]
max_rows = 100

[[datasets.hospitals.columns]]
name = "age"
type = "int"
lo = 0
hi = 110
"""


def test_the_query_layer_lists_equal_the_linkage_core() -> None:
    # pets.query sits below pets.linkage and keeps copies of these lists.
    assert schema_module.NORMALISATION_STEPS == NORMALISATION_STEPS
    assert schema_module.ONE_ROW_RULES == ONE_ROW_RULES
    assert schema_module.DEFAULT_NORMALISATION == DEFAULT_NORMALISATION


def test_toml_declares_a_linkage_and_round_trips() -> None:
    schema = Schema.from_toml(TOML)
    ltc = schema.dataset("ltc")
    assert ltc.linkage == Linkage(
        "resident", "resident_id", "last", ("nfkc", "remove_whitespace", "casefold")
    )
    assert schema.dataset("hospitals").linkage is None
    assert Schema.from_toml(schema.to_toml()) == schema
    assert Schema.from_dict(schema.to_dict()) == schema


def test_an_unlinked_dataset_keeps_its_dict_form() -> None:
    # Its fingerprint is built from to_dict: no "linkage" key, so it did not change.
    ds = Schema.from_toml(TOML).dataset("hospitals")
    assert "linkage" not in ds.to_dict()


def test_normalisation_defaults_to_the_core_default() -> None:
    link = Linkage.from_dict({"domain": "resident", "id_column": "pid", "one_row": "first"})
    assert link.normalisation == DEFAULT_NORMALISATION


def test_every_valid_domain_name_is_one_the_core_accepts() -> None:
    for name in ("resident", "jp-resident-id", "a", "x.y_z-0", "9" * 64):
        link = Linkage(name, "pid", "first")
        assert LinkageDomain(link.domain, link.normalisation).name == name


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"domain": "Resident"}, "linkage domain 'Resident' must be"),
        ({"domain": ""}, "linkage domain '' must be"),
        ({"domain": "a" * 65}, "must be 1 to 64 characters"),
        ({"domain": "-x"}, "starting with a letter or digit"),
        ({"one_row": "average"}, "unknown one-row-per-person rule 'average'; expected one of"),
        ({"normalisation": ["nfkc", "upper"]}, "unknown identifier normalisation step 'upper'"),
        ({"normalisation": "nfkc"}, "normalisation must be a list"),
        ({"id_column": "1bad"}, "linkage id column name '1bad' is not an identifier"),
        ({"colour": "red"}, "linkage: unknown keys ['colour']"),
    ],
)
def test_bad_declarations_are_refused_clearly(settings: dict[str, object], message: str) -> None:
    body = {"domain": "resident", "id_column": "pid", "one_row": "first", **settings}
    with pytest.raises(SchemaError, match="ltc") as info:
        Dataset.from_dict(
            {
                "name": "ltc",
                "max_rows": 10,
                "columns": [{"name": "cost", "type": "float"}],
                "linkage": body,
            }
        )
    assert message in str(info.value)


@pytest.mark.parametrize("missing", ["domain", "id_column", "one_row"])
def test_a_declaration_missing_a_key_is_refused(missing: str) -> None:
    body = {"domain": "resident", "id_column": "pid", "one_row": "first"}
    del body[missing]
    with pytest.raises(SchemaError, match=f"missing '{missing}'"):
        Linkage.from_dict(body)


def test_the_id_column_is_not_an_ordinary_column() -> None:
    with pytest.raises(SchemaError, match="also declared as a column"):
        Dataset(
            "ltc", (Column("pid", "int", 0, 10),), 10, linkage=Linkage("resident", "pid", "first")
        )


def test_a_vector_dataset_cannot_be_linked() -> None:
    with pytest.raises(SchemaError, match="vector dataset cannot be linked"):
        Dataset(
            "v",
            (),
            1,
            kind="vector",
            length=3,
            lo=0,
            hi=1,
            linkage=Linkage("resident", "pid", "first"),
        )


_steps = st.lists(st.sampled_from(NORMALISATION_STEPS), max_size=4).map(tuple)
_domains = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True)


@settings(max_examples=50, deadline=None)
@given(_domains, st.sampled_from(ONE_ROW_RULES), _steps)
def test_any_declaration_round_trips_through_toml(
    domain: str, rule: str, steps: tuple[str, ...]
) -> None:
    link = Linkage(domain, "person_id", rule, steps)
    schema = Schema((Dataset("d", (Column("v", "int", 0, 9),), 10, linkage=link),))
    assert Schema.from_toml(schema.to_toml()) == schema
    assert LinkageDomain(link.domain, link.normalisation).normalisation == steps
