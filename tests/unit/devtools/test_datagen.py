"""Synthetic data: determinism, validity against its own schema, and safe scales."""

from __future__ import annotations

import numpy as np
import pytest

from pets.devtools import datagen
from pets.errors import InvalidInputError
from pets.query import Table, compile, decode, evaluate, parse_csv, parse_query, plaintext


def test_hospitals_are_deterministic_and_valid() -> None:
    data = datagen.generate("hospitals", 3, 400, seed=11)
    assert data.holders == ["hospital-01", "hospital-02", "hospital-03"]
    assert datagen.generate("hospitals", 3, 400, seed=11) == data
    assert datagen.generate("hospitals", 3, 400, seed=12).files != data.files
    # a holder's data does not depend on how many holders were generated
    assert (
        datagen.generate("hospitals", 1, 400, seed=11).files["hospital-01"]
        == data.files["hospital-01"]
    )
    schema = data.schema
    assert schema.names == ("hospitals",)
    ds = schema.dataset("hospitals")
    assert ds.max_rows == 1000
    for files in data.files.values():
        table = parse_csv(str(files["hospitals"]), ds)
        assert table.n_rows == 400
        for column in ds.columns:  # generated values never need clipping
            if column.is_numeric:
                values = table.values(column.name)
                assert column.lo is not None and column.hi is not None
                assert column.lo <= values.min() and values.max() <= column.hi
    tables = [parse_csv(str(f["hospitals"]), ds) for f in data.files.values()]
    labels = np.concatenate([t.labels("diagnosis") for t in tables])
    assert set(labels) == set(datagen.DIAGNOSES)  # every chapter occurs
    ages = np.concatenate([t.values("age") for t in tables])
    assert np.median(ages) > 50  # inpatients skew old


def test_supply_chain_has_a_table_and_a_vector_dataset() -> None:
    data = datagen.generate("supply_chain", 2, 150, seed=3)
    assert data.holders == ["supplier-01", "supplier-02"]
    schema = data.schema
    assert schema.names == ("supply_chain", "emissions_daily")
    vec_ds = schema.dataset("emissions_daily")
    for files in data.files.values():
        parse_csv(str(files["supply_chain"]), schema.dataset("supply_chain"))
        vector = files["emissions_daily"]
        assert isinstance(vector, np.ndarray) and vector.shape == (365,)
        Table.from_vector(vec_ds, vector)
        assert vector.min() >= 0 and vector.max() <= 1e6
    plan = compile(parse_query("vector_sum(*) from emissions_daily"), schema)
    tables = [Table.from_vector(vec_ds, f["emissions_daily"]) for f in data.files.values()]
    total = sum(evaluate(plan, t).view(np.uint64) for t in tables)
    assert decode(plan, total, 2).close_to(plaintext(plan, tables))


def test_holder_names_widen_for_many_holders() -> None:
    data = datagen.generate("supply_chain", 100, 1, seed=0)
    assert data.holders[0] == "supplier-001" and data.holders[-1] == "supplier-100"


def test_scales_leave_room_for_a_thousand_holders() -> None:
    schema = datagen.generate("hospitals", 1, 10_000, seed=0).schema
    for text in [
        "variance(cost) from hospitals group by prefecture",
        "variance(length_of_stay) from hospitals",
        "variance(age) from hospitals",
    ]:
        assert compile(parse_query(text), schema).max_holders() >= 1000
    schema = datagen.generate("supply_chain", 1, 10_000, seed=0).schema
    assert compile(parse_query("sum(kg_co2e) from supply_chain"), schema).max_holders() >= 1000
    # documented: a kg_co2e variance needs a clip for large federations
    wide = compile(parse_query("variance(kg_co2e) from supply_chain"), schema)
    clipped = compile(parse_query("variance(kg_co2e) from supply_chain clip [0, 1000]"), schema)
    assert wide.max_holders() < 1000 <= clipped.max_holders()


def test_secure_sum_matches_plaintext_on_generated_data() -> None:
    data = datagen.generate("hospitals", 4, 300, seed=5)
    ds = data.schema.dataset("hospitals")
    tables = [parse_csv(str(f["hospitals"]), ds) for f in data.files.values()]
    for text in [
        "mean(cost) from hospitals where age >= 65 group by prefecture",
        "variance(length_of_stay) from hospitals group by diagnosis, sex",
        "histogram(age) from hospitals bins [0, 18, 40, 65, 80, 110]",
    ]:
        plan = compile(parse_query(text), ds)
        total = sum(evaluate(plan, t).view(np.uint64) for t in tables)
        assert decode(plan, total, len(tables)).close_to(plaintext(plan, tables))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("weather", 1, 1, 0), "unknown data kind 'weather'"),
        (("hospitals", 0, 1, 0), "holders must be an integer >= 1"),
        (("hospitals", 1, 0, 0), "rows must be an integer >= 1"),
        (("hospitals", 1, 1, -1), "seed must be an integer >= 0"),
    ],
)
def test_bad_arguments(args: tuple, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        datagen.generate(*args)
