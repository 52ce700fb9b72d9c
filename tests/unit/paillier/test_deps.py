"""Start-up check: pets.paillier refuses to run without gmpy2."""

from __future__ import annotations

import subprocess
import sys

import phe.util
import pytest

from pets.errors import DependencyError
from pets.paillier._deps import require_gmpy2


def test_gmpy2_present_passes() -> None:
    require_gmpy2()
    assert phe.util.HAVE_GMP


def test_phe_without_gmp_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(phe.util, "HAVE_GMP", False)
    with pytest.raises(DependencyError, match="gmpy2"):
        require_gmpy2()


def test_import_fails_clearly_without_gmpy2() -> None:
    code = (
        "import sys; sys.modules['gmpy2'] = None\n"
        "try:\n"
        "    import pets.paillier\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
        "else:\n"
        "    print('imported')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.startswith("DependencyError")
    assert "pip install gmpy2" in out
