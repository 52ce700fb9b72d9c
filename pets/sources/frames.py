"""Holder tables from DataFrames and Arrow tables, for people who work in notebooks.

:func:`table_from_frame` and :class:`FrameSource` accept

* a ``pyarrow.Table`` or ``RecordBatch``;
* anything exporting the Arrow C stream interface (``__arrow_c_stream__``:
  polars, DuckDB relations, recent pandas), or a ``to_arrow()`` method,
  so polars works without this module importing it;
* a pandas DataFrame (``pyarrow.Table.from_pandas``; pandas is the optional
  ``pets[pandas]`` extra). pandas' NaN becomes null, reported as "value is empty".

The rows go through the same per-batch checks as every file or database
source (:mod:`pets.sources.convert`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa

from pets.errors import InvalidInputError
from pets.query.schema import Dataset
from pets.query.table import Table
from pets.sources.base import DataSource, rebatch
from pets.sources.spec import DEFAULT_BATCH_ROWS


def to_arrow_table(frame: object) -> pa.Table:
    """``frame`` as a ``pyarrow.Table`` (see the module docstring for what is accepted)."""
    if isinstance(frame, pa.Table):
        return frame
    if isinstance(frame, pa.RecordBatch):
        return pa.Table.from_batches([frame])
    try:
        if hasattr(frame, "__arrow_c_stream__"):
            return pa.table(frame)
        to_arrow = getattr(frame, "to_arrow", None)
        if callable(to_arrow):
            return to_arrow_table(to_arrow())
        if hasattr(frame, "iloc") and hasattr(frame, "columns"):  # pandas, without importing it
            return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError):
        raise InvalidInputError(
            f"could not read a {type(frame).__name__} as an Arrow table (mixed or unsupported "
            "column types?)"
        ) from None
    raise InvalidInputError(
        f"expected a pandas or polars DataFrame or an Arrow table, got {type(frame).__name__}"
    )


class FrameSource(DataSource):
    """An in-memory frame as a data source (batches are zero-copy slices)."""

    def __init__(
        self,
        dataset: Dataset,
        frame: object,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        label: str = "",
    ) -> None:
        super().__init__(dataset, label or f"{type(frame).__name__} frame", batch_rows)
        self.table = to_arrow_table(frame)

    def arrow_schema(self) -> pa.Schema:
        return self.table.schema

    def batches(self, columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
        projected = self.table.select(list(columns))
        yield from rebatch(
            iter(projected.to_batches(max_chunksize=self.batch_rows)), self.batch_rows
        )


def table_from_frame(dataset: Dataset, frame: object) -> Table:
    """A validated holder :class:`~pets.query.Table` of every column of ``dataset``."""
    from pets.sources.stream import read_table

    return read_table(FrameSource(dataset, frame))
