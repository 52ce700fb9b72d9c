"""Holder data sources: CSV, Parquet, Arrow IPC, SQLite, PostgreSQL and DataFrames.

A node declares per dataset where its rows live (``[data]`` in its TOML,
:mod:`pets.sources.spec`), checks each source against the schema when it
starts (:func:`check_source`), and evaluates every query by streaming the
query's columns as Arrow record batches (:func:`evaluate_source`): each batch
is validated (:mod:`pets.sources.convert`) and folded into the holder's
vector, so memory is O(batch), not O(rows). Errors name the source, the row
and the column, never a value.

Libraries: pyarrow for CSV, Parquet and Arrow IPC (columnar, multithreaded
Parquet decoding, a streaming CSV reader); the standard ``sqlite3`` module;
psycopg 3 for PostgreSQL. Why, with measurements: ``docs/DATA_SOURCES.md``.
"""

from pets.sources.base import DataSource
from pets.sources.convert import check_arrow_schema, to_table
from pets.sources.frames import FrameSource, table_from_frame, to_arrow_table
from pets.sources.spec import FORMATS, SourceSpec, parse_source_setting, spec_for_path
from pets.sources.stream import (
    Source,
    VectorFile,
    check_source,
    evaluate_source,
    open_source,
    query_columns,
    read_table,
)

__all__ = [
    "FORMATS",
    "DataSource",
    "FrameSource",
    "Source",
    "SourceSpec",
    "VectorFile",
    "check_arrow_schema",
    "check_source",
    "evaluate_source",
    "open_source",
    "parse_source_setting",
    "query_columns",
    "read_table",
    "spec_for_path",
    "table_from_frame",
    "to_arrow_table",
    "to_table",
]
