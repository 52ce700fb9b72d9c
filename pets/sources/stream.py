"""Opening a holder's sources, checking them at start, and evaluating queries on them.

:func:`open_source` turns a ``[data]`` setting into a source;
:func:`check_source` compares it with the schema before any query (a missing
column, a Parquet column of the wrong type, a vector of the wrong length);
:func:`evaluate_source` streams the query's columns through the checks of
:mod:`pets.sources.convert` into a :class:`~pets.query.evaluate.Accumulator`.

Batches are read in stream order on the calling thread (pyarrow decodes
Parquet on its own pool) and checked and evaluated on a small thread pool
(numpy and pyarrow release the GIL), at most ``workers + 1`` batches in
flight: memory is O(batch_rows x workers) whatever the size of the source
(plus, for Parquet, the few row groups pyarrow decodes ahead: at most 2^20
rows each, :class:`~pets.sources.files.ParquetSource`).
Rows are counted as they are read, so a source with more than ``max_rows``
rows is refused before a slot could leave the range
:func:`~pets.query.plan.compile` proved.
"""

from __future__ import annotations

import functools
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa

from pets.errors import InvalidInputError
from pets.query.evaluate import Accumulator, Evaluation
from pets.query.plan import QueryPlan
from pets.query.schema import Dataset, Schema
from pets.query.table import Table
from pets.sources import allocator
from pets.sources.base import DataSource
from pets.sources.convert import to_table
from pets.sources.files import ArrowSource, CsvSource, ParquetSource, load_vector
from pets.sources.spec import SourceSpec, spec_for_path
from pets.sources.sql import PostgresSource, SqliteSource

DEFAULT_WORKERS = max(1, min(4, os.cpu_count() or 1))


class VectorFile:
    """A vector dataset's ``.npy`` file: the holder's one vector."""

    def __init__(self, dataset: Dataset, path: Path, label: str = "") -> None:
        self.dataset = dataset
        self.path = path
        self.label = label or f"npy file {path}"

    def table(self) -> Table:
        """The vector, checked (shape, finite numbers)."""
        try:
            return Table.from_vector(self.dataset, load_vector(self.path))
        except InvalidInputError as exc:
            raise InvalidInputError(f"{self.label}: {exc}") from None

    def check(self) -> None:
        """Load and check the vector (it is small: ``length`` numbers)."""
        self.table()


Source = DataSource | VectorFile


def open_source(schema: Schema | Dataset, dataset: str, setting: Path | str | SourceSpec) -> Source:
    """The source a ``[data]`` setting names (see :mod:`pets.sources.spec`); nothing read yet."""
    ds = schema if isinstance(schema, Dataset) else schema.dataset(dataset)
    spec = (
        setting
        if isinstance(setting, SourceSpec)
        else spec_for_path(Path(setting), dataset=ds.name)
    )
    label = f"dataset {ds.name} ({spec.describe()})"
    if spec.format == "npy" or ds.kind == "vector":
        if spec.format != "npy" or ds.kind != "vector":
            raise InvalidInputError(
                f"{label}: vector datasets are read from .npy files, tables from the other formats"
            )
        assert spec.path is not None
        return VectorFile(ds, spec.path, label)
    if spec.format == "postgresql":
        assert spec.conninfo is not None
        return PostgresSource(
            ds, spec.conninfo, spec.batch_rows, table=spec.table, query=spec.query, label=label
        )
    assert spec.path is not None
    if spec.format == "sqlite":
        return SqliteSource(
            ds, spec.path, spec.batch_rows, table=spec.table, query=spec.query, label=label
        )
    readers: dict[str, type[CsvSource | ParquetSource | ArrowSource]] = {
        "csv": CsvSource,
        "parquet": ParquetSource,
        "arrow": ArrowSource,
    }
    return readers[spec.format](ds, spec.path, spec.batch_rows, label)


