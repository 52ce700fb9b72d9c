"""Where a holder's dataset lives: the ``[data]`` settings of a node's TOML.

A plain string is a file path whose suffix names the format (``.csv``,
``.parquet``, ``.arrow``/``.feather``/``.ipc``, ``.npy`` for vector
datasets; a ``.sqlite``/``.db`` file's table named like the dataset)::

    [data]
    hospitals = "data/hospital-01/hospitals.csv"

A table gives the format and its settings::

    [data.hospitals]
    format = "parquet"            # csv | parquet | arrow | sqlite | postgresql | npy
    path = "data/hospitals.parquet"
    batch_rows = 131072           # optional: rows per record batch (memory per batch)

    [data.hospitals]
    format = "sqlite"
    path = "data/hospital.db"     # opened read-only (mode=ro, PRAGMA query_only)
    table = "stays"               # a table (or schema.table) ...
    # query = "SELECT age, sex, prefecture, diagnosis, length_of_stay, cost FROM stays"

    [data.hospitals]
    format = "postgresql"
    conninfo = "host=/run/postgresql dbname=hospital user=pets_reader"  # libpq; no password
    query = "SELECT * FROM stays WHERE year = 2025"   # ... or a read-only query

SQL sources take exactly one of ``table`` and ``query``; the query runs in a
read-only transaction. A PostgreSQL password belongs in libpq's password file
(``passfile=`` or ``PGPASSFILE``), never in ``node.toml``: a ``conninfo`` with
a ``password`` is refused. See ``docs/DATA_SOURCES.md``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pets.errors import ConfigError

FORMATS: tuple[str, ...] = ("csv", "parquet", "arrow", "sqlite", "postgresql", "npy")
SUFFIXES: dict[str, str] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
    ".npy": "npy",
    ".sqlite": "sqlite",
    ".sqlite3": "sqlite",
    ".db": "sqlite",
}
DEFAULT_BATCH_ROWS = 1 << 17  # measured: 2^16..2^20 within 10% in speed; 2^20 +50% peak RSS
MAX_BATCH_ROWS = 1 << 24
_SQL = ("sqlite", "postgresql")
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?")
_KEYS = {"format", "path", "table", "query", "conninfo", "batch_rows"}


@dataclass(frozen=True)
class SourceSpec:
    """One dataset's source (see the module docstring)."""

    format: str
    path: Path | None = None
    table: str | None = None
    query: str | None = None
    conninfo: str | None = None
    batch_rows: int = DEFAULT_BATCH_ROWS

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(f"source format {self.format!r} is not one of {', '.join(FORMATS)}")
        b = self.batch_rows
        if isinstance(b, bool) or not isinstance(b, int) or not 1 <= b <= MAX_BATCH_ROWS:
            raise ConfigError(f"batch_rows must be an integer in [1, {MAX_BATCH_ROWS}], got {b!r}")
        if self.format == "postgresql":
            if self.path is not None or not self.conninfo:
                raise ConfigError("a postgresql source takes conninfo (and no path)")
        elif self.path is None or self.conninfo is not None:
            raise ConfigError(f"a source of format {self.format!r} takes path (and no conninfo)")
        if self.format in _SQL:
            if (self.table is None) == (self.query is None):
                raise ConfigError(
                    f"a source of format {self.format!r} takes exactly one of table and query"
                )
            if self.table is not None and not _TABLE_NAME.fullmatch(self.table):
                raise ConfigError(f"table {self.table!r} must be a name or schema.name")
            if self.query is not None and not self.query.strip():
                raise ConfigError("query is empty")
        elif self.table is not None or self.query is not None:
            raise ConfigError(f"a source of format {self.format!r} takes no table or query")

    def describe(self) -> str:
        """A label for messages and logs (no password: conninfo may not hold one)."""
        if self.format == "postgresql":
            what = f"table {self.table}" if self.table else "query"
            return f"postgresql {what} ({self.conninfo})"
        if self.format in _SQL:
            what = f"table {self.table}" if self.table else "query"
            return f"sqlite {what} in {self.path}"
        return f"{self.format} file {self.path}"


def spec_for_path(
    path: Path, *, dataset: str | None = None, batch_rows: int = DEFAULT_BATCH_ROWS
) -> SourceSpec:
    """The source of a bare file path, its format named by the suffix.

    A bare SQLite path (``.sqlite``, ``.sqlite3``, ``.db``) reads the table
    named like the ``dataset``.
    """
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(SUFFIXES))
        raise ConfigError(f"{path}: cannot tell the format from the suffix (known: {known})")
    if fmt == "sqlite":
        if dataset is None:
            raise ConfigError(f"{path}: a SQLite source needs a table or query")
        return SourceSpec(fmt, path=path, table=dataset, batch_rows=batch_rows)
    return SourceSpec(fmt, path=path, batch_rows=batch_rows)


def parse_source_setting(name: str, value: object, base: Path) -> Path | SourceSpec:
    """One ``[data]`` entry: a path (str) kept as a ``Path``, or a table as a :class:`SourceSpec`.

    Relative paths are relative to ``base`` (the config file's folder).
    """
    if isinstance(value, str):
        if not value:
            raise ConfigError(f"data.{name} is empty")
        return _resolve(base, value)
    if not isinstance(value, Mapping):
        raise ConfigError(f"data.{name} must be a file path or a table with a format")
    unknown = sorted(set(value) - _KEYS)
    if unknown:
        raise ConfigError(f"data.{name}: unknown keys {unknown} (allowed: {sorted(_KEYS)})")
    settings: dict[str, Any] = dict(value)
    for key in ("format", "path", "table", "query", "conninfo"):
        if key in settings and not isinstance(settings[key], str):
            raise ConfigError(f"data.{name}.{key} must be a string")
    if "format" not in settings:
        raise ConfigError(f"data.{name} needs a format ({', '.join(FORMATS)})")
    if "path" in settings:
        settings["path"] = _resolve(base, settings["path"])
    conninfo = settings.get("conninfo")
    if conninfo is not None:
        _check_conninfo(name, conninfo)
    try:
        return SourceSpec(**settings)
    except ConfigError as exc:
        raise ConfigError(f"data.{name}: {exc}") from None


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _check_conninfo(name: str, conninfo: str) -> None:
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(conninfo)
    except Exception:  # psycopg.ProgrammingError; its text may echo the string
        raise ConfigError(f"data.{name}.conninfo is not a libpq connection string") from None
    if "password" in params:
        raise ConfigError(
            f"data.{name}.conninfo holds a password; put it in a libpq password file "
            "(passfile=... or PGPASSFILE) instead"
        )
