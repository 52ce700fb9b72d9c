"""Writing synthetic datasets to disk (``pets gen-data`` and the demo).

The generator itself (:mod:`pets.devtools.datagen`) is pure; this module lays its
output out as a holder would keep it: one folder per holder with a file per
table dataset (CSV by default; Parquet or a SQLite database for the holders
``formats`` names, so the demo exercises those sources end to end) and a
``.npy`` per vector dataset, plus the shared ``schema.toml`` (and for linked
data ``linkage.json``, the known overlaps). Every format
holds the same rows, so results stay comparable with the plaintext answer.
"""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from pets.devtools.datagen import GeneratedData, generate
from pets.errors import InvalidInputError
from pets.query import Schema

TABLE_FORMATS: tuple[str, ...] = ("csv", "parquet", "sqlite")


def write_data(
    data: GeneratedData, out: Path, *, formats: Sequence[str] = ()
) -> dict[str, dict[str, Path]]:
    """Write every holder's files under ``out/<holder>/``; return holder -> dataset -> path.

    ``formats[i]`` is the format of the i-th holder's table datasets (``csv``,
    ``parquet`` or ``sqlite``: a ``<dataset>.sqlite`` file holding table
    ``<dataset>``, which a bare path in ``node.toml`` reads); holders beyond
    the sequence get CSV.
    """
    unknown = sorted(set(formats) - set(TABLE_FORMATS))
    if unknown:
        raise InvalidInputError(f"unknown table formats {unknown} (one of {TABLE_FORMATS})")
    written: dict[str, dict[str, Path]] = {}
    for i, (holder, datasets) in enumerate(data.files.items()):
        folder = out / holder
        folder.mkdir(parents=True, exist_ok=True)
        written[holder] = {}
        fmt = formats[i] if i < len(formats) else "csv"
        for dataset, content in datasets.items():
            if isinstance(content, np.ndarray):
                path = folder / f"{dataset}.npy"
                np.save(path, content, allow_pickle=False)
            else:
                path = _write_table(folder, dataset, content, fmt)
            written[holder][dataset] = path
    return written


def _write_table(folder: Path, dataset: str, text: str, fmt: str) -> Path:
    if fmt == "csv":
        path = folder / f"{dataset}.csv"
        path.write_text(text)
        return path
    table = pa_csv.read_csv(io.BytesIO(text.encode()))
    if fmt == "parquet":
        path = folder / f"{dataset}.parquet"
        pq.write_table(table, path)
        return path
    path = folder / f"{dataset}.sqlite"
    path.unlink(missing_ok=True)
    columns = ", ".join(
        f'"{name}" {_sqlite_type(t)}'
        for name, t in zip(table.column_names, table.schema.types, strict=True)
    )
    marks = ", ".join("?" for _ in table.column_names)
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.execute(f'CREATE TABLE "{dataset}" ({columns})')
            rows = zip(*table.to_pydict().values(), strict=True)
            conn.executemany(f'INSERT INTO "{dataset}" VALUES ({marks})', rows)  # noqa: S608
    finally:
        conn.close()
    return path


def _sqlite_type(t: pa.DataType) -> str:
    if pa.types.is_integer(t):
        return "INTEGER"
    if pa.types.is_floating(t):
        return "REAL"
    return "TEXT"


def write_generated(kind: str, holders: int, rows: int, seed: int, out: Path) -> list[Path]:
    """Generate ``kind`` data for ``holders`` holders and write it with its schema."""
    out.mkdir(parents=True, exist_ok=True)
    data = generate(kind, holders, rows, seed)
    schema_path = out / "schema.toml"
    schema_path.write_text(data.schema_toml)
    written = write_data(data, out)
    paths = [schema_path] + [p for files in written.values() for p in files.values()]
    if data.overlaps is not None:
        paths.append(write_overlaps(data.overlaps, out))
    return paths


def write_overlaps(overlaps: dict[str, object], out: Path) -> Path:
    """``out/linkage.json``: the known people per dataset and per intersection (kind linked)."""
    path = out / "linkage.json"
    path.write_text(json.dumps(overlaps, indent=2, sort_keys=True) + "\n")
    return path


def merge_schemas(*schemas: Schema) -> Schema:
    """One schema holding the datasets of several (names must not collide)."""
    datasets = [d for s in schemas for d in s.datasets]
    names = [d.name for d in datasets]
    if len(set(names)) != len(names):
        raise ValueError(f"dataset names collide: {names}")
    return Schema(tuple(datasets))
