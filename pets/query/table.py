"""One holder's rows of one dataset, as validated numpy columns.

Numeric columns are float64 (int columns hold integral values), category
columns are int64 codes into the column's domain (``domain[code]``). A vector
dataset's table holds the single float64 vector. Arrays are read-only.

A table may hold only some of its dataset's columns (a *projection*: the
columns one query reads, as :mod:`pets.sources` streams them batch by batch);
asking it for another column raises :class:`InvalidInputError`.

A linkable dataset's identifier column (``[datasets.X.linkage] id_column``,
not one of its ``columns``) may be present: :attr:`Table.ids` keeps it as
the raw strings (normalised only when a linked query needs it,
:mod:`pets.linkage.persons`); ordinary queries never read it.

Error messages name the row and column but never echo the holder's values,
so they can be reported without leaking data.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from pets.errors import InvalidInputError
from pets.query.schema import Column, Dataset


@dataclass(frozen=True, eq=False)
class Table:
    """The rows of one holder for one dataset (see the module docstring)."""

    dataset: Dataset
    columns: Mapping[str, np.ndarray] = field(default_factory=dict)
    vector: np.ndarray | None = None
    ids: np.ndarray | None = field(default=None, repr=False)  # raw identifiers (object array)

    @property
    def n_rows(self) -> int:
        """Number of rows (1 for a vector dataset)."""
        if self.dataset.kind == "vector":
            return 1
        for values in self.columns.values():
            return len(values)
        return 0

    def __len__(self) -> int:
        return self.n_rows

    def values(self, name: str) -> np.ndarray:
        """A numeric column (float64) or a category column's codes (int64)."""
        self.dataset.column(name)
        try:
            return self.columns[name]
        except KeyError:
            raise InvalidInputError(f"column {name!r} was not read into this table") from None

    def labels(self, name: str) -> np.ndarray:
        """A category column as strings (for display and tests)."""
        column = self.dataset.column(name)
        if column.type != "category":
            raise InvalidInputError(f"column {name!r} is not a category column")
        return np.asarray(column.domain, dtype=object)[self.columns[name]]

    @classmethod
    def from_columns(cls, dataset: Dataset, data: Mapping[str, object]) -> Table:
        """Build a table from array-likes, one per column of ``dataset``.

        Numeric columns take numbers (NaN and infinities rejected; int
        columns integral values). Category columns take strings from the
        domain, or integer codes into it. Missing or unknown columns and
        unequal lengths raise :class:`InvalidInputError`.
        """
        if dataset.kind != "table":
            raise InvalidInputError(
                f"dataset {dataset.name!r} is a vector dataset; use Table.from_vector"
            )
        _check_names(dataset, list(data))
        out: dict[str, np.ndarray] = {}
        n: int | None = None
        for column in dataset.columns:
            arr = _convert(column, data[column.name])
            if n is not None and len(arr) != n:
                raise InvalidInputError(
                    f"column {column.name!r} has {len(arr)} values, the others {n}"
                )
            n = len(arr)
            arr.setflags(write=False)
            out[column.name] = arr
        ids = None
        id_column = _id_column(dataset)
        if id_column is not None and id_column in data:
            ids = _identifiers(id_column, data[id_column])
            if n is not None and len(ids) != n:
                raise InvalidInputError(
                    f"column {id_column!r} has {len(ids)} values, the others {n}"
                )
        return cls(dataset, out, ids=ids)

    @classmethod
    def from_vector(cls, dataset: Dataset, vector: object) -> Table:
        """Wrap one holder's vector (1-D, ``dataset.length`` finite numbers)."""
        if dataset.kind != "vector":
            raise InvalidInputError(f"dataset {dataset.name!r} is a table; use from_columns")
        arr = np.array(vector, copy=True)
        if arr.dtype.kind not in "iuf" or arr.dtype == np.bool_:
            raise InvalidInputError(f"vector for {dataset.name!r} must be numeric, got {arr.dtype}")
        arr = arr.astype(np.float64)
        if arr.ndim != 1 or len(arr) != dataset.length:
            raise InvalidInputError(
                f"vector for {dataset.name!r} must have shape ({dataset.length},), got {arr.shape}"
            )
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise InvalidInputError(
                f"vector for {dataset.name!r}: element {int(bad[0])} is missing or not finite"
            )
        arr.setflags(write=False)
        return cls(dataset, {}, arr)


def parse_csv(text: str, dataset: Dataset) -> Table:
    """Parse a CSV (header row required, one column per schema column, any order).

    Rows are numbered from 1 after the header. Empty numeric cells, non-numbers,
    non-integers in int columns, non-finite numbers and category values outside
    the domain raise :class:`InvalidInputError` naming the row and column.
    Values are not clipped here: clipping to the query's bounds happens at
    evaluation.
    """
    if dataset.kind != "table":
        raise InvalidInputError(
            f"dataset {dataset.name!r} is a vector dataset; load it with Table.from_vector"
        )
    text = text.removeprefix("\ufeff")  # a byte-order mark some spreadsheets write
    # Blank lines carry no row anywhere in the file (not only at its end).
    rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    if not rows:
        raise InvalidInputError(f"CSV for {dataset.name!r} is empty; a header row is required")
    header = [h.strip() for h in rows[0]]
    _check_names(dataset, header)
    id_column = _id_column(dataset)
    if len(set(header)) != len(header):
        raise InvalidInputError(f"CSV header for {dataset.name!r} repeats a column")
    body = rows[1:]
    for i, row in enumerate(body, start=1):
        if len(row) != len(header):
            raise InvalidInputError(
                f"CSV row {i} has {len(row)} fields, the header has {len(header)}"
            )
    cells = list(zip(*body, strict=True)) if body else [() for _ in header]
    data: dict[str, object] = {}
    for name, raw in zip(header, cells, strict=True):
        if name == id_column:
            data[name] = np.asarray(raw, dtype=object)
            continue
        column = dataset.column(name)
        data[name] = _parse_cells(column, raw)
    return Table.from_columns(dataset, data)


