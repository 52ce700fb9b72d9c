"""Queries: what an analyst asks, as data, as canonical JSON and as text.

A :class:`Query` names a dataset, an :class:`Aggregate`, the column(s) it
aggregates, filters, an optional group-by over category columns, histogram bin
edges and clipping bounds. It is plain data: :func:`compile` (in
:mod:`pets.query.plan`, re-exported here) checks it against a schema and fixes
the integer vector layout every holder fills.

Aggregates and their arguments:

* ``count``: no column; rows matching the filters.
* ``sum``, ``mean``, ``variance``: one numeric ``column``; values are clipped to
  the column's bounds narrowed by ``clip`` (both optional, but together they
  must give finite bounds).
* ``histogram``: one ``column``. A category column gives one bin per domain
  value. A numeric column needs ``bins``: strictly increasing edges
  ``e0 < e1 < ... < eB`` giving bins ``[e0, e1), ..., [eB-1, eB]``; values
  below ``e0`` are counted in the first bin and values above ``eB`` in the
  last (clipped into the end bins, never dropped).
* ``vector_sum``: on a table dataset, ``columns`` (numeric) giving per group
  ``[count, sum(c1), ..., sum(ck)]``; on a vector dataset, no column: the
  element-wise sum of the holders' vectors.

Filters compare the *raw* (unclipped) values. Category filters allow ``=``,
``!=`` and ``in`` with domain values; numeric filters allow every operator
with numbers.

The wire form is :meth:`Query.to_json` (sorted keys, compact separators,
ASCII), so the same query gives the same bytes everywhere; the text form
(:func:`parse_query`, :meth:`Query.describe`) is for people::

    mean(cost) from hospitals where age >= 65 and sex = F group by prefecture
    histogram(age) from hospitals bins [0, 18, 65, 110]
    sum(kg_co2e) from supply_chain where stage in (transport, retail) clip [0, 5000]
    sum(cost) from hospitals where age >= 65 clip [0, 5000] dp epsilon 1
    count(*) from hospitals group by sex dp rho 0.05 unit holder
    mean(care_cost) from ltc linked to hospitals where hospitals.diagnosis = E group by care_level

A *linked* query (issue 16, ``docs/LINKAGE.md``) aggregates the per-person
values of its ``dataset`` (the ``from`` side) over the people who also appear
in each dataset of ``linked_to`` (datasets sharing a linkage domain), with
filters on every side: columns of another side are written ``dataset.column``;
the ``from`` side's columns may be qualified too, and are stored unqualified
(so both spellings give one canonical JSON and one fingerprint).
``min_intersection N`` asks for a floor on the number of linked people (it
may raise the servers' floor, never lower it). ``linked_to`` is kept sorted.

An optional :class:`DpRequest` asks for a differentially private release:
``dp epsilon E`` (pure ε-DP, discrete Laplace noise) or ``dp rho R`` (ρ-zCDP,
discrete Gaussian noise), with the unit of privacy ``unit row`` (default: one
row) or ``unit holder`` (one holder's whole contribution); see
:mod:`pets.dp`. A query without it has exactly the JSON it had before the
option existed (no ``dp`` key).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pets.errors import QueryError
from pets.query._text import Token, format_number, format_scalar, number, tokenize

if TYPE_CHECKING:
    from pets.query.schema import Column, Dataset, Schema

Scalar = str | int | float
FilterValue = Scalar | tuple[Scalar, ...]
OPS: tuple[str, ...] = ("=", "!=", "<", "<=", ">", ">=", "in")


class Aggregate(StrEnum):
    """The aggregates a query can ask for."""

    count = "count"  # type: ignore[assignment]  # shadows str.count, as a member should
    sum = "sum"
    mean = "mean"
    variance = "variance"
    histogram = "histogram"
    vector_sum = "vector_sum"


_EXACT_MAX = 1 << 53  # numbers beyond this are not exact (or not even finite) as floats


def _check_scalar(value: object, what: str) -> Scalar:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise QueryError(f"{what}: value {value!r} must be a string or a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise QueryError(f"{what}: value {value!r} is not finite")
    if isinstance(value, int) and abs(value) > _EXACT_MAX:
        raise QueryError(f"{what}: integer {str(value)[:20]}... is too large (at most 2^53)")
    return value


def _check_str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise QueryError(f"{what} must be a string, got {value!r}")
    return value


def _str_tuple(value: object, what: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise QueryError(f"{what} must be a list of strings, got {value!r}")
    return tuple(_check_str(v, f"{what} entry") for v in value)


def _float_tuple(value: object, what: str) -> tuple[float, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise QueryError(f"{what} must be a list of numbers, got {value!r}")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise QueryError(f"{what}: {v!r} is not a finite number")
        if (isinstance(v, int) and abs(v) > _EXACT_MAX) or not math.isfinite(v):
            raise QueryError(f"{what}: {str(v)[:20]} is not a finite number of at most 2^53")
        out.append(float(v))
    return tuple(out)


@dataclass(frozen=True)
class Filter:
    """``column op value``; for ``in``, ``value`` is a non-empty tuple."""

    column: str
    op: str
    value: FilterValue

    def __post_init__(self) -> None:
        _check_str(self.column, "filter column")
        what = f"filter on column {self.column!r}"
        if self.op == "==":
            object.__setattr__(self, "op", "=")
        if self.op not in OPS:
            raise QueryError(f"{what}: operator {self.op!r} is not one of {' '.join(OPS)}")
        if self.op == "in":
            if isinstance(self.value, str) or not isinstance(self.value, list | tuple):
                raise QueryError(f"{what}: 'in' takes a list of values, got {self.value!r}")
            if not self.value:
                raise QueryError(f"{what}: 'in' needs at least one value")
            values = tuple(_check_scalar(v, what) for v in self.value)
            object.__setattr__(self, "value", values)
        else:
            _check_scalar(self.value, what)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form."""
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"column": self.column, "op": self.op, "value": value}

    @classmethod
    def from_dict(cls, d: object) -> Filter:
        """Strict inverse of :meth:`to_dict`."""
        if not isinstance(d, Mapping):
            raise QueryError(f"a filter must be an object, got {d!r}")
        if set(d) != {"column", "op", "value"}:
            raise QueryError(
                f"a filter has exactly the keys column, op, value (op one of {' '.join(OPS)}); "
                f"got {sorted(d)}"
            )
        value = d["value"]
        if isinstance(value, list):
            value = tuple(value)
        return cls(column=d["column"], op=d["op"], value=value)

    def describe(self) -> str:
        """Text form, e.g. ``age >= 65`` or ``prefecture in (Tokyo, Osaka)``."""
        if isinstance(self.value, tuple):
            inner = ", ".join(format_scalar(v) for v in self.value)
            return f"{self.column} in ({inner})"
        return f"{self.column} {self.op} {format_scalar(self.value)}"


