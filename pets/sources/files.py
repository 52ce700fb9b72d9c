"""File sources: CSV, Parquet and Arrow IPC (Feather v2) through pyarrow, and ``.npy`` vectors.

All three table formats stream: pyarrow's CSV reader parses 1 MiB blocks,
Parquet is scanned by ``pyarrow.dataset`` (projected to the query's columns,
row groups decoded ahead on pyarrow's thread pool; batch by batch for row
groups over 2^20 rows), an IPC file one record batch at a time. Numeric CSV
columns are parsed as float64 (an ``int`` column's integrality is checked per
batch), category columns dictionary-encoded, so mapping labels to domain codes
costs one lookup per distinct label.

pyarrow's own error messages quote the offending cell, so no pyarrow text
reaches a message here: a conversion or parse error is reduced to its row
and column numbers (:func:`csv_error`).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.dataset as pa_ds
import pyarrow.ipc as pa_ipc
import pyarrow.parquet as pq

from pets.errors import InvalidInputError
from pets.query.schema import Dataset
from pets.sources.base import DataSource, rebatch

CSV_BLOCK_BYTES = 1 << 20  # 4 MiB was 7% faster but doubled peak RSS (readahead)
_CONVERSION = re.compile(r"In CSV column #(\d+): Row #(\d+): CSV conversion error")
_FIELDS = re.compile(r"Row #(\d+): Expected (\d+) columns, got (\d+)")


def _unreadable(label: str, what: str) -> InvalidInputError:
    return InvalidInputError(f"{label}: not a readable {what} file")


class CsvSource(DataSource):
    """A CSV file with a header row (any column order; extra columns are ignored)."""

    def __init__(self, dataset: Dataset, path: Path, batch_rows: int, label: str = "") -> None:
        super().__init__(dataset, label or f"CSV file {path}", batch_rows)
        self.path = path

    def header(self) -> list[str]:
        """The header's column names (surrounding whitespace and a byte-order mark removed)."""
        try:
            with open(self.path, encoding="utf-8-sig", newline="") as fh:
                for row in csv.reader(fh):
                    if any(cell.strip() for cell in row):
                        names = [cell.strip() for cell in row]
                        break
                else:
                    raise InvalidInputError(f"{self.label} is empty; a header row is required")
        except (OSError, UnicodeDecodeError, csv.Error):
            raise _unreadable(self.label, "CSV") from None
        if len(set(names)) != len(names):
            raise InvalidInputError(f"{self.label}: the header repeats a column")
        return names

    def arrow_schema(self) -> pa.Schema:
        types = self._types(self.dataset.column_names)
        return pa.schema([(n, types.get(n, pa.string())) for n in self.header()])

    def _types(self, columns: Sequence[str]) -> dict[str, pa.DataType]:
        return csv_types(self.dataset, columns)

    def batches(self, columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
        names = self.header()
        missing = [c for c in columns if c not in names]
        if missing:
            raise InvalidInputError(f"{self.label}: column(s) {missing} are missing")
        read = pa_csv.ReadOptions(
            column_names=names,
            skip_rows=1,
            block_size=CSV_BLOCK_BYTES,
            use_threads=False,  # measured: the single-threaded reader streams faster here
        )
        convert = csv_convert_options(self.dataset, columns)
        try:
            reader = pa_csv.open_csv(self.path, read_options=read, convert_options=convert)
            yield from rebatch(iter(reader), self.batch_rows)
        except pa.ArrowException as exc:
            raise csv_error(self.label, names, exc) from None
        except (OSError, UnicodeDecodeError):
            raise _unreadable(self.label, "CSV") from None


def csv_types(dataset: Dataset, columns: Sequence[str]) -> dict[str, pa.DataType]:
    """Numbers as float64, categories dictionary-encoded (one lookup per distinct label)."""
    out: dict[str, pa.DataType] = {}
    for name in columns:
        column = dataset.column(name)
        out[name] = (
            pa.dictionary(pa.int32(), pa.string()) if column.type == "category" else pa.float64()
        )
    return out


def csv_convert_options(dataset: Dataset, columns: Sequence[str]) -> pa_csv.ConvertOptions:
    """How CSV text becomes the query's columns (shared by CSV files and PostgreSQL COPY)."""
    return pa_csv.ConvertOptions(
        include_columns=list(columns),
        column_types=csv_types(dataset, columns),
        null_values=[""],  # only an empty cell is empty; "nan" stays NaN (not finite)
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )


def csv_error(
    label: str, names: Sequence[str], exc: Exception, header_lines: int = 1
) -> InvalidInputError:
    """A pyarrow CSV error reduced to row and column (its text quotes the cell: dropped)."""
    text = str(exc)
    m = _CONVERSION.search(text)
    if m:
        index, line = int(m.group(1)), int(m.group(2))
        column = names[index] if index < len(names) else f"#{index}"
        row = line - header_lines
        return InvalidInputError(f"{label}: row {row}, column {column!r}: value is not a number")
    m = _FIELDS.search(text)
    if m:
        line, want, got = (int(g) for g in m.groups())
        return InvalidInputError(
            f"{label}: row {line - header_lines} has {got} fields, the header has {want}"
        )
    return InvalidInputError(f"{label}: the data could not be parsed as CSV")


class ParquetSource(DataSource):
    """A Parquet file: only the query's columns, in order, category columns as dictionaries.

    Row groups of at most :data:`SCAN_ROW_GROUP_ROWS` rows (pyarrow writes
    2^20 by default) are scanned by ``pyarrow.dataset``: it decodes row groups
    ahead on pyarrow's thread pool (``use_threads``, at most
    ``READAHEAD_BATCHES`` batches ahead), each row group's column chunks read
    in one coalesced request (``pre_buffer``), while the caller's workers check
    and evaluate the batches already decoded. The scanner decodes a whole row
    group at a time, so a file with larger row groups is read batch by batch
    by ``ParquetFile.iter_batches`` instead, which keeps memory at a few
    batches whatever the row-group size (measured, docs/DATA_SOURCES.md).
    """

    READAHEAD_BATCHES = 4
    SCAN_ROW_GROUP_ROWS = 1 << 20

    def __init__(self, dataset: Dataset, path: Path, batch_rows: int, label: str = "") -> None:
        super().__init__(dataset, label or f"Parquet file {path}", batch_rows)
        self.path = path

    def _open(self, dictionary: Sequence[str] = ()) -> pq.ParquetFile:
        try:
            return pq.ParquetFile(self.path, read_dictionary=list(dictionary) or None)
        except (pa.ArrowException, OSError):
            raise _unreadable(self.label, "Parquet") from None

    def arrow_schema(self) -> pa.Schema:
        return self._open().schema_arrow

    def batches(self, columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
        dictionary = [c for c in columns if self.dataset.column(c).type == "category"]
        f = self._open(dictionary)
        meta = f.metadata
        largest = max((meta.row_group(i).num_rows for i in range(meta.num_row_groups)), default=0)
        try:
            if largest <= self.SCAN_ROW_GROUP_ROWS:
                scanned = self._scan(columns, dictionary)
            else:
                scanned = f.iter_batches(
                    batch_size=self.batch_rows, columns=list(columns), use_threads=True
                )
            yield from rebatch(scanned, self.batch_rows)
        except (pa.ArrowException, OSError):
            raise _unreadable(self.label, "Parquet") from None

    def _scan(self, columns: Sequence[str], dictionary: list[str]) -> Iterator[pa.RecordBatch]:
        file_format = pa_ds.ParquetFileFormat(
            read_options=pa_ds.ParquetReadOptions(dictionary_columns=dictionary),
            default_fragment_scan_options=pa_ds.ParquetFragmentScanOptions(pre_buffer=True),
        )
        data = pa_ds.dataset(self.path, format=file_format)
        return data.to_batches(  # type: ignore[no-any-return]
            columns=list(columns),
            batch_size=self.batch_rows,
            batch_readahead=self.READAHEAD_BATCHES,
            use_threads=True,
        )


class ArrowSource(DataSource):
    """An Arrow IPC file (Feather v2) or stream, one record batch at a time."""

    def __init__(self, dataset: Dataset, path: Path, batch_rows: int, label: str = "") -> None:
        super().__init__(dataset, label or f"Arrow file {path}", batch_rows)
        self.path = path

    def _reader(self) -> Iterator[pa.RecordBatch] | pa_ipc.RecordBatchFileReader:
        try:
            source = pa.OSFile(str(self.path))
        except (pa.ArrowException, OSError):
            raise _unreadable(self.label, "Arrow IPC") from None
        try:
            return pa_ipc.open_file(source)
        except pa.ArrowException:
            pass
        try:
            return pa_ipc.open_stream(pa.OSFile(str(self.path)))  # type: ignore[no-any-return]
        except pa.ArrowException:
            raise _unreadable(self.label, "Arrow IPC") from None

    def arrow_schema(self) -> pa.Schema:
        return self._reader().schema  # type: ignore[union-attr]

    def batches(self, columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
        reader = self._reader()
        try:
            if isinstance(reader, pa_ipc.RecordBatchFileReader):
                raw: Iterator[pa.RecordBatch] = (
                    reader.get_batch(i) for i in range(reader.num_record_batches)
                )
            else:
                raw = iter(reader)
            selected = (b.select(list(columns)) for b in raw)
            yield from rebatch(selected, self.batch_rows)
        except (pa.ArrowException, OSError):
            raise _unreadable(self.label, "Arrow IPC") from None


def load_vector(path: Path) -> np.ndarray:
    """A vector dataset's ``.npy`` file (no pickles)."""
    try:
        return np.load(path, allow_pickle=False)  # type: ignore[no-any-return]
    except (OSError, ValueError):
        raise _unreadable(f".npy file {path}", "NumPy") from None
