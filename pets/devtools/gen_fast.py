"""Synthetic holder data at size: 10^7 rows per holder as Parquet or CSV, in seconds.

:mod:`pets.devtools.datagen` builds small data sets as CSV text through
Python lists (fine for the demo's 2,000 rows, a minute per holder at 10^7).
This module draws the same schema, columns and distributions (it reuses that
module's constants, so the two cannot drift apart) in vectorised chunks of
``chunk_rows`` rows and streams each chunk to a columnar writer
(``pyarrow.parquet.ParquetWriter`` or ``pyarrow.csv.CSVWriter``), so memory
stays O(chunk) whatever ``rows`` is. Category columns are written
dictionary-encoded in Parquet and as plain labels in CSV.

The values are not the ones :func:`~pets.devtools.datagen.generate` draws for
the same seed (the draws are chunked in another order), but they are
deterministic for a given ``(seed, holders, rows, chunk_rows)`` and follow the
same distributions. The data is **not secret** (``numpy.random``).

Layout, as ``pets gen-data`` writes it: ``out/schema.toml`` and
``out/<holder>/<dataset>.parquet|.csv`` (plus ``emissions_daily.npy`` for
``supply_chain``).

Kind ``linked`` (:mod:`pets.devtools.datagen_linked`) is drawn vectorised in
one piece per holder (its holders' rows depend on one shared population), so
its memory is the population (N x rows people, about 40 bytes each) and the
rows of one holder at a time (about 200 bytes a row); the values are the ones
:func:`~pets.devtools.datagen.generate` draws for the same arguments.
``linkage.json`` holds the known overlaps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from pets.devtools import datagen as dg
from pets.errors import InvalidInputError

Format = Literal["parquet", "csv"]
FORMATS: tuple[str, ...] = ("parquet", "csv")
DEFAULT_CHUNK_ROWS = 1 << 20


def hospital_batch(
    rng: np.random.Generator, n: int, home: int, local_share: float
) -> pa.RecordBatch:
    """``n`` hospital stays (columns of :func:`~pets.devtools.datagen.schema_for`)."""
    p = dg._PREFECTURE_WEIGHTS / dg._PREFECTURE_WEIGHTS.sum()
    local = rng.random(n) < local_share
    prefecture = np.where(local, home, rng.choice(len(dg.PREFECTURES), size=n, p=p))
    child = rng.random(n) < 0.1
    adult_age = 100 - rng.gamma(3.0, 12.0, size=n)
    age = np.where(child, rng.integers(0, 18, size=n), np.clip(np.rint(adult_age), 18, 110))
    age = age.astype(np.int64)
    sex = (rng.random(n) < 0.48).astype(np.int8)
    band = np.where(age < 18, 0, np.where(age < 65, 1, 2))
    cumulative = np.cumsum(dg._DIAGNOSIS_MIX, axis=1)
    u = rng.random(n)
    diagnosis = np.zeros(n, dtype=np.int8)
    for j in range(cumulative.shape[1] - 1):  # 7 vectorised passes, not an n x 8 matrix
        diagnosis += u > cumulative[band, j]
    median_stay = dg._STAY_DAYS[diagnosis] * (0.6 + age / 120)
    stay = np.rint(median_stay * rng.lognormal(0.0, 0.6, size=n))
    stay = np.where(rng.random(n) < 0.05, 0, np.clip(stay, 1, 365)).astype(np.int64)
    cost = (30 + dg._DAILY_KYEN[diagnosis] * stay) * rng.lognormal(0.0, 0.25, size=n)
    surgery = rng.random(n) < dg._SURGERY_P[diagnosis]
    cost = cost + surgery * rng.lognormal(np.log(900.0), 0.5, size=n)
    cost = np.clip(np.round(cost, 1), 0, 5000)
    return pa.record_batch(
        {
            "age": age,
            "sex": _labels(("F", "M"), sex),
            "prefecture": _labels(dg.PREFECTURES, prefecture),
            "diagnosis": _labels(dg.DIAGNOSES, diagnosis),
            "length_of_stay": stay,
            "cost": cost,
        }
    )


def supply_chain_batch(
    rng: np.random.Generator, n: int, supplier_p: np.ndarray, product_p: np.ndarray
) -> pa.RecordBatch:
    """``n`` activity records of one company (the ``supply_chain`` dataset)."""
    supplier = rng.choice(len(dg.SUPPLIERS), size=n, p=supplier_p)
    product = rng.choice(len(dg.PRODUCTS), size=n, p=product_p)
    stage = rng.choice(len(dg.STAGES), size=n, p=dg._STAGE_P)
    median = dg._STAGE_KG[stage] * dg._PRODUCT_FACTOR[product]
    kg = np.clip(np.round(median * rng.lognormal(0.0, 1.0, size=n), 2), 0, 100_000)
    return pa.record_batch(
        {
            "supplier": _labels(dg.SUPPLIERS, supplier),
            "product": _labels(dg.PRODUCTS, product),
            "stage": _labels(dg.STAGES, stage),
            "kg_co2e": kg,
        }
    )


def holder_batches(
    kind: str, rng: np.random.Generator, rows: int, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[pa.RecordBatch]:
    """One holder's table rows of ``kind``, ``chunk_rows`` at a time."""
    if kind == "hospitals":
        p = dg._PREFECTURE_WEIGHTS / dg._PREFECTURE_WEIGHTS.sum()
        home = int(rng.choice(len(dg.PREFECTURES), p=p))
        share = float(rng.uniform(0.7, 0.9))
        for start in range(0, rows, chunk_rows):
            yield hospital_batch(rng, min(chunk_rows, rows - start), home, share)
    elif kind == "supply_chain":
        supplier_p = rng.dirichlet(np.full(len(dg.SUPPLIERS), 0.6))
        product_p = rng.dirichlet(np.full(len(dg.PRODUCTS), 0.4))
        for start in range(0, rows, chunk_rows):
            yield supply_chain_batch(rng, min(chunk_rows, rows - start), supplier_p, product_p)
    else:
        raise InvalidInputError(f"unknown data kind {kind!r} (one of {', '.join(dg.KINDS)})")


