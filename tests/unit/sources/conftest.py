"""Shared data for the source tests: one holder's rows written in every format.

The rows come from the fast generator (:mod:`pets.devtools.gen_fast`) and are
written as CSV, Parquet, Arrow IPC (file and stream), a SQLite table and a
pandas DataFrame; the reference vector of each query is computed from the
same CSV by the standard-library parser (:func:`pets.query.parse_csv`), a
reader that shares no code with pyarrow.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.ipc as pa_ipc
import pyarrow.parquet as pq
import pytest

from pets.devtools import datagen
from pets.devtools.gen_fast import holder_batches
from pets.query import Dataset, Schema

ROWS = 600
QUERIES = (
    "mean(cost) from hospitals where age >= 65 group by prefecture",
    "histogram(age) from hospitals group by sex bins [0, 18, 65, 98, 110]",
    "variance(length_of_stay) from hospitals where diagnosis in (C, I)",
    "count() from hospitals where sex = F group by prefecture, diagnosis",
    "sum(cost) from hospitals clip [0, 900]",
    "vector_sum(cost, length_of_stay) from hospitals group by sex",
)


@dataclass(frozen=True)
class Files:
    schema: Schema
    dataset: Dataset
    table: pa.Table  # the rows, category columns as plain strings
    csv: Path
    parquet: Path
    arrow: Path
    arrow_stream: Path
    sqlite: Path


def plain(table: pa.Table) -> pa.Table:
    """Dictionary columns decoded to strings (what SQL databases and CSV hold)."""
    return pa.table(
        {
            name: col.cast(pa.string()) if pa.types.is_dictionary(col.type) else col
            for name, col in zip(table.column_names, table.columns, strict=True)
        }
    )


def write_sqlite(path: Path, table: pa.Table, name: str = "stays") -> None:
    cols = table.column_names
    with sqlite3.connect(path) as conn:
        types = {"age": "INTEGER", "length_of_stay": "INTEGER", "cost": "REAL"}
        decl = ", ".join(f"{c} {types.get(c, 'TEXT')}" for c in cols)
        conn.execute(f"CREATE TABLE {name} ({decl})")
        marks = ", ".join("?" for _ in cols)
        conn.executemany(
            f"INSERT INTO {name} VALUES ({marks})", zip(*table.to_pydict().values(), strict=True)
        )
    conn.close()


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    root = tmp_path_factory.mktemp("sources")
    schema = datagen.schema_for("hospitals", 1000)
    rng = np.random.default_rng(20261130)
    batches = list(holder_batches("hospitals", rng, ROWS, chunk_rows=250))
    table = plain(pa.Table.from_batches(batches))
    csv = root / "h.csv"
    pa_csv.write_csv(table, csv)
    parquet = root / "h.parquet"
    pq.write_table(pa.Table.from_batches(batches), parquet, row_group_size=128)
    arrow = root / "h.arrow"
    with pa_ipc.new_file(arrow, table.schema) as w:
        for b in table.to_batches(max_chunksize=100):
            w.write_batch(b)
    arrow_stream = root / "h.arrows"
    with pa_ipc.new_stream(arrow_stream, table.schema) as w:
        w.write_table(table)
    sqlite = root / "h.db"
    write_sqlite(sqlite, table)
    return Files(
        schema, schema.dataset("hospitals"), table, csv, parquet, arrow, arrow_stream, sqlite
    )


@pytest.fixture(scope="session")
def pg_conninfo(postgres_server, files: Files) -> str:  # type: ignore[no-untyped-def]
    """A database holding the rows in table ``stays`` (real PostgreSQL server)."""
    import psycopg

    conninfo = str(postgres_server.create_database("pets_sources"))
    with psycopg.connect(conninfo) as conn:
        conn.execute(
            "CREATE TABLE stays (age integer, sex text, prefecture varchar(20), "
            "diagnosis char(1), length_of_stay bigint, cost double precision, note text)"
        )
        with conn.cursor().copy(
            "COPY stays (age, sex, prefecture, diagnosis, length_of_stay, cost) FROM STDIN"
        ) as copy:
            for row in zip(*files.table.to_pydict().values(), strict=True):
                copy.write_row(row)
        conn.execute("CREATE TABLE wrong (age text, sex text)")
        conn.execute("CREATE TABLE counter (n integer)")
        conn.execute("CREATE SEQUENCE seq")
        conn.execute("INSERT INTO counter VALUES (0)")
    return conninfo


@pytest.fixture
def node_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A current event loop: a Node opens its gRPC channel when it is built."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        loop.close()
        asyncio.set_event_loop(None)
