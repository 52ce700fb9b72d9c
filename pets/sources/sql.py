"""SQL sources: a table or a read-only query in SQLite or PostgreSQL.

Read-only is enforced by the database, not by inspecting the SQL:

* SQLite is opened with a ``mode=ro`` URI (the file cannot be written or
  created) and ``PRAGMA query_only = ON`` (no statement may change the
  database, https://www.sqlite.org/pragma.html#pragma_query_only);
* PostgreSQL (psycopg 3) runs in ``BEGIN READ ONLY`` transactions
  (``Connection.read_only``) with ``default_transaction_read_only = on`` for
  the session, so an ``INSERT`` or ``DELETE`` in a configured query fails
  with ``read_only_sql_transaction``. Every statement built around a
  configured query is first parsed by the extended protocol (a prepared
  ``Parse``), which refuses more than one command ("cannot insert multiple
  commands into a prepared statement", PostgreSQL protocol docs 55.2.3):
  psycopg sends parameterless text by the simple-query protocol, where
  ``;``-separated statements would all run, so a query that closed the
  wrapping parentheses could ``COMMIT`` and write. ``COPY`` cannot be
  prepared, so the same ``SELECT`` is prepared first (``LIMIT 0``) in the
  same read-only transaction; its text around the query holds no ``;``
  or quote, so both statements split the query text the same way.
  Give the source a role that may only ``SELECT`` (docs/DATA_SOURCES.md).

PostgreSQL rows stream as ``COPY (SELECT ...) TO STDOUT (FORMAT csv)`` text
into pyarrow's CSV reader (parsed in C); SQLite rows come ``batch_rows`` at a
time from ``fetchmany`` as Python tuples. Both become Arrow record batches
for the shared checks of :mod:`pets.sources.convert`. Only the query's
columns are selected (``SELECT "c1", ... FROM (<query>)``). Database error
texts can quote data (``invalid input syntax for type integer: "..."``), so
messages carry the error's class and SQLSTATE, not its text.

Declared column types are checked at start where the database has them
(SQLite table affinities, PostgreSQL result types); SQLite query results
are typeless until read and are checked per batch.
"""

from __future__ import annotations

import io
import sqlite3
import urllib.parse
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv

from pets.errors import InvalidInputError
from pets.query.schema import Dataset
from pets.sources.base import DataSource, rebatch
from pets.sources.convert import row_error
from pets.sources.files import CSV_BLOCK_BYTES, csv_convert_options, csv_error


