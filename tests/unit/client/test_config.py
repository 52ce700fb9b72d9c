"""Node and analyst configuration: strict parsing with errors that say what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from pets.client.config import load_analyst_config, load_node_config
from pets.errors import ConfigError

BASE = """
name = "org-1"
schema = "schema.toml"
leader = "127.0.0.1:7001"
[helpers]
helper-1 = "127.0.0.1:7002"
[data]
hospitals = "h.csv"
[tls]
ca = "ca.pem"
cert = "org-1.pem"
key = "org-1-key.pem"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(text)
    return path


def test_valid_node_config_resolves_paths(tmp_path: Path) -> None:
    cfg = load_node_config(_write(tmp_path, BASE + "[policy]\nmin_group_rows = 5\n"))
    assert cfg.endpoints.name == "org-1"
    assert cfg.endpoints.leader_name == "leader"
    assert cfg.data["hospitals"] == tmp_path / "h.csv"
    assert cfg.endpoints.tls is not None and cfg.endpoints.tls.ca == tmp_path / "ca.pem"
    assert cfg.policy.min_group_rows == 5


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[policy]\ndatasets = "hospitals"\n', "policy.datasets"),
        ('[policy]\ncolumns = { hospitals = "age" }\n', "policy.columns"),
        ("[policy]\nmin_group_rows = 0\n", "min_group_rows"),
        ('[policy]\nprotocols = ["smoke-signals"]\n', "protocols"),
        ("[policy]\nfavourite_colour = 1\n", "favourite_colour"),
    ],
)
def test_bad_policies_are_named(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_node_config(_write(tmp_path, BASE + extra))


def test_tls_is_required_unless_insecure(tmp_path: Path) -> None:
    text = BASE.split("[tls]")[0]
    with pytest.raises(ConfigError, match="mutual TLS is required"):
        load_node_config(_write(tmp_path, text))
    assert load_node_config(_write(tmp_path, text), insecure=True).endpoints.tls is None


def test_analyst_config_rejects_node_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="data"):
        load_analyst_config(_write(tmp_path, BASE))


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_node_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_node_config(_write(tmp_path, "name = "))
