"""Quick metrics for a holder's evaluation over its data sources, against DuckDB.

The query is the issue's ``mean(cost) from hospitals where age >= 65 group by
prefecture`` over one holder's synthetic rows (:mod:`pets.devtools.gen_fast`),
read from Parquet and from CSV by :func:`pets.sources.evaluate_source`
(streamed record batches, validation, clipping, fixed-point encoding, exact
int64 sums). The baseline is DuckDB running the same SQL on the same file in
the same run::

    SELECT prefecture, count(*), avg(cost) FROM read_parquet(...) / read_csv(...)
    WHERE age >= 65 GROUP BY prefecture

``read_csv`` is given what pets is given (header, dialect, each column's type
from the schema: :func:`duckdb_csv_options`), so it does not sniff the file.

Metrics (``quick()`` uses :data:`QUICK_ROWS` = 10^6 rows to stay fast;
``make bench`` (``benchmarks/test_bench_sources.py``) and
``python -m pets.devtools.bench_sources --rows 10000000`` use 10^7):

``holder_eval_rows_per_s_parquet`` / ``holder_eval_rows_per_s_csv``
    rows / best wall time of one evaluation.
``holder_eval_vs_duckdb_ratio_parquet`` / ``holder_eval_vs_duckdb_ratio_csv``
    our best time / DuckDB's best time (targets: <= 1.5 Parquet, <= 2 CSV).
    Omitted when DuckDB (a dev dependency) is not installed.
``holder_eval_peak_rss_mb``
    peak RSS (MiB, Linux ``VmHWM``) of a fresh Python process that imports
    pets and evaluates the query once over the Parquet file and once over the
    CSV file (the interpreter, numpy and pyarrow included; target <= 500 MB at
    10^7 rows). Not ``ru_maxrss``: after a fork from a large parent it can
    report the parent's peak.
``holder_eval_rows``
    the number of rows measured (context).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

from pets.devtools.bench import best_time
from pets.devtools.gen_fast import write_generated_fast
from pets.query import Schema, compile, parse_query
from pets.sources import evaluate_source, open_source

QUICK_ROWS = 1_000_000
FULL_ROWS = 10_000_000
QUERY = "mean(cost) from hospitals where age >= 65 group by prefecture"
DUCKDB_SQL = (
    "SELECT prefecture, count(*), avg(cost) FROM {reader}('{path}'{options}) "
    "WHERE age >= 65 GROUP BY prefecture"
)
READERS = {"parquet": "read_parquet", "csv": "read_csv"}
DUCKDB_TYPES = {"int": "BIGINT", "float": "DOUBLE", "category": "VARCHAR"}


def duckdb_csv_options(schema: Schema, dataset: str) -> str:
    """``read_csv`` told what pets is told: the header, the dialect and each column's
    type from the schema, so DuckDB does not sniff the file on every query (about 15 ms
    of 96 at 10^6 rows, measured: the baseline would pay work pets does not)."""
    columns = ", ".join(
        f"'{c.name}': '{DUCKDB_TYPES[c.type]}'" for c in schema.dataset(dataset).columns
    )
    return f", header=true, auto_detect=false, delim=',', quote='\"', columns={{{columns}}}"


def duckdb_sql(schema: Schema, fmt: str, path: Path) -> str:
    """DuckDB's query over one holder's ``fmt`` file (the baseline of the ratios)."""
    options = duckdb_csv_options(schema, "hospitals") if fmt == "csv" else ""
    return DUCKDB_SQL.format(reader=READERS[fmt], path=path, options=options)


_RSS_SCRIPT = """
import resource, sys
from pathlib import Path
from pets.query import Schema, compile, parse_query
from pets.sources import evaluate_source, open_source
schema = Schema.from_toml(Path(sys.argv[1]).read_text())
plan = compile(parse_query(sys.argv[2]), schema)
for path in sys.argv[3:]:
    evaluate_source(plan, open_source(schema, "hospitals", Path(path)))
try:  # this process's own peak: ru_maxrss can carry the parent's across fork/exec
    status = Path("/proc/self/status").read_text()
    print(next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")))
except (OSError, StopIteration):
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def write_files(rows: int, folder: Path) -> dict[str, Path]:
    """One holder's ``rows`` rows as Parquet and CSV (plus ``schema``)."""
    out: dict[str, Path] = {}
    for fmt in ("parquet", "csv"):
        written = write_generated_fast("hospitals", 1, rows, 1, folder / fmt, fmt)  # type: ignore[arg-type]
        out["schema"], out[fmt] = written[0], written[1]
    return out


def peak_rss_mb(files: dict[str, Path]) -> float:
    """Peak RSS (MiB) of a fresh process evaluating the query over both files."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _RSS_SCRIPT,
            str(files["schema"]),
            QUERY,
            str(files["parquet"]),
            str(files["csv"]),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return int(done.stdout.strip().splitlines()[-1]) / 1024  # KiB (VmHWM, ru_maxrss on Linux)


def measure(rows: int, folder: Path, *, repeat: int = 5) -> dict[str, float]:
    """Every metric of the module docstring over ``rows`` rows written under ``folder``."""
    files = write_files(rows, folder)
    schema = Schema.from_toml(files["schema"].read_text())
    plan = compile(parse_query(QUERY), schema)
    try:
        import duckdb  # a dev dependency: the ratios need it
    except ImportError:
        duckdb = None  # type: ignore[assignment]
    metrics: dict[str, float] = {"holder_eval_rows": float(rows)}
    for fmt in ("parquet", "csv"):
        source = open_source(schema, "hospitals", files[fmt])
        runs = repeat if fmt == "parquet" else max(2, repeat // 2)
        con = duckdb.connect() if duckdb is not None else None
        sql = duckdb_sql(schema, fmt, files[fmt])
        ours = theirs = float("inf")
        # Interleaved, best of each: load from other processes hits both paths alike.
        for _ in range(runs):
            ours = min(ours, best_time(partial(evaluate_source, plan, source), repeat=1))
            if con is not None:
                theirs = min(theirs, best_time(partial(_duckdb_query, con, sql), repeat=1))
        metrics[f"holder_eval_rows_per_s_{fmt}"] = rows / ours
        if con is not None:
            con.close()
            metrics[f"holder_eval_vs_duckdb_ratio_{fmt}"] = ours / theirs
    metrics["holder_eval_peak_rss_mb"] = peak_rss_mb(files)
    return metrics


def _duckdb_query(con: Any, sql: str) -> list[Any]:
    return list(con.execute(sql).fetchall())


def quick(rows: int = QUICK_ROWS) -> dict[str, float]:
    """The metrics at 10^6 rows (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="pets-bench-sources-") as folder:
        return measure(rows, Path(folder))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=FULL_ROWS)
    args = parser.parse_args(argv)
    print(json.dumps({"metrics": quick(args.rows)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
