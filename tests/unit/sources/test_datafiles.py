"""The demo's data layout: some holders keep Parquet or SQLite, read by bare paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pets.client.node import load_table
from pets.devtools.datafiles import write_data
from pets.devtools.datagen import generate
from pets.errors import InvalidInputError
from pets.query import compile, evaluate, parse_csv, parse_query


def test_holders_formats_hold_the_same_rows(tmp_path: Path) -> None:
    data = generate("supply_chain", 4, 150, 3)
    written = write_data(data, tmp_path, formats=("parquet", "sqlite", "csv"))
    suffixes = [files["supply_chain"].suffix for files in written.values()]
    assert suffixes == [".parquet", ".sqlite", ".csv", ".csv"]
    schema = data.schema
    plan = compile(parse_query("sum(kg_co2e) from supply_chain group by stage"), schema)
    for holder, files in written.items():
        want = evaluate(plan, parse_csv(str(data.files[holder]["supply_chain"]), plan.dataset))
        got = evaluate(plan, load_table(schema, "supply_chain", files["supply_chain"]))
        assert np.array_equal(got, want)
        assert files["emissions_daily"].suffix == ".npy"


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="unknown table formats"):
        write_data(generate("hospitals", 1, 5, 1), tmp_path, formats=("xlsx",))