def check_source(schema: Schema, source: Source) -> None:
    """Refuse a source whose dataset, columns or types do not match ``schema``.

    Reads no rows of a table (only a CSV header, a Parquet footer, an IPC
    schema, a ``LIMIT 0`` query); a vector is loaded and checked whole.
    """
    declared = schema.dataset(source.dataset.name)
    if declared != source.dataset:
        raise InvalidInputError(f"{source.label}: opened for another declaration of the dataset")
    source.check()


def query_columns(plan: QueryPlan) -> tuple[str, ...]:
    """The columns ``plan`` reads, in schema order (at least one: rows must be counted)."""
    q = plan.query
    used = {f.column for f in q.where} | set(q.group_by) | set(q.columns)
    if q.column is not None:
        used.add(q.column)
    names = tuple(n for n in plan.dataset.column_names if n in used)
    return names or plan.dataset.column_names[:1]


def evaluate_source(
    plan: QueryPlan, source: Source, *, workers: int = DEFAULT_WORKERS
) -> Evaluation:
    """Evaluate ``plan`` on ``source`` batch by batch (see the module docstring)."""
    allocator.tune()  # batch temporaries reuse heap memory (pets.sources.allocator)
    acc = Accumulator(plan, source=source.label)
    if isinstance(source, VectorFile):
        acc.push(source.table())
        return acc.finish()
    if source.dataset != plan.dataset:
        raise InvalidInputError(f"{source.label}: not the query's dataset {plan.dataset.name!r}")
    columns = query_columns(plan)

    def work(batch: pa.RecordBatch, first_row: int) -> Partial:
        table = to_table(
            plan.dataset, batch, source=source.label, first_row=first_row, columns=columns
        )
        return acc.partial(table)

    if workers <= 1:
        for batch in source.batches(columns):
            first = acc.rows
            acc.count_rows(batch.num_rows)
            acc.add(work(batch, first))
        return acc.finish()

    def tasks() -> Iterator[Callable[[], Partial]]:
        for batch in source.batches(columns):
            first = acc.rows
            acc.count_rows(batch.num_rows)
            yield functools.partial(work, batch, first)

    _run_bounded(acc, tasks(), workers)
    return acc.finish()


Partial = tuple[np.ndarray, np.ndarray, int]


def _run_bounded(acc: Accumulator, tasks: Iterator[Callable[[], Partial]], workers: int) -> None:
    """Run ``tasks`` on ``workers`` threads, at most ``workers + 1`` in flight; add in order.

    Producing the next task may raise (a read error, or ``max_rows`` passed):
    the tasks already running finish first, so an earlier batch's own error
    comes first and errors name the first bad row whatever ``workers`` is.
    """
    pending: deque[Future[Partial]] = deque()
    with ThreadPoolExecutor(workers, thread_name_prefix="pets-eval") as pool:
        try:
            try:
                for task in tasks:
                    pending.append(pool.submit(task))
                    while len(pending) > workers:
                        acc.add(pending.popleft().result())
            except InvalidInputError:
                while pending:
                    acc.add(pending.popleft().result())
                raise
            while pending:
                acc.add(pending.popleft().result())
        except BaseException:
            for future in pending:
                future.cancel()
            raise


def read_table(source: Source, columns: Sequence[str] | None = None) -> Table:
    """The whole source as one validated table (small data: tests, the demo, notebooks)."""
    if isinstance(source, VectorFile):
        return source.table()
    names = tuple(columns) if columns is not None else source.dataset.column_names
    parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
    seen = 0
    for batch in source.batches(names):
        table = to_table(source.dataset, batch, source=source.label, first_row=seen, columns=names)
        seen += batch.num_rows
        for n in names:
            parts[n].append(table.columns[n])
    out = {}
    for n in names:
        dtype = np.int64 if source.dataset.column(n).type == "category" else np.float64
        arr = np.concatenate(parts[n]) if parts[n] else np.zeros(0, dtype=dtype)
        arr.setflags(write=False)
        out[n] = arr
    return Table(source.dataset, out)
