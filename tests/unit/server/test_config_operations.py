"""Server configuration of the operational settings: [metrics] and the stream limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from pets.errors import ConfigError
from tests.unit.server.test_config import LEADER, _load


def test_metrics_are_off_unless_configured(tmp_path: Path) -> None:
    assert _load(tmp_path, LEADER).metrics_listen is None
    on = _load(tmp_path, LEADER + '[metrics]\nlisten = "127.0.0.1:9464"\n')
    assert on.metrics_listen == "127.0.0.1:9464"
    default = _load(tmp_path, LEADER + "[metrics]\n")
    assert default.metrics_listen == "127.0.0.1:9464"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[metrics]\nlisten = "9464"\n', "metrics.listen must be HOST:PORT"),
        ("[metrics]\nport = 9464\n", "port"),
        ("metrics = 9464\n", "[metrics] must be a table"),
    ],
)
def test_bad_metrics_settings_are_refused(tmp_path: Path, table: str, message: str) -> None:
    text = table + LEADER if not table.startswith("[") else LEADER + table
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _load(tmp_path, text)


def test_stream_limits(tmp_path: Path) -> None:
    cfg = _load(tmp_path, LEADER)
    assert cfg.limits.max_streams_per_holder == 4
    assert cfg.limits.contribution_idle_timeout_seconds == 30
    tuned = _load(
        tmp_path,
        LEADER + "[limits]\nmax_streams_per_holder = 2\ncontribution_idle_timeout_seconds = 5\n",
    )
    assert tuned.limits.max_streams_per_holder == 2
    assert tuned.limits.contribution_idle_timeout_seconds == 5
    for bad in ("max_streams_per_holder = 0", "contribution_idle_timeout_seconds = -1"):
        with pytest.raises(ConfigError, match="must be a positive"):
            _load(tmp_path, LEADER + f"[limits]\n{bad}\n")
