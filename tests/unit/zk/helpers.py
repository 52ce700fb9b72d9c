"""Helpers shared by the zero-knowledge tests (imported as a plain module)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from pets.zk.rng import DeterministicRng

BACKENDS = ("coincurve", "py_ecc")
VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "zk"


def load_vectors(name: str) -> dict:
    return json.loads((VECTORS / name).read_text())


def rng(seed: str = "test") -> DeterministicRng:
    return DeterministicRng(seed)


def flipped(data: bytes, step: int = 1) -> Iterator[bytes]:
    """Single-bit mutations (low bit of every ``step``-th byte) of ``data``."""
    for i in range(0, len(data), step):
        out = bytearray(data)
        out[i] ^= 0x01
        yield bytes(out)
