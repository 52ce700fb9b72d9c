"""Shared helpers of the linkage tests (a uniquely named module, unlike conftest)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "linkage"


def load(name: str) -> Any:
    """One JSON file of tests/vectors/linkage."""
    return json.loads((VECTORS / name).read_text())
