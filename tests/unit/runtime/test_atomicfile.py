"""pets.runtime.atomicfile: atomic writes, 0600 from the start, no silent overwrite."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pets.errors import ConfigError
from pets.runtime.atomicfile import PUBLIC_MODE, write_atomic


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secret_is_written_0600(tmp_path: Path) -> None:
    path = write_atomic(tmp_path / "k.key", b"secret")
    assert path.read_bytes() == b"secret" and _mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["k.key"]  # no temporary file left


def test_public_mode(tmp_path: Path) -> None:
    assert _mode(write_atomic(tmp_path / "c.pem", b"cert", mode=PUBLIC_MODE)) == 0o644


def test_existing_file_is_never_replaced_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    write_atomic(path, b"first")
    with pytest.raises(ConfigError, match="already exists") as exc:
        write_atomic(path, b"second")
    assert "second" not in str(exc.value) and path.read_bytes() == b"first"
    write_atomic(path, b"second", overwrite=True)
    assert path.read_bytes() == b"second" and _mode(path) == 0o600


def test_overwrite_tightens_a_loose_mode(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    path.write_bytes(b"old")
    os.chmod(path, 0o644)
    write_atomic(path, b"new", overwrite=True)
    assert _mode(path) == 0o600


def test_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        write_atomic(tmp_path / "nope" / "k.key", b"x")
