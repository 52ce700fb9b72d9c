"""Writing synthetic datasets to disk (``pets gen-data`` and the demo).

The generator itself (:mod:`pets.devtools.datagen`) is pure; this module lays its
output out as a holder would keep it: one folder per holder with a CSV per
table dataset and a ``.npy`` per vector dataset, plus the shared
``schema.toml``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pets.devtools.datagen import GeneratedData, generate
from pets.query import Schema


def write_data(data: GeneratedData, out: Path) -> dict[str, dict[str, Path]]:
    """Write every holder's files under ``out/<holder>/``; return holder -> dataset -> path."""
    written: dict[str, dict[str, Path]] = {}
    for holder, datasets in data.files.items():
        folder = out / holder
        folder.mkdir(parents=True, exist_ok=True)
        written[holder] = {}
        for dataset, content in datasets.items():
            if isinstance(content, np.ndarray):
                path = folder / f"{dataset}.npy"
                np.save(path, content, allow_pickle=False)
            else:
                path = folder / f"{dataset}.csv"
                path.write_text(content)
            written[holder][dataset] = path
    return written


def write_generated(kind: str, holders: int, rows: int, seed: int, out: Path) -> list[Path]:
    """Generate ``kind`` data for ``holders`` holders and write it with its schema."""
    out.mkdir(parents=True, exist_ok=True)
    data = generate(kind, holders, rows, seed)
    schema_path = out / "schema.toml"
    schema_path.write_text(data.schema_toml)
    written = write_data(data, out)
    return [schema_path] + [p for files in written.values() for p in files.values()]


def merge_schemas(*schemas: Schema) -> Schema:
    """One schema holding the datasets of several (names must not collide)."""
    datasets = [d for s in schemas for d in s.datasets]
    names = [d.name for d in datasets]
    if len(set(names)) != len(names):
        raise ValueError(f"dataset names collide: {names}")
    return Schema(tuple(datasets))