def write_table(path: Path, batches: Iterator[pa.RecordBatch], fmt: Format) -> None:
    """Stream ``batches`` into one Parquet or CSV file (``path`` is replaced)."""
    first = next(batches)
    if fmt == "parquet":
        with pq.ParquetWriter(path, first.schema, compression="snappy") as writer:
            writer.write_batch(first)
            for batch in batches:
                writer.write_batch(batch)
        return
    plain = pa.schema(
        [pa.field(f.name, pa.string()) if _is_dict(f.type) else f for f in first.schema]
    )
    options = pa_csv.WriteOptions(quoting_style="needed")
    with pa_csv.CSVWriter(path, plain, write_options=options) as writer:
        for batch in _chain(first, batches):
            writer.write_batch(batch.cast(plain))


def write_generated_fast(
    kind: str,
    holders: int,
    rows: int,
    seed: int,
    out: Path,
    fmt: Format = "parquet",
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> list[Path]:
    """Write ``schema.toml`` and every holder's files under ``out``; return their paths."""
    if kind == "linked" and fmt in FORMATS:
        return write_linked_fast(holders, rows, seed, out, fmt)
    if kind not in dg.KINDS:
        raise InvalidInputError(f"unknown data kind {kind!r} (one of {', '.join(dg.KINDS)})")
    if fmt not in FORMATS:
        raise InvalidInputError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    for name, value, least in (
        ("holders", holders, 1),
        ("rows", rows, 1),
        ("seed", seed, 0),
        ("chunk_rows", chunk_rows, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise InvalidInputError(f"{name} must be an integer >= {least}, got {value!r}")
    out.mkdir(parents=True, exist_ok=True)
    schema = dg.schema_for(kind, dg.max_rows_for(rows))
    header = (
        f"# pets synthetic data schema: kind={kind}, seed={seed}, rows={rows} "
        "(non-secret, numpy RNG)\n"
    )
    schema_path = out / "schema.toml"
    schema_path.write_text(header + schema.to_toml())
    written = [schema_path]
    prefix = "hospital" if kind == "hospitals" else "supplier"
    width = max(2, len(str(holders)))
    table = "hospitals" if kind == "hospitals" else "supply_chain"
    for i, child in enumerate(np.random.SeedSequence(seed).spawn(holders)):
        rng = np.random.default_rng(child)
        folder = out / f"{prefix}-{i + 1:0{width}d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{table}.{fmt}"
        write_table(path, holder_batches(kind, rng, rows, chunk_rows), fmt)
        written.append(path)
        if kind == "supply_chain":
            npy = folder / "emissions_daily.npy"
            np.save(npy, dg._daily_emissions(rng), allow_pickle=False)
            written.append(npy)
    return written


def _labels(domain: tuple[str, ...], codes: np.ndarray) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(
        pa.array(codes.astype(np.int8, copy=False)), pa.array(domain, pa.string())
    )


def _is_dict(t: pa.DataType) -> bool:
    return bool(pa.types.is_dictionary(t))


def _chain(first: pa.RecordBatch, rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    yield first
    yield from rest


def write_linked_fast(holders: int, rows: int, seed: int, out: Path, fmt: Format) -> list[Path]:
    """Kind ``linked`` as Parquet or CSV files, one holder at a time (module docstring)."""
    import json

    from pets.devtools import datagen_linked as dl

    for name, value, least in (("holders", holders, 1), ("rows", rows, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise InvalidInputError(f"{name} must be an integer >= {least}, got {value!r}")
    out.mkdir(parents=True, exist_ok=True)
    layout = dl.schema(1)  # the columns; max_rows is known once every holder is drawn
    overlaps = dl.Overlaps(holders, rows)
    written = []
    for part in dl.iter_linked(holders, rows, seed):
        overlaps.add(part)
        dataset = layout.dataset(part.dataset)
        assert dataset.linkage is not None
        id_column = dataset.linkage.id_column
        arrays: dict[str, pa.Array] = {id_column: pa.array(part.columns[id_column], pa.string())}
        for column in dataset.columns:
            values = part.columns[column.name]
            if column.type == "category":
                lookup = {label: code for code, label in enumerate(column.domain)}
                codes = np.fromiter((lookup[v] for v in values), np.int64, len(values))
                arrays[column.name] = _labels(column.domain, codes)
            elif column.type == "int":
                arrays[column.name] = pa.array(values.astype(np.int64))
            else:
                arrays[column.name] = pa.array(values.astype(np.float64))
        folder = out / part.holder
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{part.dataset}.{fmt}"
        write_table(path, iter([pa.record_batch(arrays)]), fmt)
        written.append(path)
        del part, arrays
    schema_path = out / "schema.toml"
    schema_path.write_text(
        f"# pets synthetic data schema: kind=linked, seed={seed}, rows={rows} "
        "(non-secret, numpy RNG)\n" + dl.schema(overlaps.max_rows).to_toml()
    )
    overlaps_path = out / "linkage.json"
    overlaps_path.write_text(json.dumps(overlaps.to_dict(), indent=2, sort_keys=True) + "\n")
    return [schema_path, *written, overlaps_path]
