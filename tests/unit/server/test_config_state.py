"""Where a server keeps its state: ``state = "postgresql://..."`` or SQLite in state_dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from pets.errors import ConfigError
from pets.server.config import ServerConfig, load_config

HELPER = 'role = "helper"\nname = "helper-1"\n'


def _load(tmp_path: Path, text: str) -> ServerConfig:
    path = tmp_path / "server.toml"
    path.write_text(text)
    return load_config(path, insecure=True)


def test_sqlite_in_the_state_directory_is_the_default(tmp_path: Path) -> None:
    cfg = _load(tmp_path, HELPER)
    assert cfg.state_url is None
    assert cfg.database == tmp_path / "state" / "helper-1" / "pets.sqlite"


@pytest.mark.parametrize("url", ["postgresql://pets@db/pets_h1", "postgres:///h1?host=/run"])
def test_a_postgresql_url_selects_postgresql(tmp_path: Path, url: str) -> None:
    assert _load(tmp_path, HELPER + f'state = "{url}"\n').state_url == url


@pytest.mark.parametrize("value", ['"state/helper.sqlite"', '"mysql://x"', "3"])
def test_anything_else_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="state must be a PostgreSQL URL"):
        _load(tmp_path, HELPER + f"state = {value}\n")
