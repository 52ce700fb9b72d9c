"""Linked synthetic data: determinism, the command line, and its schema's linkage declarations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pets.cli import main
from pets.devtools import datagen, datagen_linked
from pets.devtools.linkjoin import linked_plaintext, sources_by_dataset
from pets.errors import InvalidInputError
from pets.query import Schema, compile, parse_csv, parse_query


def test_linked_data_is_deterministic() -> None:
    a = datagen.generate("linked", 2, 300, seed=4)
    assert datagen.generate("linked", 2, 300, seed=4) == a
    assert datagen.generate("linked", 2, 300, seed=5).files != a.files
    assert a.holders == [
        "hospital-01",
        "hospital-02",
        "municipality-01",
        "municipality-02",
        "insurer-01",
        "insurer-02",
    ]
    assert a.schema.names == datagen_linked.DATASETS
    for dataset in a.schema.datasets:
        assert dataset.linkage == datagen_linked.LINKAGES[dataset.name]
    # every holder's file parses against the schema, and the id column is kept
    for files in a.files.values():
        for name, text in files.items():
            table = parse_csv(str(text), a.schema.dataset(name))
            assert table.ids is not None and len(table.ids) == table.n_rows
            assert table.n_rows <= a.schema.dataset(name).max_rows


def test_the_hospitals_dataset_answers_ordinary_queries_too() -> None:
    data = datagen.generate("linked", 1, 200, seed=2)
    plan = compile(parse_query("mean(cost) from hospitals group by sex"), data.schema)
    assert plan.linkage is None
    ordinary = datagen.schema_for("hospitals", 1000).dataset("hospitals")
    assert data.schema.dataset("hospitals").columns == ordinary.columns


def test_unknown_kinds_are_still_refused() -> None:
    with pytest.raises(InvalidInputError, match="one of hospitals, supply_chain, linked"):
        datagen.generate("weather", 1, 1, 0)


@pytest.mark.parametrize("fmt", [None, "parquet"])
def test_gen_data_command_writes_linked_files(
    fmt: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["gen-data", "--kind", "linked", "--holders", "2", "--rows", "250", "--seed", "3"]
    argv += ["--out", str(tmp_path)]
    if fmt:
        argv += ["--format", fmt]
    assert main(argv) == 0
    printed = capsys.readouterr().out.split()
    overlaps = json.loads((tmp_path / "linkage.json").read_text())
    assert str(tmp_path / "linkage.json") in printed
    assert overlaps == datagen.generate("linked", 2, 250, 3).overlaps
    assert overlaps["domain"] == "resident"
    assert set(overlaps["intersections"]) == {
        "hospitals&ltc",
        "hospitals&claims",
        "ltc&claims",
        "hospitals&ltc&claims",
    }
    schema = Schema.from_toml((tmp_path / "schema.toml").read_text())
    suffix = fmt or "csv"
    holder_data = {
        folder.name: {p.stem: p for p in folder.glob(f"*.{suffix}")}
        for folder in sorted(tmp_path.iterdir())
        if folder.is_dir()
    }
    plan = compile(parse_query("count(*) from ltc linked to hospitals", schema), schema)
    sources = sources_by_dataset(holder_data, ("ltc", "hospitals"))
    assert [len(v) for v in sources.values()] == [2, 2]
    count = linked_plaintext(plan, sources).rows[0]["count"]
    assert count == overlaps["intersections"]["hospitals&ltc"] > 0