def rows_to_batch(
    dataset: Dataset, names: Sequence[str], rows: list[tuple[Any, ...]], label: str, first_row: int
) -> pa.RecordBatch:
    """Python row tuples (DB-API) as a record batch; wrong Python types name row and column."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    arrays = []
    for name, values in zip(names, columns, strict=True):
        column = dataset.column(name)
        if column.type == "category":
            arrays.append(_array(values, (str,), pa.string(), name, label, first_row, "text"))
        else:
            arrays.append(
                _array(
                    values, (int, float, Decimal), pa.float64(), name, label, first_row, "a number"
                )
            )
    return pa.RecordBatch.from_arrays(arrays, names=list(names))


def _array(
    values: Sequence[Any],
    allowed: tuple[type, ...],
    arrow_type: pa.DataType,
    name: str,
    label: str,
    first_row: int,
    what: str,
) -> pa.Array:
    kinds = set(map(type, values))
    if kinds <= {*allowed, type(None)} and bool not in kinds:
        if Decimal in kinds:
            values = [float(v) if isinstance(v, Decimal) else v for v in values]
        try:
            return pa.array(values, type=arrow_type)
        except (pa.ArrowException, OverflowError):
            pass  # an integer beyond float range: found below
    for i, v in enumerate(values):
        if v is None:
            continue
        ok = isinstance(v, allowed) and not isinstance(v, bool)
        if ok and arrow_type == pa.float64():
            try:
                float(v)
            except OverflowError:
                ok = False
        if not ok:
            raise row_error(label, first_row + i + 1, name, f"is not {what}")
    raise row_error(label, first_row + 1, name, f"is not {what}")  # pragma: no cover


def _db_error(label: str, exc: Exception) -> InvalidInputError:
    state = getattr(exc, "sqlstate", None) or getattr(exc, "sqlite_errorname", None)
    detail = f"{type(exc).__name__}" + (f", {state}" if state else "")
    text = str(exc)
    if text.startswith(("cannot insert multiple commands", "You can only execute one statement")):
        detail += ": the query must be one SELECT statement"
    if text.startswith(("no such table", "no such column")):  # names, never values
        detail += f": {text}"
    return InvalidInputError(f"{label}: the database refused the read ({detail})")


_SQLITE_AFFINITY = (
    ("INT", pa.int64()),
    ("CHAR", pa.string()),
    ("CLOB", pa.string()),
    ("TEXT", pa.string()),
    ("REAL", pa.float64()),
    ("FLOA", pa.float64()),
    ("DOUB", pa.float64()),
)


def _sqlite_type(declared: str) -> pa.DataType:
    """The Arrow type of a SQLite declared type, by its affinity (sqlite.org/datatype3.html)."""
    upper = declared.upper()
    if not upper or "BLOB" in upper:
        return pa.null()  # no affinity: whatever the rows hold, checked per batch
    for token, arrow_type in _SQLITE_AFFINITY:
        if token in upper:
            return arrow_type
    return pa.float64()  # NUMERIC affinity


def _quote(name: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


class SqliteSource(DataSource):
    """A table or a query in a SQLite database file, opened read-only."""

    def __init__(
        self,
        dataset: Dataset,
        path: Path,
        batch_rows: int,
        *,
        table: str | None = None,
        query: str | None = None,
        label: str = "",
    ) -> None:
        what = f"table {table}" if table else "query"
        super().__init__(dataset, label or f"SQLite {what} in {path}", batch_rows)
        self.path = path
        self.table = table
        self.query = query

    def connect(self) -> sqlite3.Connection:
        """A read-only connection (``mode=ro`` URI and ``PRAGMA query_only``)."""
        if not self.path.is_file():
            raise InvalidInputError(f"{self.label}: the database file does not exist")
        uri = f"file:{urllib.parse.quote(str(self.path))}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            conn.execute("PRAGMA query_only = ON")
        except sqlite3.Error as exc:
            raise _db_error(self.label, exc) from None
        return conn

    def _from(self) -> str:
        return _quote(self.table) if self.table else f"({self.query})"

    def arrow_schema(self) -> pa.Schema:
        conn = self.connect()
        try:
            cur = conn.execute(f"SELECT * FROM {self._from()} LIMIT 0")  # noqa: S608 (holder's own config)
            names = [d[0] for d in cur.description]
            types = dict.fromkeys(names, pa.null())
            if self.table:
                schema, _, table = self.table.rpartition(".")
                pragma = (
                    f"PRAGMA {_quote(schema) + '.' if schema else ''}table_info({_quote(table)})"
                )
                for row in conn.execute(pragma):
                    types[row[1]] = _sqlite_type(row[2] or "")
        except sqlite3.Error as exc:
            raise _db_error(self.label, exc) from None
        finally:
            conn.close()
        return pa.schema([(n, types[n]) for n in names])

    def batches(self, columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
        conn = self.connect()
        try:
            select = ", ".join(_quote(c) for c in columns)
            cur = conn.execute(f"SELECT {select} FROM {self._from()}")  # noqa: S608
            seen = 0
            while rows := cur.fetchmany(self.batch_rows):
                yield rows_to_batch(self.dataset, columns, rows, self.label, seen)
                seen += len(rows)
        except sqlite3.Error as exc:
            raise _db_error(self.label, exc) from None
        finally:
            conn.close()


# PostgreSQL type OIDs (pg_type.dat) and the Arrow type each reads as.
_PG_TYPES: dict[int, pa.DataType] = {
    20: pa.int64(),  # int8
    21: pa.int64(),  # int2
    23: pa.int64(),  # int4
    700: pa.float64(),  # float4
    701: pa.float64(),  # float8
    1700: pa.float64(),  # numeric (read as float)
    25: pa.string(),  # text
    1042: pa.string(),  # bpchar
    1043: pa.string(),  # varchar
    19: pa.string(),  # name
}


class PostgresSource(DataSource):
    """A table or a query in PostgreSQL (psycopg 3), read in read-only transactions."""

    def __init__(
        self,
        dataset: Dataset,
        conninfo: str,
        batch_rows: int,
        *,
        table: str | None = None,
        query: str | None = None,
        label: str = "",
    ) -> None:
        what = f"table {table}" if table else "query"
        super().__init__(dataset, label or f"PostgreSQL {what}", batch_rows)
        self.conninfo = conninfo
        self.table = table
        self.query = query

    def connect(self) -> Any:
        """A read-only session: ``default_transaction_read_only`` and ``BEGIN READ ONLY``."""
        import psycopg
        from psycopg.types.numeric import FloatLoader

        try:
            conn = psycopg.connect(
                self.conninfo, options="-c default_transaction_read_only=on", connect_timeout=10
            )
        except psycopg.Error as exc:
            raise _db_error(self.label, exc) from None
        conn.read_only = True
        conn.adapters.register_loader("numeric", FloatLoader)
        return conn

    def _from(self) -> Any:
        from psycopg import sql

        if self.table:
            return sql.Identifier(*self.table.split("."))
        return sql.SQL("({}) AS pets_source").format(sql.SQL(str(self.query)))  # type: ignore[arg-type]

    def arrow_schema(self) -> pa.Schema:
        import psycopg
        from psycopg import sql

        with self.connect() as conn:
            try:
                # prepare=True: the extended protocol, one statement only (module docstring).
                cur = conn.execute(
                    sql.SQL("SELECT * FROM {} LIMIT 0").format(self._from()), prepare=True
                )
                fields = [
                    (d.name, _PG_TYPES.get(d.type_code, pa.binary())) for d in cur.description
                ]
            except psycopg.Error as exc:
                raise _db_error(self.label, exc) from None
        return pa.schema(fields)

    def batches(self, columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
        """``COPY (SELECT ...) TO STDOUT (FORMAT csv)``, parsed by pyarrow's CSV reader.

        The server writes the text (float8 in round-trip precision); the
        reader converts it in C, ~10x faster than fetching Python tuples
        (measured). ``NULL`` arrives as an empty field: "value is empty".
        """
        import psycopg
        from psycopg import sql

        select = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in columns), self._from()
        )
        statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(select)
        read = pa_csv.ReadOptions(
            column_names=list(columns), block_size=CSV_BLOCK_BYTES, use_threads=False
        )
        with self.connect() as conn:
            try:
                # COPY runs by the simple protocol: the same SELECT, prepared first in
                # the same read-only transaction, refuses stacked statements.
                conn.execute(sql.SQL("{} LIMIT 0").format(select), prepare=True)
                with conn.cursor() as cur, cur.copy(statement) as copy:
                    stream = _CopyReader(copy)
                    reader = pa_csv.open_csv(
                        stream,
                        read_options=read,
                        # A NULL in a one-column COPY is an empty line: a row, not a gap.
                        parse_options=pa_csv.ParseOptions(ignore_empty_lines=False),
                        convert_options=csv_convert_options(self.dataset, columns),
                    )
                    yield from rebatch(iter(reader), self.batch_rows)
            except psycopg.Error as exc:
                raise _db_error(self.label, exc) from None
            except pa.ArrowException as exc:
                raise csv_error(self.label, columns, exc, header_lines=0) from None


class _CopyReader(io.RawIOBase):
    """A psycopg ``Copy`` as a readable binary stream (what pyarrow's reader takes).

    ``Copy.read()`` gives one row at a time; each read here fills the caller's
    whole buffer, because pyarrow parses every read as one block (one-row
    blocks made it 100x slower, measured).
    """

    def __init__(self, copy: Any) -> None:
        self._copy = copy
        self._buffer = bytearray()
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = len(view)
        while len(self._buffer) < want and not self._eof:
            chunk = self._copy.read()
            if chunk:
                self._buffer += chunk
            else:
                self._eof = True
        n = min(want, len(self._buffer))
        view[:n] = self._buffer[:n]
        del self._buffer[:n]
        return n
