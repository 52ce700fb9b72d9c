"""The chunked generator writes the demo generator's schema and columns, in both formats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pets.devtools import datagen
from pets.devtools.gen_fast import write_generated_fast
from pets.errors import InvalidInputError
from pets.query import Schema, compile, parse_query
from pets.sources import check_source, evaluate_source, open_source, read_table


@pytest.mark.parametrize("kind", datagen.KINDS)
def test_both_formats_hold_the_same_rows_of_the_same_schema(kind: str, tmp_path: Path) -> None:
    written = {
        fmt: write_generated_fast(kind, 2, 3000, 5, tmp_path / fmt, fmt, chunk_rows=1000)  # type: ignore[arg-type]
        for fmt in ("parquet", "csv")
    }
    schema = Schema.from_toml(written["csv"][0].read_text())
    assert schema == datagen.schema_for(kind, datagen.max_rows_for(3000))
    table = "hospitals" if kind == "hospitals" else "supply_chain"
    files = {fmt: [p for p in paths if p.stem == table] for fmt, paths in written.items()}
    assert [p.parent.name for p in files["csv"]] == list(
        datagen.generate(kind, 2, 10, 5).files
    )  # same holder names
    text = (
        "mean(cost) from hospitals where age >= 65 group by prefecture"
        if kind == "hospitals"
        else "sum(kg_co2e) from supply_chain group by stage"
    )
    plan = compile(parse_query(text), schema)
    for csv, parquet in zip(files["csv"], files["parquet"], strict=True):
        a, b = (open_source(schema, table, p) for p in (csv, parquet))
        check_source(schema, a)
        check_source(schema, b)
        assert read_table(a).n_rows == 3000
        assert np.array_equal(evaluate_source(plan, a).vector, evaluate_source(plan, b).vector)
    if kind == "supply_chain":
        vector = open_source(
            schema, "emissions_daily", tmp_path / "csv/supplier-01/emissions_daily.npy"
        )
        check_source(schema, vector)


def test_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="format"):
        write_generated_fast("hospitals", 1, 10, 1, tmp_path, "xlsx")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="rows"):
        write_generated_fast("hospitals", 1, 0, 1, tmp_path)


def test_gen_data_command_takes_a_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pets.cli import main

    argv = ["gen-data", "--kind", "hospitals", "--holders", "2", "--rows", "500"]
    assert main([*argv, "--format", "parquet", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed[-1].endswith("hospital-02/hospitals.parquet")
    schema = Schema.from_toml((tmp_path / "schema.toml").read_text())
    assert read_table(open_source(schema, "hospitals", Path(printed[-1]))).n_rows == 500
