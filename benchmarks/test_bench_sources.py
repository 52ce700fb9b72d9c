"""Holder evaluation over 10^7 rows from Parquet and CSV, each against DuckDB on the same file.

Groups (DuckDB is the baseline of each; ``extra_info["elements"]`` is the
row count, so the report shows rows/s):

``sources-parquet``
    :func:`pets.sources.evaluate_source` for
    ``mean(cost) from hospitals where age >= 65 group by prefecture`` over one
    holder's Parquet file (streamed batches, validation, clipping, fixed
    point, exact int64 sums) vs DuckDB's
    ``SELECT prefecture, count(*), avg(cost) FROM read_parquet(...) WHERE
    age >= 65 GROUP BY prefecture``. Target ratio <= 1.5.
``sources-csv``
    The same over the CSV file (``read_csv``). Target ratio <= 2.

``test_peak_rss`` records the peak RSS of a fresh process evaluating both
files (``extra_info["rss_mb"]``; target <= 500 MB at 10^7 rows). The files
are written once per session by :mod:`pets.devtools.gen_fast` (~10 s).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pets.devtools.bench_sources import (
    FULL_ROWS,
    QUERY,
    duckdb_sql,
    peak_rss_mb,
    write_files,
)
from pets.query import Schema, compile, parse_query
from pets.sources import evaluate_source, open_source

duckdb = pytest.importorskip("duckdb")
ROUNDS = 5


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_files(FULL_ROWS, tmp_path_factory.mktemp("bench-sources"))


def _run(benchmark, fn, *, baseline: bool = False):  # type: ignore[no-untyped-def]
    benchmark.extra_info["elements"] = FULL_ROWS
    if baseline:
        benchmark.extra_info["baseline"] = True
    return benchmark.pedantic(fn, rounds=ROUNDS, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_holder_eval(benchmark, files: dict[str, Path], fmt: str) -> None:  # type: ignore[no-untyped-def]
    benchmark.group = f"sources-{fmt}"
    schema = Schema.from_toml(files["schema"].read_text())
    plan = compile(parse_query(QUERY), schema)
    source = open_source(schema, "hospitals", files[fmt])
    evaluation = _run(benchmark, lambda: evaluate_source(plan, source))
    assert evaluation.rows == FULL_ROWS


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_duckdb_baseline(benchmark, files: dict[str, Path], fmt: str) -> None:  # type: ignore[no-untyped-def]
    benchmark.group = f"sources-{fmt}"
    con = duckdb.connect()
    sql = duckdb_sql(Schema.from_toml(files["schema"].read_text()), fmt, files[fmt])
    rows = _run(benchmark, lambda: con.execute(sql).fetchall(), baseline=True)
    assert len(rows) == 8
    con.close()


def test_peak_rss(benchmark, files: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    benchmark.group = "sources-rss"
    rss = benchmark.pedantic(lambda: peak_rss_mb(files), rounds=1, iterations=1)
    benchmark.extra_info["rss_mb"] = rss
    assert rss > 0
