"""Dataset schemas: the shared declaration of what data holders hold.

Every party (holders, servers, analysts) loads the same schema, so a query can
be validated and compiled into the same fixed vector layout everywhere. A
schema declares, per dataset, its columns with their types, bounds, fixed-point
scales and categorical domains, and ``max_rows``: the most rows one holder may
contribute (it bounds every slot of a holder's vector, which the overflow
checks and the Paillier packing rely on).

TOML format (one ``[datasets.NAME]`` table per dataset, columns in order)::

    [datasets.hospitals]
    kind = "table"            # optional; "table" (default) or "vector"
    max_rows = 10000          # most rows one holder may contribute

    [[datasets.hospitals.columns]]
    name = "age"
    type = "int"              # "int", "float" or "category"
    lo = 0                    # optional for numeric columns: a query's
    hi = 110                  #   clip can supply or narrow the bounds
    scale = 1                 # optional; default 1 for int, 100 for float

    [[datasets.hospitals.columns]]
    name = "sex"
    type = "category"
    domain = ["F", "M"]       # ordered, unique, non-empty

    [datasets.hospitals.linkage]   # optional: the dataset can be linked (docs/LINKAGE.md)
    domain = "resident"       # datasets sharing a domain can be linked
    id_column = "patient_id"  # the identifier column; not one of `columns`
    normalisation = ["nfkc", "remove_whitespace", "casefold"]   # optional
    one_row = "first"         # first, last, sum, min, max or reject

    [datasets.emissions_daily]
    kind = "vector"           # each holder holds one numeric vector
    length = 365
    lo = 0.0
    hi = 1000000.0
    scale = 100               # optional; default 100
    # max_rows is optional for vectors and must be 1 (one vector per holder)


Names of datasets and columns are identifiers (``[A-Za-z_][A-Za-z0-9_]*``).
Bounds are finite with ``lo <= hi`` and their scaled magnitudes at most 2^53
(so fixed-point values stay exact in float64). Validation is strict: unknown
keys, wrong types and inconsistent declarations raise :class:`SchemaError`
naming the dataset and column.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from pets.encoding import FLOAT_EXACT_MAX
from pets.errors import QueryError, SchemaError

ColumnType = Literal["int", "float", "category"]
DatasetKind = Literal["table", "vector"]

COLUMN_TYPES: tuple[str, ...] = ("int", "float", "category")
DATASET_KINDS: tuple[str, ...] = ("table", "vector")
DEFAULT_SCALE: dict[str, int] = {"int": 1, "float": 100, "category": 1}
DEFAULT_VECTOR_SCALE = 100

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_name(name: object, what: str) -> str:
    """Return ``name`` if it is an identifier, else raise :class:`SchemaError`."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise SchemaError(f"{what} name {name!r} is not an identifier ([A-Za-z_][A-Za-z0-9_]*)")
    return name


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SchemaError(f"{what} must be a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise SchemaError(f"{what} must be finite, got {value!r}")
    return out


def _positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SchemaError(f"{what} must be a positive integer, got {value!r}")
    return value


def _check_bounds(lo: float | None, hi: float | None, scale: int, what: str) -> None:
    if lo is not None and hi is not None and lo > hi:
        raise SchemaError(f"{what}: bounds are inverted (lo={lo} > hi={hi})")
    for bound in (lo, hi):
        if bound is not None and not abs(bound * scale) <= FLOAT_EXACT_MAX:  # inf and NaN too
            raise SchemaError(
                f"{what}: bound {bound} times scale {scale} exceeds 2^53; "
                "lower the scale or the bounds"
            )


# The identifier normalisation steps and one-row-per-person rules a linkage declaration may
# name. The query layer sits below pets.linkage (which implements them), so these are copies,
# pinned equal to pets.linkage.normalise.NORMALISATION_STEPS / pets.linkage.dedup.ONE_ROW_RULES
# by tests/unit/query/test_linkage_schema.py.
NORMALISATION_STEPS: tuple[str, ...] = (
    "nfkc",
    "casefold",
    "strip",
    "collapse_whitespace",
    "remove_whitespace",
    "digits_only",
    "alnum_only",
)
DEFAULT_NORMALISATION: tuple[str, ...] = ("nfkc", "strip", "casefold")
ONE_ROW_RULES: tuple[str, ...] = ("first", "last", "sum", "min", "max", "reject")
# pets.linkage.domain's rule for domain names (they go into the RFC 9380 DST).
_DOMAIN_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Linkage:
    """How a dataset's rows link to other datasets' rows (issue 16; ``docs/LINKAGE.md``).

    ``domain`` names the identifier space: datasets with the same domain can be
    linked. ``id_column`` holds each row's identifier; it is not one of the
    dataset's ``columns`` (an identifier is never filtered, grouped or
    aggregated). ``normalisation`` is applied to it, in order, before hashing;
    ``one_row`` collapses a holder's repeated identifiers into one row per
    person (``first``, ``last``, ``sum``, ``min``, ``max`` or ``reject``).
    """

    domain: str
    id_column: str
    one_row: str
    normalisation: tuple[str, ...] = DEFAULT_NORMALISATION

    def __post_init__(self) -> None:
        if not isinstance(self.domain, str) or not _DOMAIN_RE.fullmatch(self.domain):
            raise SchemaError(
                f"linkage domain {self.domain!r} must be 1 to 64 characters of a-z, 0-9, "
                "'.', '_', '-' starting with a letter or digit"
            )
        check_name(self.id_column, "linkage id column")
        if self.one_row not in ONE_ROW_RULES:
            raise SchemaError(
                f"unknown one-row-per-person rule {self.one_row!r}; "
                f"expected one of {', '.join(ONE_ROW_RULES)}"
            )
        steps = self.normalisation
        if isinstance(steps, str) or not isinstance(steps, Iterable):
            raise SchemaError("linkage normalisation must be a list of step names")
        steps = tuple(steps)
        for step in steps:
            if step not in NORMALISATION_STEPS:
                raise SchemaError(
                    f"unknown identifier normalisation step {step!r}; "
                    f"expected some of {', '.join(NORMALISATION_STEPS)}"
                )
        object.__setattr__(self, "normalisation", steps)

    def to_dict(self) -> dict[str, Any]:
        """JSON/TOML-compatible form (every key present)."""
        return {
            "domain": self.domain,
            "id_column": self.id_column,
            "normalisation": list(self.normalisation),
            "one_row": self.one_row,
        }

    @classmethod
    def from_dict(cls, d: object) -> Linkage:
        """Strict inverse of :meth:`to_dict` (``normalisation`` may be left out)."""
        if not isinstance(d, Mapping):
            raise SchemaError(f"linkage must be a table of settings, got {d!r}")
        allowed = {"domain", "id_column", "normalisation", "one_row"}
        unknown = set(d) - allowed
        if unknown:
            raise SchemaError(f"linkage: unknown keys {sorted(unknown)}")
        for key in ("domain", "id_column", "one_row"):
            if key not in d:
                raise SchemaError(f"linkage: missing {key!r}")
        steps = d.get("normalisation", DEFAULT_NORMALISATION)
        if isinstance(steps, str) or not isinstance(steps, list | tuple):
            raise SchemaError("linkage normalisation must be a list of step names")
        return cls(
            domain=d["domain"],
            id_column=d["id_column"],
            one_row=d["one_row"],
            normalisation=tuple(steps),
        )


@dataclass(frozen=True)
class Column:
    """One column of a table dataset.

    Numeric columns (``int``, ``float``) carry optional bounds ``lo``/``hi``
    and a fixed-point ``scale`` (``None`` means the type's default: 1 for int,
    100 for float). Category columns carry a non-empty ordered ``domain`` and
    no bounds; their ``scale`` is 1.
    """

    name: str
    type: ColumnType
    lo: float | None = None
    hi: float | None = None
    scale: int | None = None
    domain: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_name(self.name, "column")
        what = f"column {self.name!r}"
        if self.type not in COLUMN_TYPES:
            raise SchemaError(f"{what}: type {self.type!r} is not one of {', '.join(COLUMN_TYPES)}")
        if not isinstance(self.domain, tuple):
            if isinstance(self.domain, str) or not isinstance(self.domain, Iterable):
                raise SchemaError(f"{what}: domain must be a list of strings")
            object.__setattr__(self, "domain", tuple(self.domain))
        if self.type == "category":
            self._check_category(what)
            return
        if self.domain:
            raise SchemaError(f"{what}: a numeric column has no domain")
        scale = DEFAULT_SCALE[self.type] if self.scale is None else self.scale
        object.__setattr__(self, "scale", _positive_int(scale, f"{what}: scale"))
        for attr in ("lo", "hi"):
            bound = getattr(self, attr)
            if bound is not None:
                object.__setattr__(self, attr, _number(bound, f"{what}: {attr}"))
        _check_bounds(self.lo, self.hi, cast(int, self.scale), what)

    def _check_category(self, what: str) -> None:
        if self.lo is not None or self.hi is not None:
            raise SchemaError(f"{what}: a category column has no bounds")
        if self.scale not in (None, 1):
            raise SchemaError(f"{what}: a category column has no scale")
        object.__setattr__(self, "scale", 1)
        if not self.domain:
            raise SchemaError(f"{what}: a category column needs a non-empty domain")
        for value in self.domain:
            if not isinstance(value, str) or not value or value != value.strip():
                raise SchemaError(
                    f"{what}: domain value {value!r} must be a non-empty string "
                    "without surrounding whitespace"
                )
            if any(ord(ch) < 32 or ch in "\"'\x7f" for ch in value):
                raise SchemaError(
                    f"{what}: domain value {value!r} contains a quote or control character"
                )
        seen: set[str] = set()
        for value in self.domain:
            if value in seen:
                raise SchemaError(f"{what}: domain value {value!r} is repeated")
            seen.add(value)

    @property
    def is_numeric(self) -> bool:
        """True for ``int`` and ``float`` columns."""
        return self.type != "category"

    @property
    def fixed_scale(self) -> int:
        """The resolved fixed-point scale (never ``None`` after construction)."""
        return cast(int, self.scale)

    def to_dict(self) -> dict[str, Any]:
        """JSON/TOML-compatible form; omits absent bounds and the category scale."""
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.type == "category":
            out["domain"] = list(self.domain)
            return out
        if self.lo is not None:
            out["lo"] = self.lo
        if self.hi is not None:
            out["hi"] = self.hi
        out["scale"] = self.scale
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Column:
        """Strict inverse of :meth:`to_dict` (unknown keys are rejected)."""
        if not isinstance(d, Mapping):
            raise SchemaError(f"a column must be a table of settings, got {d!r}")
        name = check_name(d.get("name"), "column")
        unknown = set(d) - {"name", "type", "lo", "hi", "scale", "domain"}
        if unknown:
            raise SchemaError(f"column {name!r}: unknown keys {sorted(unknown)}")
        if "type" not in d:
            raise SchemaError(f"column {name!r}: missing 'type'")
        domain = d.get("domain", ())
        if isinstance(domain, str) or not isinstance(domain, list | tuple):
            raise SchemaError(f"column {name!r}: domain must be a list of strings")
        return cls(
            name=name,
            type=d["type"],
            lo=d.get("lo"),
            hi=d.get("hi"),
            scale=d.get("scale"),
            domain=tuple(domain),
        )


@dataclass(frozen=True)
class Dataset:
    """A dataset: either a table of typed columns or one vector per holder.

    ``max_rows`` is the most rows one holder may contribute; a holder with
    more rows refuses to answer. For ``kind="vector"`` each holder holds one
    numeric vector of ``length`` values with dataset-level ``lo``/``hi``/
    ``scale`` (scale default 100), ``columns`` is empty and ``max_rows`` is 1.
    """

    name: str
    columns: tuple[Column, ...]
    max_rows: int
    kind: DatasetKind = "table"
    length: int | None = None
    lo: float | None = None
    hi: float | None = None
    scale: int | None = None
    linkage: Linkage | None = None

    def __post_init__(self) -> None:
        check_name(self.name, "dataset")
        what = f"dataset {self.name!r}"
        if self.kind not in DATASET_KINDS:
            raise SchemaError(f"{what}: kind {self.kind!r} is not 'table' or 'vector'")
        object.__setattr__(self, "columns", tuple(self.columns))
        _positive_int(self.max_rows, f"{what}: max_rows")
        if self.kind == "vector":
            if self.linkage is not None:
                raise SchemaError(f"{what}: a vector dataset cannot be linked (no rows)")
            self._check_vector(what)
            return
        if self.length is not None or self.lo is not None or self.hi is not None:
            raise SchemaError(f"{what}: length/lo/hi belong to vector datasets only")
        if self.scale is not None:
            raise SchemaError(f"{what}: a table dataset sets scale per column")
        if not self.columns:
            raise SchemaError(f"{what}: a table dataset needs at least one column")
        seen: set[str] = set()
        for column in self.columns:
            if not isinstance(column, Column):
                raise SchemaError(f"{what}: columns must be Column objects, got {column!r}")
            if column.name in seen:
                raise SchemaError(f"{what}: column {column.name!r} is declared twice")
            seen.add(column.name)
        if self.linkage is not None:
            if not isinstance(self.linkage, Linkage):
                raise SchemaError(f"{what}: linkage must be a Linkage, got {self.linkage!r}")
            if self.linkage.id_column in seen:
                raise SchemaError(
                    f"{what}: linkage id column {self.linkage.id_column!r} is also declared "
                    "as a column; identifiers are declared only under linkage"
                )

    def _check_vector(self, what: str) -> None:
        if self.columns:
            raise SchemaError(f"{what}: a vector dataset has no columns")
        if self.max_rows != 1:
            raise SchemaError(f"{what}: a vector dataset has max_rows = 1 (one vector per holder)")
        _positive_int(self.length, f"{what}: length")
        scale = DEFAULT_VECTOR_SCALE if self.scale is None else self.scale
        object.__setattr__(self, "scale", _positive_int(scale, f"{what}: scale"))
        if self.lo is None or self.hi is None:
            raise SchemaError(f"{what}: a vector dataset needs bounds lo and hi")
        object.__setattr__(self, "lo", _number(self.lo, f"{what}: lo"))
        object.__setattr__(self, "hi", _number(self.hi, f"{what}: hi"))
        _check_bounds(self.lo, self.hi, cast(int, self.scale), what)

    def column(self, name: str) -> Column:
        """The column called ``name``; :class:`QueryError` if there is none."""
        for column in self.columns:
            if column.name == name:
                return column
        if self.kind == "vector":
            raise QueryError(
                f"dataset {self.name!r} is a vector dataset and has no column {name!r}"
            )
        known = ", ".join(c.name for c in self.columns)
        raise QueryError(f"dataset {self.name!r} has no column {name!r} (columns: {known})")

    @property
    def column_names(self) -> tuple[str, ...]:
        """Column names in declaration order."""
        return tuple(c.name for c in self.columns)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form including ``name`` (used for fingerprints)."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "max_rows": self.max_rows}
        if self.kind == "vector":
            out.update(length=self.length, lo=self.lo, hi=self.hi, scale=self.scale)
        else:
            out["columns"] = [c.to_dict() for c in self.columns]
        if self.linkage is not None:  # absent otherwise: unlinked fingerprints stay as they were
            out["linkage"] = self.linkage.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Dataset:
        """Strict inverse of :meth:`to_dict`; ``max_rows`` defaults to 1 for vectors."""
        if not isinstance(d, Mapping):
            raise SchemaError(f"a dataset must be a table of settings, got {d!r}")
        name = check_name(d.get("name"), "dataset")
        what = f"dataset {name!r}"
        allowed = {"name", "kind", "max_rows", "columns", "length", "lo", "hi", "scale", "linkage"}
        unknown = set(d) - allowed
        if unknown:
            raise SchemaError(f"{what}: unknown keys {sorted(unknown)}")
        kind = d.get("kind", "table")
        if kind not in DATASET_KINDS:
            raise SchemaError(f"{what}: kind {kind!r} is not 'table' or 'vector'")
        if "max_rows" not in d and kind == "table":
            raise SchemaError(f"{what}: missing 'max_rows'")
        raw_columns = d.get("columns", [])
        if not isinstance(raw_columns, list | tuple):
            raise SchemaError(f"{what}: columns must be a list of tables")
        try:
            columns = tuple(Column.from_dict(c) for c in raw_columns)
            linkage = None if d.get("linkage") is None else Linkage.from_dict(d["linkage"])
        except SchemaError as exc:
            raise SchemaError(f"{what}: {exc}") from None
        return cls(
            name=name,
            columns=columns,
            max_rows=d.get("max_rows", 1),
            kind=kind,
            length=d.get("length"),
            lo=d.get("lo"),
            hi=d.get("hi"),
            scale=d.get("scale"),
            linkage=linkage,
        )


@dataclass(frozen=True)
class Schema:
    """The datasets all parties agree on, by unique name, in declaration order."""

    datasets: tuple[Dataset, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "datasets", tuple(self.datasets))
        if not self.datasets:
            raise SchemaError("a schema needs at least one dataset")
        seen: set[str] = set()
        for dataset in self.datasets:
            if not isinstance(dataset, Dataset):
                raise SchemaError(f"schema entries must be Dataset objects, got {dataset!r}")
            if dataset.name in seen:
                raise SchemaError(f"dataset {dataset.name!r} is declared twice")
            seen.add(dataset.name)

    def dataset(self, name: str) -> Dataset:
        """The dataset called ``name``; :class:`QueryError` if unknown."""
        for dataset in self.datasets:
            if dataset.name == name:
                return dataset
        known = ", ".join(d.name for d in self.datasets)
        raise QueryError(f"unknown dataset {name!r} (datasets: {known})")

    @property
    def names(self) -> tuple[str, ...]:
        """Dataset names in declaration order."""
        return tuple(d.name for d in self.datasets)

    def to_dict(self) -> dict[str, Any]:
        """``{"datasets": {name: settings}}``, the shape the TOML file has."""
        out: dict[str, Any] = {}
        for dataset in self.datasets:
            body = dataset.to_dict()
            del body["name"]
            out[dataset.name] = body
        return {"datasets": out}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Schema:
        """Strict inverse of :meth:`to_dict`."""
        if not isinstance(d, Mapping):
            raise SchemaError("a schema must be a table with a 'datasets' table")
        unknown = set(d) - {"datasets"}
        if unknown:
            raise SchemaError(f"schema: unknown top-level keys {sorted(unknown)}")
        datasets = d.get("datasets")
        if not isinstance(datasets, Mapping) or not datasets:
            raise SchemaError("schema: missing or empty 'datasets' table")
        out = []
        for name, body in datasets.items():
            if not isinstance(body, Mapping):
                raise SchemaError(f"dataset {name!r}: settings must be a table")
            if "name" in body:
                raise SchemaError(f"dataset {name!r}: unknown keys ['name']")
            out.append(Dataset.from_dict({"name": name, **body}))
        return cls(tuple(out))

    @classmethod
    def from_toml(cls, text: str) -> Schema:
        """Parse the TOML format described in the module docstring."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SchemaError(f"schema is not valid TOML: {exc}") from None
        return cls.from_dict(data)

    def to_toml(self) -> str:
        """Write the schema as TOML that :meth:`from_toml` reads back equal."""
        lines: list[str] = []
        for dataset in self.datasets:
            body = dataset.to_dict()
            columns = body.pop("columns", [])
            linkage = body.pop("linkage", None)
            del body["name"]
            if lines:
                lines.append("")
            lines.append(f"[datasets.{dataset.name}]")
            lines.extend(f"{key} = {_toml_value(value)}" for key, value in body.items())
            for column in columns:
                lines.append("")
                lines.append(f"[[datasets.{dataset.name}.columns]]")
                lines.extend(f"{key} = {_toml_value(value)}" for key, value in column.items())
            if linkage is not None:
                lines.append("")
                lines.append(f"[datasets.{dataset.name}.linkage]")
                lines.extend(f"{key} = {_toml_value(value)}" for key, value in linkage.items())
        return "\n".join(lines) + "\n"


def _toml_value(value: object) -> str:
    """Render a str, int, finite float or list of those as a TOML value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) <= FLOAT_EXACT_MAX:
            return str(int(value))
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise SchemaError(f"cannot write {value!r} as TOML")


def _toml_string(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)
