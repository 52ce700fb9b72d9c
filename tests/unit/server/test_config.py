"""Server configuration: strict parsing, limits validated, clear messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from pets.errors import ConfigError
from pets.server.config import load_config

LEADER = """
role = "leader"
name = "leader"
listen = "127.0.0.1:0"
schema = "schema.toml"
[tls]
ca = "ca.pem"
cert = "leader.pem"
key = "leader-key.pem"
[[helpers]]
name = "helper-1"
address = "127.0.0.1:7002"
"""


def _load(tmp_path: Path, text: str, **kw: bool):  # type: ignore[no-untyped-def]
    path = tmp_path / "server.toml"
    path.write_text(text)
    return load_config(path, **kw)


def test_defaults_and_paths(tmp_path: Path) -> None:
    cfg = _load(tmp_path, LEADER)
    assert cfg.min_holders == 3
    assert cfg.database == tmp_path / "state" / "leader" / "pets.sqlite"
    assert cfg.limits.max_concurrent_contributions == 16


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[limits]\nmax_vector_length = 0\n", "max_vector_length"),
        ("[limits]\nmax_concurrent_contributions = 1.5\n", "max_concurrent_contributions"),
        ("[limits]\ndefault_deadline_seconds = 100\nmax_deadline_seconds = 10\n", "default"),
        ("[limits]\nwhatever = 1\n", "whatever"),
    ],
)
def test_bad_limits(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, LEADER + extra)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (LEADER.replace('role = "leader"', 'role = "boss"'), "role must be"),
        (LEADER.split("[[helpers]]")[0], "at least one"),
        (LEADER.replace('schema = "schema.toml"\n', ""), "schema"),
        (LEADER.replace('name = "leader"', 'name = "bad name"'), "name"),
        (LEADER.split("[tls]")[0], "mutual TLS is required"),
    ],
)
def test_bad_server_configs(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, text)


def test_insecure_drops_tls(tmp_path: Path) -> None:
    assert (
        _load(tmp_path, LEADER.split("[tls]")[0] + LEADER.split('key.pem"')[1], insecure=True).tls
        is None
    )
