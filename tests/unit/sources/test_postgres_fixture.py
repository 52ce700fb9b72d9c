"""Without PostgreSQL the database tests skip, except under CI, where they fail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
TEST = (
    "tests/unit/sources/test_source_validation.py"
    "::test_postgresql_read_only_transaction_refuses_writes"
)


def _run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "CI"}
    environ.update(env, PG_BIN=str(tmp_path / "no-postgres"))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("ci", [False, True])
def test_missing_postgres_skips_locally_and_fails_in_ci(tmp_path: Path, ci: bool) -> None:
    done = _run(tmp_path, **({"CI": "1"} if ci else {}))
    if ci:
        assert done.returncode != 0
        assert "PostgreSQL is required in CI" in done.stdout
    else:
        assert done.returncode == 0, done.stdout
        assert "1 skipped" in done.stdout
