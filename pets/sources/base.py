"""The data-source interface: a dataset's rows as a stream of Arrow record batches.

A :class:`DataSource` knows its dataset, a label for messages, and how to
yield the columns a query reads as ``pyarrow.RecordBatch`` objects of at most
``batch_rows`` rows. :meth:`DataSource.check` compares the source's columns
and types with the schema without reading rows (a node calls it at start).
Readers for each format live in :mod:`pets.sources.files` and
:mod:`pets.sources.sql`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

import pyarrow as pa

from pets.query.schema import Dataset
from pets.sources.convert import check_arrow_schema


class DataSource(ABC):
    """One dataset's rows, read batch by batch (see the module docstring)."""

    def __init__(self, dataset: Dataset, label: str, batch_rows: int) -> None:
        self.dataset = dataset
        self.label = label
        self.batch_rows = batch_rows

    @abstractmethod
    def arrow_schema(self) -> pa.Schema:
        """The source's columns and their Arrow types (read without reading rows)."""

    @abstractmethod
    def batches(self, columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
        """The rows' ``columns``, in order, in batches of at most ``batch_rows`` rows."""

    def check(self) -> None:
        """Raise :class:`~pets.errors.InvalidInputError` on a missing column or wrong type."""
        check_arrow_schema(self.dataset, self.arrow_schema(), self.label)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label}>"


def rebatch(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Cut batches longer than ``rows`` into zero-copy slices of at most ``rows`` rows."""
    for batch in batches:
        if batch.num_rows <= rows:
            if batch.num_rows:
                yield batch
            continue
        for start in range(0, batch.num_rows, rows):
            yield batch.slice(start, rows)
