"""The allocator tuning applies once, on glibc only, and yields to the operator's settings."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCRIPT = "from pets.sources import allocator; print(allocator.tune(), allocator.tune())"


def _tune(**env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    environ.update(env)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=environ, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc tuning is Linux-only")
def test_tune_applies_once_unless_the_operator_chose() -> None:
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert _tune() == "True True"  # cached: the second call does not re-apply
    assert _tune(MALLOC_MMAP_THRESHOLD_="1048576") == "False False"
