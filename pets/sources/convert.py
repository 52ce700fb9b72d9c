"""Arrow record batches to validated :class:`~pets.query.Table` batches.

Every source (CSV, Parquet, Arrow IPC, SQLite, PostgreSQL, a DataFrame)
yields ``pyarrow.RecordBatch`` objects; :func:`to_table` checks one batch
against the dataset's schema and converts the columns a query reads into the
numpy form :mod:`pets.query.evaluate` works on (float64 for numbers, int64
domain codes for categories). The checks, per batch and per column:

* types: a numeric column must hold Arrow integers or floats (an ``int``
  column's floats must be integral), a category column strings (plain or
  dictionary-encoded);
* nulls (an empty CSV cell, SQL ``NULL``): "value is empty";
* NaN and infinities: "value is missing or not finite";
* category values outside the domain (surrounding whitespace is ignored).

Errors name the source, the row (numbered from 1 across the whole source, a
CSV's header not counted) and the column, and never a value: a holder's node
may log them and refuse the query without leaking its data.
:func:`check_arrow_schema` applies the type rules to a source's declared
Arrow schema before any row is read (a node's start-up check).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pets.errors import InvalidInputError
from pets.query.schema import Column, Dataset
from pets.query.table import Table


def row_error(source: str, row: int, column: str, problem: str) -> InvalidInputError:
    """The one error format: source, row, column and the problem, never the value."""
    return InvalidInputError(f"{source}: row {row}, column {column!r}: value {problem}")


def check_arrow_schema(
    dataset: Dataset, schema: pa.Schema, source: str, columns: Sequence[str] | None = None
) -> None:
    """Raise :class:`InvalidInputError` if a column is missing or of a type it cannot hold."""
    names = dataset.column_names if columns is None else tuple(columns)
    present = set(schema.names)
    missing = [n for n in names if n not in present]
    if missing:
        raise InvalidInputError(
            f"{source}: column(s) {missing} of dataset {dataset.name!r} are missing "
            f"(the source has {sorted(present)})"
        )
    for name in names:
        column = dataset.column(name)
        t = schema.field(name).type
        if not _type_fits(column, t):
            raise InvalidInputError(
                f"{source}: column {name!r} has type {t}, which cannot hold a {column.type} column"
            )


def _type_fits(column: Column, t: pa.DataType) -> bool:
    if pa.types.is_null(t):
        return True  # a column of nulls only: every row is reported as empty
    if column.type == "category":
        if pa.types.is_dictionary(t):
            t = t.value_type
        return bool(pa.types.is_string(t) or pa.types.is_large_string(t))
    if pa.types.is_dictionary(t):
        return False
    if column.type == "int":
        return bool(pa.types.is_integer(t) or pa.types.is_floating(t))
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))


def to_table(
    dataset: Dataset,
    batch: pa.RecordBatch,
    *,
    source: str,
    first_row: int = 0,
    columns: Sequence[str] | None = None,
) -> Table:
    """One validated batch holding ``columns`` (default: all of the dataset's).

    ``first_row`` is the number of rows of the source before this batch, so
    errors give the row's position in the whole source.
    """
    if dataset.kind != "table":
        raise InvalidInputError(f"dataset {dataset.name!r} is a vector dataset")
    names = dataset.column_names if columns is None else tuple(columns)
    check_arrow_schema(dataset, batch.schema, source, names)
    out: dict[str, np.ndarray] = {}
    for name in names:
        column = dataset.column(name)
        arr = batch.column(name)
        if isinstance(arr, pa.ChunkedArray):  # pragma: no cover - batches hold plain arrays
            arr = arr.combine_chunks()
        values = _convert(column, arr, source, first_row)
        values.setflags(write=False)
        out[name] = values
    return Table(dataset, out)


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _convert(column: Column, arr: pa.Array, source: str, first_row: int) -> np.ndarray:
    name = column.name
    if arr.null_count:
        valid = arr.is_valid().to_numpy(zero_copy_only=False)
        raise row_error(source, first_row + _first(~valid) + 1, name, "is empty")
    if not _type_fits(column, arr.type):
        raise InvalidInputError(
            f"{source}: column {name!r} has type {arr.type}, which cannot hold a "
            f"{column.type} column"
        )
    if column.type == "category":
        return _codes(column, arr, source, first_row)
    if pa.types.is_null(arr.type):
        return np.zeros(0, dtype=np.float64)  # no rows (a row would be null)
    if pa.types.is_integer(arr.type):
        return arr.to_numpy(zero_copy_only=False).astype(np.float64)
    if pa.types.is_decimal(arr.type):
        arr = arr.cast(pa.float64())
    values = arr.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    finite = np.isfinite(values)
    if not finite.all():
        raise row_error(source, first_row + _first(~finite) + 1, name, "is missing or not finite")
    if column.type == "int":
        whole = values == np.round(values)
        if not whole.all():
            raise row_error(source, first_row + _first(~whole) + 1, name, "is not an integer")
    return values


def _codes(column: Column, arr: pa.Array, source: str, first_row: int) -> np.ndarray:
    lookup = {v: i for i, v in enumerate(column.domain)}
    if pa.types.is_dictionary(arr.type):
        # Map the (small) dictionary once, then gather the per-row indices through it.
        labels = arr.dictionary.to_pylist()
        remap = np.array([lookup.get(_strip(v), -1) for v in labels], dtype=np.int64)
        indices = arr.indices.to_numpy(zero_copy_only=False)
        if np.array_equal(remap, np.arange(len(remap))):  # dictionary in domain order
            return indices.astype(np.int64)  # a third of the gather's cost (measured)
        codes = np.take(remap, indices)
        if (remap >= 0).all():  # every label is in the domain: no row can be outside it
            return codes
    else:
        domain = pa.array(column.domain, type=arr.type)
        found = pc.index_in(arr, value_set=domain)
        codes = found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        if (codes < 0).any():  # retry without surrounding whitespace
            trimmed = pc.index_in(pc.utf8_trim_whitespace(arr), value_set=domain)
            codes = trimmed.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    bad = codes < 0
    if bad.any():
        domain_text = ", ".join(column.domain)
        raise row_error(
            source,
            first_row + _first(bad) + 1,
            column.name,
            f"is not in the domain ({domain_text})",
        )
    return codes


def _strip(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""