DP_UNITS: tuple[str, ...] = ("row", "holder")
_DP_KEYS = ("epsilon", "rho", "unit")


def _check_budget(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise QueryError(f"{what} must be a number, got {value!r}")
    if (isinstance(value, int) and abs(value) > _EXACT_MAX) or not math.isfinite(value):
        raise QueryError(f"{what} must be a finite number of at most 2^53")
    if value <= 0:
        raise QueryError(f"{what} must be positive, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class DpRequest:
    """A request for a differentially private release (see :mod:`pets.dp`).

    Exactly one of ``epsilon`` (pure ε-DP, discrete Laplace noise) and ``rho``
    (ρ-zCDP, discrete Gaussian noise); ``unit`` is the unit of privacy,
    ``"row"`` (one row, the default) or ``"holder"`` (one holder's whole data).
    The numbers are read exactly as the decimals they print as.
    """

    epsilon: float | None = None
    rho: float | None = None
    unit: str = "row"

    def __post_init__(self) -> None:
        if (self.epsilon is None) == (self.rho is None):
            raise QueryError("dp takes exactly one of epsilon (pure DP) or rho (zCDP)")
        if self.epsilon is not None:
            object.__setattr__(self, "epsilon", _check_budget(self.epsilon, "dp epsilon"))
        if self.rho is not None:
            object.__setattr__(self, "rho", _check_budget(self.rho, "dp rho"))
        if self.unit not in DP_UNITS:
            raise QueryError(f"dp unit must be one of {', '.join(DP_UNITS)}, got {self.unit!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form: ``{"epsilon": e, "unit": u}`` or ``{"rho": r, "unit": u}``."""
        if self.epsilon is not None:
            return {"epsilon": self.epsilon, "unit": self.unit}
        return {"rho": self.rho, "unit": self.unit}

    @classmethod
    def from_dict(cls, d: object) -> DpRequest:
        """Strict inverse of :meth:`to_dict` (``unit`` may be left out: one row)."""
        if not isinstance(d, Mapping):
            raise QueryError(f"dp must be an object, got {d!r}")
        unknown = set(d) - set(_DP_KEYS)
        if unknown:
            raise QueryError(
                f"dp has unknown keys {sorted(unknown)}; allowed: {', '.join(_DP_KEYS)}"
            )
        return cls(epsilon=d.get("epsilon"), rho=d.get("rho"), unit=d.get("unit", "row"))

    def describe(self) -> str:
        """Text form, e.g. ``dp epsilon 1`` or ``dp rho 0.05 unit holder``."""
        if self.epsilon is not None:
            text = f"dp epsilon {format_number(self.epsilon)}"
        else:
            text = f"dp rho {format_number(self.rho)}"  # type: ignore[arg-type]
        return text if self.unit == "row" else f"{text} unit {self.unit}"


_QUERY_KEYS = (
    "aggregate",
    "bins",
    "clip",
    "column",
    "columns",
    "dataset",
    "dp",
    "group_by",
    "linked_to",
    "min_intersection",
    "where",
)


@dataclass(frozen=True)
class Query:
    """An aggregate query (plain data; see the module docstring).

    Construction checks types only (and normalises lists to tuples, numbers in
    ``bins``/``clip`` to float); :func:`compile` checks it against a schema.
    """

    dataset: str
    aggregate: Aggregate
    column: str | None = None
    columns: tuple[str, ...] = ()
    where: tuple[Filter, ...] = ()
    group_by: tuple[str, ...] = ()
    bins: tuple[float, ...] | None = None
    clip: tuple[float, float] | None = None
    dp: DpRequest | None = None
    linked_to: tuple[str, ...] = ()
    min_intersection: int | None = None

    def __post_init__(self) -> None:
        _check_str(self.dataset, "query dataset")
        self._check_linkage()
        if self.dp is not None and not isinstance(self.dp, DpRequest):
            raise QueryError(f"query dp must be a DpRequest, got {self.dp!r}")
        try:
            object.__setattr__(self, "aggregate", Aggregate(self.aggregate))
        except ValueError:
            names = ", ".join(a.value for a in Aggregate)
            raise QueryError(f"unknown aggregate {self.aggregate!r} (one of {names})") from None
        if self.column is not None:
            _check_str(self.column, "query column")
        object.__setattr__(self, "columns", _str_tuple(self.columns, "query columns"))
        object.__setattr__(self, "group_by", _str_tuple(self.group_by, "query group_by"))
        if isinstance(self.where, Filter) or not isinstance(self.where, list | tuple):
            raise QueryError(f"query where must be a list of filters, got {self.where!r}")
        for f in self.where:
            if not isinstance(f, Filter):
                raise QueryError(f"query where entries must be Filter objects, got {f!r}")
        object.__setattr__(self, "where", tuple(self.where))
        if self.bins is not None:
            object.__setattr__(self, "bins", _float_tuple(self.bins, "query bins"))
        if self.clip is not None:
            clip = _float_tuple(self.clip, "query clip")
            if len(clip) != 2:
                raise QueryError(f"query clip must be [lo, hi], got {list(clip)}")
            if clip[0] > clip[1]:
                raise QueryError(f"query clip is inverted: lo={clip[0]} > hi={clip[1]}")
            object.__setattr__(self, "clip", clip)
        self._unqualify()

    def _check_linkage(self) -> None:
        linked = _str_tuple(self.linked_to, "query linked_to")
        if len(set(linked)) != len(linked):
            raise QueryError(f"linked to repeats a dataset: {list(linked)}")
        if self.dataset in linked:
            raise QueryError(f"dataset {self.dataset!r} cannot be linked to itself")
        object.__setattr__(self, "linked_to", tuple(sorted(linked)))
        m = self.min_intersection
        if m is not None:
            if isinstance(m, bool) or not isinstance(m, int) or m < 1:
                raise QueryError(f"min_intersection must be a positive integer, got {m!r}")
            if m > _EXACT_MAX:
                raise QueryError(f"min_intersection must be at most {_EXACT_MAX}, got {m}")
            if not linked:
                raise QueryError("min_intersection applies to linked queries only")

    def _unqualify(self) -> None:
        """Store the ``from`` dataset's own columns unqualified (one canonical form)."""
        prefix = self.dataset + "."

        def own(name: str) -> str:
            return name[len(prefix) :] if name.startswith(prefix) else name

        if self.column is not None:
            object.__setattr__(self, "column", own(self.column))
        object.__setattr__(self, "columns", tuple(own(c) for c in self.columns))
        object.__setattr__(self, "group_by", tuple(own(c) for c in self.group_by))
        where = tuple(
            Filter(own(f.column), f.op, f.value) if f.column.startswith(prefix) else f
            for f in self.where
        )
        object.__setattr__(self, "where", where)

    @property
    def is_linked(self) -> bool:
        """True for a linked query (``linked_to`` is not empty)."""
        return bool(self.linked_to)

    # -- wire form -----------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form with every key present (canonical; ``dp`` only when asked)."""
        out: dict[str, Any] = {
            "aggregate": self.aggregate.value,
            "bins": None if self.bins is None else list(self.bins),
            "clip": None if self.clip is None else list(self.clip),
            "column": self.column,
            "columns": list(self.columns),
            "dataset": self.dataset,
            "group_by": list(self.group_by),
            "where": [f.to_dict() for f in self.where],
        }
        if self.dp is not None:
            out["dp"] = self.dp.to_dict()
        if self.linked_to:  # absent otherwise: unlinked queries keep their JSON
            out["linked_to"] = list(self.linked_to)
            out["min_intersection"] = self.min_intersection
        return out

    @classmethod
    def from_dict(cls, d: object) -> Query:
        """Strict inverse of :meth:`to_dict`: unknown keys and wrong types raise."""
        if not isinstance(d, Mapping):
            raise QueryError(f"a query must be an object, got {type(d).__name__}")
        unknown = set(d) - set(_QUERY_KEYS)
        if unknown:
            raise QueryError(
                f"query has unknown keys {sorted(unknown)}; allowed: {', '.join(_QUERY_KEYS)}"
            )
        for key in ("dataset", "aggregate"):
            if key not in d:
                raise QueryError(f"query is missing {key!r}")
        where = d.get("where", [])
        if not isinstance(where, list):
            raise QueryError(f"query where must be a list of filters, got {where!r}")
        aggregate = d["aggregate"]
        if not isinstance(aggregate, str):
            raise QueryError(f"query aggregate must be a string, got {aggregate!r}")
        return cls(
            dataset=d["dataset"],
            aggregate=aggregate,  # type: ignore[arg-type]  # converted and checked on init
            column=d.get("column"),
            columns=d.get("columns", ()),
            where=tuple(Filter.from_dict(f) for f in where),
            group_by=d.get("group_by", ()),
            bins=d.get("bins"),
            clip=d.get("clip"),
            dp=None if d.get("dp") is None else DpRequest.from_dict(d["dp"]),
            linked_to=d.get("linked_to", ()),
            min_intersection=d.get("min_intersection"),
        )

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, compact separators, ASCII only."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> Query:
        """Parse JSON strictly (no NaN/Infinity, no duplicate keys)."""
        try:
            data = json.loads(
                text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates
            )
        except (ValueError, UnicodeDecodeError) as exc:
            if isinstance(exc, QueryError):
                raise
            raise QueryError(f"query is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    # -- text form -----------------------------------------------------------

    def describe(self) -> str:
        """One-line text form; :func:`parse_query` reads it back equal."""
        if self.columns:
            args = ", ".join(self.columns)
        else:
            args = self.column if self.column is not None else "*"
        parts = [f"{self.aggregate.value}({args}) from {self.dataset}"]
        if self.linked_to:
            parts.append("linked to " + ", ".join(self.linked_to))
        if self.where:
            parts.append("where " + " and ".join(f.describe() for f in self.where))
        if self.group_by:
            parts.append("group by " + ", ".join(self.group_by))
        if self.bins is not None:
            parts.append("bins [" + ", ".join(format_number(b) for b in self.bins) + "]")
        if self.clip is not None:
            parts.append("clip [" + ", ".join(format_number(b) for b in self.clip) + "]")
        if self.min_intersection is not None:
            parts.append(f"min_intersection {self.min_intersection}")
        if self.dp is not None:
            parts.append(self.dp.describe())
        return " ".join(parts)

    @classmethod
    def parse(cls, text: str, dataset: Dataset | Schema | None = None) -> Query:
        """Same as :func:`parse_query`."""
        return parse_query(text, dataset)


def _reject_constant(name: str) -> None:
    raise QueryError(f"query JSON contains {name}; only finite numbers are allowed")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise QueryError(f"query JSON repeats the key {key!r}")
        out[key] = value
    return out


# -- text parsers --------------------------------------------------------------


class _Parser:
    def __init__(self, text: str, dataset: Dataset | Schema | None) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.dataset = dataset
        self.home: str | None = None  # the query's ``from`` dataset, once read

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def next(self, expected: str) -> Token:
        tok = self.peek()
        if tok is None:
            raise QueryError(f"query text ends where {expected} was expected: {self.text!r}")
        self.i += 1
        return tok

    def fail(self, tok: Token, expected: str) -> QueryError:
        return QueryError(f"expected {expected} at position {tok.pos}, found {tok.text!r}")

    def punct(self, *chars: str) -> Token:
        tok = self.next(" or ".join(repr(c) for c in chars))
        if tok.kind != "punct" or tok.text not in chars:
            raise self.fail(tok, " or ".join(repr(c) for c in chars))
        return tok

    def keyword(self, word: str) -> None:
        tok = self.next(repr(word))
        if not tok.is_word(word):
            raise self.fail(tok, repr(word))

    def name(self, what: str) -> str:
        tok = self.next(what)
        if tok.kind != "word" or number(tok.text) is not None:
            raise self.fail(tok, what)
        return tok.text

    def names(self, what: str) -> list[str]:
        """One or more names separated by commas (``a, b, c``)."""
        out = [self.name(what)]
        while (p := self.peek()) is not None and p.text == ",":
            self.i += 1
            out.append(self.name(what))
        return out

    def value(self, column: str) -> Scalar:
        tok = self.next(f"a value for {column!r}")
        if tok.kind == "str":
            return tok.text
        if tok.kind != "word":
            raise self.fail(tok, f"a value for {column!r}")
        if self._is_category(column):
            return tok.text
        num = number(tok.text)
        return tok.text if num is None else num

    def _is_category(self, column: str) -> bool:
        found = self._column(column)
        return found is not None and found.type == "category"

    def _column(self, name: str) -> Column | None:
        """The declared column ``name`` (``dataset.column`` or the home dataset's), if known."""
        from pets.query.schema import Dataset

        owner, _, bare = name.rpartition(".")
        if isinstance(self.dataset, Dataset):
            datasets = {self.dataset.name: self.dataset}
            default = self.dataset.name
        elif self.dataset is not None:
            datasets = {d.name: d for d in self.dataset.datasets}
            default = self.home or ""
        else:
            return None
        dataset = datasets.get(owner or default)
        if dataset is None:
            return None
        return next((c for c in dataset.columns if c.name == bare), None)

    def condition(self) -> Filter:
        column = self.name("a column name")
        tok = self.next(f"an operator after {column!r}")
        if tok.is_word("in"):
            self.punct("(", "[")
            values = [self.value(column)]
            while (p := self.peek()) is not None and p.text == ",":
                self.i += 1
                values.append(self.value(column))
            self.punct(")", "]")
            return Filter(column, "in", tuple(values))
        if tok.kind != "op":
            raise self.fail(tok, f"an operator ({' '.join(OPS)}) after {column!r}")
        return Filter(column, tok.text, self.value(column))

    def conditions(self) -> tuple[Filter, ...]:
        out = [self.condition()]
        while (tok := self.peek()) is not None and tok.is_word("and"):
            self.i += 1
            out.append(self.condition())
        return tuple(out)

    def numbers(self, what: str) -> tuple[float, ...]:
        self.punct("[", "(")
        out = []
        while True:
            tok = self.next(f"a number in {what}")
            num = number(tok.text) if tok.kind == "word" else None
            if num is None:
                raise self.fail(tok, f"a number in {what}")
            out.append(float(num))
            sep = self.punct(",", "]", ")")
            if sep.text != ",":
                return tuple(out)

    def dp_request(self) -> DpRequest:
        """``epsilon E`` or ``rho R``, then optionally ``unit row|holder`` (after ``dp``)."""
        tok = self.next("'epsilon' or 'rho' after 'dp'")
        if not tok.is_word("epsilon", "rho"):
            raise self.fail(tok, "'epsilon' or 'rho' after 'dp'")
        kind = tok.text.lower()
        value_tok = self.next(f"a number after {kind!r}")
        value = number(value_tok.text) if value_tok.kind == "word" else None
        if value is None:
            raise self.fail(value_tok, f"a number after {kind!r}")
        unit = "row"
        if (nxt := self.peek()) is not None and nxt.is_word("unit"):
            self.i += 1
            unit_tok = self.next("'row' or 'holder' after 'unit'")
            if not unit_tok.is_word(*DP_UNITS):
                raise self.fail(unit_tok, "'row' or 'holder' after 'unit'")
            unit = unit_tok.text.lower()
        return DpRequest(**{kind: value}, unit=unit)  # type: ignore[arg-type]

    def done(self) -> None:
        tok = self.peek()
        if tok is not None:
            raise QueryError(f"unexpected {tok.text!r} at position {tok.pos}")


def parse_where(text: str, dataset: Dataset | Schema | None = None) -> tuple[Filter, ...]:
    """Parse ``"age >= 65 and sex = F and prefecture in (Tokyo, Osaka)"``.

    Conditions are joined by ``and``; values are bare words, numbers or quoted
    strings (``"New York"``). A bare word that spells a number becomes an int
    or float, unless ``dataset`` (a dataset, or a schema for the
    ``dataset.column`` names of linked queries) is given and the column is a
    category (then it stays a string). The empty string gives no filters.
    """
    parser = _Parser(text, dataset)
    if parser.peek() is None:
        return ()
    out = parser.conditions()
    parser.done()
    return out


def parse_query(text: str, dataset: Dataset | Schema | None = None) -> Query:
    """Parse the text form :meth:`Query.describe` writes::

    AGG(COLUMN | COL, COL... | *) from DATASET [linked to DATASET, ...]
        [where COND and ...] [group by COL, ...] [bins [E0, E1, ...]] [clip [LO, HI]]
        [min_intersection N] [dp epsilon E | dp rho R [unit row | unit holder]]

    ``dataset`` (a dataset or a schema) only decides whether a bare filter
    value next to a category column stays a string.
    """
    parser = _Parser(text, dataset)
    aggregate = parser.name("an aggregate name").lower()
    if aggregate not in set(Aggregate):
        names = ", ".join(a.value for a in Aggregate)
        raise QueryError(f"unknown aggregate {aggregate!r} (one of {names})")
    parser.punct("(")
    args: list[str] = []
    if (tok := parser.peek()) is not None and tok.text == "*":
        parser.i += 1
    elif tok is not None and tok.text != ")":
        args = parser.names("a column name")
    parser.punct(")")
    parser.keyword("from")
    name = parser.name("a dataset name")
    parser.home = name
    linked: list[str] = []
    if (tok := parser.peek()) is not None and tok.is_word("linked"):
        parser.i += 1
        parser.keyword("to")
        linked = parser.names("a dataset name")
    where: tuple[Filter, ...] = ()
    group_by: list[str] = []
    bins = clip = None
    if (tok := parser.peek()) is not None and tok.is_word("where"):
        parser.i += 1
        where = parser.conditions()
    if (tok := parser.peek()) is not None and tok.is_word("group"):
        parser.i += 1
        parser.keyword("by")
        group_by = parser.names("a column name")
    if (tok := parser.peek()) is not None and tok.is_word("bins"):
        parser.i += 1
        bins = parser.numbers("bins")
    if (tok := parser.peek()) is not None and tok.is_word("clip"):
        parser.i += 1
        clip = parser.numbers("clip")
    min_intersection = None
    if (tok := parser.peek()) is not None and tok.is_word("min_intersection"):
        parser.i += 1
        value_tok = parser.next("a number after 'min_intersection'")
        value = number(value_tok.text) if value_tok.kind == "word" else None
        if not isinstance(value, int):
            raise parser.fail(value_tok, "a whole number after 'min_intersection'")
        min_intersection = value
    dp = None
    if (tok := parser.peek()) is not None and tok.is_word("dp"):
        parser.i += 1
        dp = parser.dp_request()
    parser.done()
    agg = Aggregate(aggregate)
    many = agg == Aggregate.vector_sum
    return Query(
        dataset=name,
        aggregate=agg,
        column=None if many or not args else args[0] if len(args) == 1 else None,
        columns=tuple(args) if many else () if len(args) <= 1 else tuple(args),
        where=where,
        group_by=tuple(group_by),
        bins=bins,
        clip=clip,  # type: ignore[arg-type]
        dp=dp,
        linked_to=tuple(linked),
        min_intersection=min_intersection,
    )


def __getattr__(name: str) -> Any:
    """Re-export :func:`compile` and :class:`QueryPlan` lazily (plan imports this module)."""
    if name in ("compile", "QueryPlan"):
        from pets.query import plan

        return getattr(plan, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
