"""The same query over the same rows gives an identical holder vector from every source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from pets.query import compile, evaluate, parse_csv, parse_query
from pets.sources import (
    FrameSource,
    SourceSpec,
    check_source,
    evaluate_source,
    open_source,
    table_from_frame,
)
from tests.unit.sources.conftest import QUERIES, Files


def _reference(files: Files, text: str) -> np.ndarray:
    plan = compile(parse_query(text), files.schema)
    return evaluate(plan, parse_csv(files.csv.read_text(), files.dataset))


def _file_specs(files: Files, batch_rows: int) -> dict[str, SourceSpec]:
    return {
        "csv": SourceSpec("csv", path=files.csv, batch_rows=batch_rows),
        "parquet": SourceSpec("parquet", path=files.parquet, batch_rows=batch_rows),
        "arrow": SourceSpec("arrow", path=files.arrow, batch_rows=batch_rows),
        "arrow-stream": SourceSpec("arrow", path=files.arrow_stream, batch_rows=batch_rows),
        "sqlite-table": SourceSpec(
            "sqlite", path=files.sqlite, table="stays", batch_rows=batch_rows
        ),
        "sqlite-query": SourceSpec(
            "sqlite",
            path=files.sqlite,
            query="SELECT * FROM stays WHERE 1 = 1",
            batch_rows=batch_rows,
        ),
    }


@pytest.mark.parametrize("batch_rows", [1 << 20, 97, 5])
@pytest.mark.parametrize("text", QUERIES)
def test_every_file_source_gives_the_reference_vector(
    files: Files, text: str, batch_rows: int
) -> None:
    plan = compile(parse_query(text), files.schema)
    want = _reference(files, text)
    for name, spec in _file_specs(files, batch_rows).items():
        source = open_source(files.schema, "hospitals", spec)
        check_source(files.schema, source)
        for workers in (1, 3):
            got = evaluate_source(plan, source, workers=workers).vector
            assert got.dtype == np.int64
            assert np.array_equal(got, want), (name, workers)


@pytest.mark.parametrize("text", QUERIES)
def test_postgresql_table_and_query_give_the_reference_vector(
    files: Files, pg_conninfo: str, text: str
) -> None:
    plan = compile(parse_query(text), files.schema)
    want = _reference(files, text)
    for spec in (
        SourceSpec("postgresql", conninfo=pg_conninfo, table="stays", batch_rows=64),
        SourceSpec("postgresql", conninfo=pg_conninfo, table="public.stays"),
        SourceSpec("postgresql", conninfo=pg_conninfo, query="SELECT * FROM stays ORDER BY 1"),
    ):
        source = open_source(files.schema, "hospitals", spec)
        check_source(files.schema, source)
        assert np.array_equal(evaluate_source(plan, source).vector, want)


@pytest.mark.parametrize("text", QUERIES)
def test_dataframes_and_arrow_tables_give_the_reference_vector(files: Files, text: str) -> None:
    pandas = pytest.importorskip("pandas")
    plan = compile(parse_query(text), files.schema)
    want = _reference(files, text)
    frame = files.table.to_pandas()
    assert isinstance(frame, pandas.DataFrame)

    class CStream:  # what polars exposes: the Arrow C stream interface only
        def __init__(self, table: pa.Table) -> None:
            self._table = table

        def __arrow_c_stream__(self, requested_schema: object = None) -> object:
            return self._table.__arrow_c_stream__(requested_schema)

    class ToArrow:  # or a to_arrow() method
        def to_arrow(self) -> pa.Table:
            return files.table

    for frame_like in (frame, files.table, CStream(files.table), ToArrow()):
        assert np.array_equal(evaluate(plan, table_from_frame(files.dataset, frame_like)), want)
        source = FrameSource(files.dataset, frame_like, batch_rows=50)
        assert np.array_equal(evaluate_source(plan, source).vector, want)


def test_a_bare_path_picks_the_format_by_suffix(files: Files, tmp_path: Path) -> None:
    plan = compile(parse_query(QUERIES[0]), files.schema)
    want = _reference(files, QUERIES[0])
    feather = tmp_path / "h.feather"
    feather.write_bytes(files.arrow.read_bytes())
    for path in (files.csv, files.parquet, feather):
        source = open_source(files.schema, "hospitals", path)
        assert np.array_equal(evaluate_source(plan, source).vector, want)


@pytest.mark.parametrize("batch_rows", [1 << 20, 97])
def test_parquet_with_row_groups_too_large_to_scan_streams_batch_by_batch(
    files: Files, batch_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row groups above SCAN_ROW_GROUP_ROWS are read by iter_batches (memory: a few batches);
    same vector as the scanned path and the reference."""
    from pets.sources.files import ParquetSource

    spec = SourceSpec("parquet", path=files.parquet, batch_rows=batch_rows)
    source = open_source(files.schema, "hospitals", spec)
    assert isinstance(source, ParquetSource)
    for text in QUERIES:
        plan = compile(parse_query(text), files.schema)
        scanned = evaluate_source(plan, source, workers=2).vector
        monkeypatch.setattr(ParquetSource, "SCAN_ROW_GROUP_ROWS", 16)  # the file has 128
        streamed = evaluate_source(plan, source, workers=2).vector
        monkeypatch.undo()
        assert np.array_equal(scanned, streamed) and np.array_equal(
            streamed, _reference(files, text)
        )
