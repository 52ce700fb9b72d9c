"""The ``[data]`` settings of a node's TOML."""

from __future__ import annotations

from pathlib import Path

import pytest

from pets.client.config import load_node_config
from pets.errors import ConfigError
from pets.sources import SourceSpec, parse_source_setting, spec_for_path

BASE = 'name = "h1"\nschema = "s.toml"\nleader = "127.0.0.1:9"\n'


def test_plain_paths_stay_paths_and_tables_become_specs(tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text(
        BASE
        + '[data]\nhospitals = "h.csv"\n'
        + '[data.stays]\nformat = "sqlite"\npath = "db/h.db"\ntable = "main.stays"\n'
        + '[data.pg]\nformat = "postgresql"\nconninfo = "host=/run dbname=h"\nquery = "SELECT 1"\n'
        + '[data.pq]\nformat = "parquet"\npath = "/abs/h.parquet"\nbatch_rows = 4096\n'
    )
    data = load_node_config(config, insecure=True).data
    assert data["hospitals"] == tmp_path / "h.csv"
    assert data["stays"] == SourceSpec("sqlite", path=tmp_path / "db/h.db", table="main.stays")
    assert data["pg"] == SourceSpec("postgresql", conninfo="host=/run dbname=h", query="SELECT 1")
    assert data["pq"] == SourceSpec("parquet", path=Path("/abs/h.parquet"), batch_rows=4096)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ({"path": "x.csv"}, "needs a format"),
        ({"format": "excel", "path": "x"}, "not one of"),
        ({"format": "csv", "path": "x", "sheet": 1}, "unknown keys"),
        ({"format": "sqlite", "path": "x"}, "exactly one of table and query"),
        ({"format": "sqlite", "path": "x", "table": "t", "query": "q"}, "exactly one"),
        ({"format": "sqlite", "path": "x", "table": "t; DROP"}, "name or schema.name"),
        ({"format": "postgresql", "path": "x", "table": "t"}, "takes conninfo"),
        (
            {"format": "postgresql", "conninfo": "dbname=h password=hunter2", "table": "t"},
            "password",
        ),
        ({"format": "postgresql", "conninfo": "=nonsense=", "table": "t"}, "not a libpq"),
        ({"format": "csv", "path": "x", "table": "t"}, "no table or query"),
        ({"format": "csv", "path": "x", "batch_rows": 0}, "batch_rows"),
        ({"format": "csv", "path": 3}, "must be a string"),
        (42, "file path or a table"),
    ],
)
def test_bad_settings_are_config_errors(value: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        parse_source_setting("hospitals", value, Path("/base"))
    assert "hunter2" not in str(info.value)


def test_suffixes() -> None:
    assert spec_for_path(Path("a.PARQUET")).format == "parquet"
    assert spec_for_path(Path("a.feather")).format == "arrow"
    with pytest.raises(ConfigError, match="needs a table or query"):
        spec_for_path(Path("a.sqlite"))
    with pytest.raises(ConfigError, match="cannot tell the format"):
        spec_for_path(Path("a.xlsx"))