def _id_column(dataset: Dataset) -> str | None:
    return None if dataset.linkage is None else dataset.linkage.id_column


def _identifiers(name: str, values: object) -> np.ndarray:
    """The identifier column as a read-only object array (str, int or bytes; None = missing)."""
    arr = np.asarray(values, dtype=object)
    if arr.ndim != 1:
        raise InvalidInputError(f"column {name!r} must be a 1-D array of identifiers")
    arr.setflags(write=False)
    return arr


def _check_names(dataset: Dataset, names: list[str]) -> None:
    declared = set(dataset.column_names)
    id_column = _id_column(dataset)
    if id_column is not None:
        declared.add(id_column)
    for name in names:
        if name not in declared:
            raise InvalidInputError(f"dataset {dataset.name!r} has no column {name!r}")
    for name in dataset.column_names:
        if name not in names:
            raise InvalidInputError(f"column {name!r} of dataset {dataset.name!r} is missing")


_NON_FINITE = re.compile(r"[+-]?(inf|infinity|nan)", re.ASCII | re.IGNORECASE)
_INT_CELL = re.compile(r"[+-]?[0-9]+", re.ASCII)
_FLOAT_CELL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)


def _parse_cells(column: Column, raw: tuple[str, ...]) -> np.ndarray:
    stripped = [cell.strip() for cell in raw]
    if column.type == "category":
        return _codes(column, np.asarray(stripped, dtype=object))
    parse = int if column.type == "int" else float
    pattern = _INT_CELL if column.type == "int" else _FLOAT_CELL
    try:
        # ASCII digits only: Python would also read "1_000" or Arabic-Indic digits.
        if all(pattern.fullmatch(c) for c in stripped):
            return np.array([parse(c) for c in stripped], dtype=np.float64)
    except (ValueError, OverflowError):
        pass
    kind = "an integer" if column.type == "int" else "a number"
    for i, cell in enumerate(stripped, start=1):
        if pattern.fullmatch(cell):
            try:
                float(parse(cell))
                continue
            except (ValueError, OverflowError):
                pass
        if _NON_FINITE.fullmatch(cell):
            problem = "is missing or not finite"
        else:
            problem = "is empty" if not cell else f"is not {kind}"
        raise InvalidInputError(f"CSV row {i}, column {column.name!r}: value {problem}")
    raise InvalidInputError(f"column {column.name!r}: values could not be read")  # pragma: no cover


def _codes(column: Column, values: np.ndarray) -> np.ndarray:
    if values.dtype.kind in "iu":
        codes = values.astype(np.int64)
        bad = np.flatnonzero((codes < 0) | (codes >= len(column.domain)))
    else:
        lookup = {v: i for i, v in enumerate(column.domain)}
        codes = np.array([lookup.get(v, -1) if isinstance(v, str) else -1 for v in values])
        codes = codes.astype(np.int64)
        bad = np.flatnonzero(codes < 0)
    if bad.size:
        domain = ", ".join(column.domain)
        raise InvalidInputError(
            f"row {int(bad[0]) + 1}, column {column.name!r}: value is not in the domain ({domain})"
        )
    return codes


def _convert(column: Column, values: object) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim == 0:
        raise InvalidInputError(f"column {column.name!r} must be a 1-D array of values")
    if arr.ndim != 1:
        raise InvalidInputError(f"column {column.name!r} must be 1-D, got shape {arr.shape}")
    if column.type == "category":
        if arr.size == 0:
            return np.zeros(0, dtype=np.int64)
        if arr.dtype.kind not in "iuUSO" or arr.dtype == np.bool_:
            raise InvalidInputError(f"column {column.name!r} takes strings or codes")
        if arr.dtype.kind in "US":
            arr = arr.astype(object)
        return _codes(column, arr)
    if arr.dtype.kind not in "iuf":
        if arr.size == 0:
            return np.zeros(0, dtype=np.float64)
        raise InvalidInputError(f"column {column.name!r} is numeric; got values of {arr.dtype}")
    out = arr.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(out))
    if bad.size:
        raise InvalidInputError(
            f"row {int(bad[0]) + 1}, column {column.name!r}: value is missing or not finite"
        )
    if column.type == "int":
        bad = np.flatnonzero(out != np.round(out))
        if bad.size:
            raise InvalidInputError(
                f"row {int(bad[0]) + 1}, column {column.name!r}: value is not an integer"
            )
    return out.copy()
