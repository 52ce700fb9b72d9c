"""The answer to a query, as the analyst sees it.

A :class:`Result` has one row per group: the group-by keys plus the value
fields of the aggregate (``count``; ``count, sum``; ``count, mean``;
``count, mean, variance``; one count per histogram bin; ``count, vector`` or
just ``vector`` for vector sums). Empty groups have ``mean``/``variance``
``None``. Variance is the *population* variance (divide by the count).

:meth:`Result.close_to` compares a secure result with the plaintext one
within fixed-point rounding: every term is rounded to the nearest multiple of
``1/scale``, so it is off by at most ``d = 0.5/scale``. Hence counts and bins
must be equal; a sum of ``n`` terms may differ by ``n*d``, a mean by ``d``, a
population variance by ``2*sd*d + d^2`` (``sd`` the standard deviation:
``|Var(x+e) - Var(x)| <= 2*sd(x)*sd(e) + Var(e)``), plus a relative ``rel``
and a tiny float64 slack per term for the plaintext side's own rounding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pets.errors import DependencyError
from pets.query.model import Aggregate

# Per-term float64 slack, relative to the largest term magnitude.
_FLOAT_SLACK = 1e-12


@dataclass(frozen=True)
class Result:
    """A decoded (or plaintext) query answer; see the module docstring.

    ``labels`` names the elements of a ``vector`` field (``sum(c)`` per column
    of a table; empty for a vector dataset, whose elements are simply indexed).
    ``term_error`` and ``term_magnitude`` (one per aggregated column, or one
    for all elements of a vector dataset) feed :meth:`close_to`.
    """

    aggregate: Aggregate
    description: str
    dataset: str
    group_by: tuple[str, ...]
    fields: tuple[str, ...]
    rows: list[dict[str, Any]]
    contributors: int
    labels: tuple[str, ...] = ()
    term_error: tuple[float, ...] = ()
    term_magnitude: tuple[float, ...] = ()
    # A differentially private answer (pets.dp.decode_noisy): the noise facts
    # (mechanism, unit, scale per field, ...), per row the 95% interval of each
    # released number ({field: (lo, hi)}; a vector field a list of pairs), and
    # notes where noise shows (e.g. a negative count). None/empty: exact.
    dp: dict[str, Any] | None = None
    intervals: tuple[dict[str, Any], ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        """Group-by keys then value fields."""
        return self.group_by + self.fields

    def to_json_obj(self) -> dict[str, Any]:
        """A JSON-compatible dict (floats, ints, ``None``, lists)."""
        return {
            "aggregate": self.aggregate.value,
            "description": self.description,
            "dataset": self.dataset,
            "contributors": self.contributors,
            "group_by": list(self.group_by),
            "fields": list(self.fields),
            "labels": list(self.labels),
            "rows": [dict(row) for row in self.rows],
        } | (
            {}
            if self.dp is None
            else {
                "dp": self.dp,
                "intervals": [_json_intervals(iv) for iv in self.intervals],
                "notes": list(self.notes),
            }
        )

    def to_table_rows(self) -> tuple[list[str], list[list[str]]]:
        """Headers and string cells for printing.

        A vector dataset prints one row per element (``index, value``); a
        table vector sum spreads its vector into one column per label.
        """
        if "vector" in self.fields and not self.group_by and self.fields == ("vector",):
            vector = self.rows[0]["vector"] if self.rows else []
            return ["index", "value"], [[str(i), _fmt(v)] for i, v in enumerate(vector)]
        headers = list(self.group_by)
        for name in self.fields:
            headers.extend(self.labels if name == "vector" else [name])
        out = []
        for row in self.rows:
            cells = [str(row[k]) for k in self.group_by]
            for name in self.fields:
                if name == "vector":
                    cells.extend(_fmt(v) for v in row[name])
                else:
                    cells.append(_fmt(row[name]))
            out.append(cells)
        return headers, out

    def to_pandas(self) -> Any:
        """The result as a ``pandas.DataFrame``: one row per group, a column per value.

        Columns are the group-by keys, then the value fields, a ``vector``
        field spread into one column per label (``sum(c)``, ...); keys a row
        carries beyond those follow as extra columns. A DP answer adds each
        value's 95% interval as ``<column>_lo`` and ``<column>_hi`` columns.
        A vector dataset gives one row per element (``index``, ``value``).
        Needs pandas (the optional ``pets[pandas]`` extra).
        """
        try:
            import pandas as pd
        except ImportError:
            raise DependencyError(
                "Result.to_pandas() needs pandas: pip install 'pets[pandas]'"
            ) from None
        if self.fields == ("vector",) and not self.group_by:
            vector = self.rows[0]["vector"] if self.rows else []
            frame = pd.DataFrame({"index": range(len(vector)), "value": list(vector)})
            if self.intervals:
                frame["value_lo"] = self.intervals[0]["vector"]["lo"]
                frame["value_hi"] = self.intervals[0]["vector"]["hi"]
            return frame
        headers = list(self.group_by)
        for name in self.fields:
            headers.extend(self.labels if name == "vector" else [name])
        records: list[dict[str, Any]] = []
        for row in self.rows:
            record = {k: row[k] for k in self.group_by}
            for name in self.fields:
                if name == "vector":
                    record.update(zip(self.labels, row[name], strict=True))
                else:
                    record[name] = row[name]
            for key, value in row.items():
                if key not in record and key not in self.fields:
                    record[key] = value
                    if key not in headers:
                        headers.append(key)
            if self.intervals:
                for key, (lo, hi) in _flat_intervals(self, self.intervals[len(records)]):
                    record[f"{key}_lo"], record[f"{key}_hi"] = lo, hi
                    if f"{key}_lo" not in headers:
                        headers.extend((f"{key}_lo", f"{key}_hi"))
            records.append(record)
        return pd.DataFrame.from_records(records, columns=headers)

    def row_intervals(self, index: int) -> list[tuple[str, tuple[float, float]]]:
        """A DP answer's intervals of row ``index`` per column (a vector spread over
        its labels); empty for an exact answer."""
        return _flat_intervals(self, self.intervals[index]) if self.intervals else []

    def close_to(self, other: Result, rel: float = 1e-9, abs_tol: float | None = None) -> bool:
        """True if ``other`` answers the same query within fixed-point rounding.

        ``abs_tol=None`` derives the absolute tolerance per field from the
        fixed-point scale (see the module docstring); a number replaces it for
        every non-count field. Counts and histogram bins must be equal.
        """
        same_shape = (
            self.aggregate == other.aggregate
            and self.group_by == other.group_by
            and self.fields == other.fields
            and len(self.rows) == len(other.rows)
        )
        if not same_shape:
            return False
        for a, b in zip(self.rows, other.rows, strict=True):
            if any(a[k] != b[k] for k in self.group_by):
                return False
            if not self._row_close(a, b, rel, abs_tol):
                return False
        return True

    def _term(self, i: int) -> float:
        err = self.term_error[min(i, len(self.term_error) - 1)] if self.term_error else 0.0
        mag = (
            self.term_magnitude[min(i, len(self.term_magnitude) - 1)]
            if self.term_magnitude
            else 0.0
        )
        return err + mag * _FLOAT_SLACK

    def _row_close(
        self, a: dict[str, Any], b: dict[str, Any], rel: float, abs_tol: float | None
    ) -> bool:
        if self.aggregate in (Aggregate.count, Aggregate.histogram):
            return all(a[k] == b[k] for k in self.fields)
        terms = a.get("count", self.contributors)
        if "count" in a and a["count"] != b["count"]:
            return False
        for name in self.fields:
            x, y = a[name], b[name]
            if name == "count":
                continue
            if name == "vector":
                if len(x) != len(y):
                    return False
                for i, (u, v) in enumerate(zip(x, y, strict=True)):
                    tol = terms * self._term(i) if abs_tol is None else abs_tol
                    if not _close(u, v, rel, tol):
                        return False
                continue
            if x is None or y is None:
                if x is not y:
                    return False
                continue
            d = self._term(0)
            if name == "sum":
                tol = terms * d
            elif name == "mean":
                tol = d
            else:  # variance
                tol = 2 * math.sqrt(max(x, y, 0.0)) * d + d * d + (self._mag() ** 2) * _FLOAT_SLACK
            if not _close(x, y, rel, tol if abs_tol is None else abs_tol):
                return False
        return True

    def _mag(self) -> float:
        return max(self.term_magnitude, default=0.0)


def _json_intervals(iv: dict[str, Any]) -> dict[str, Any]:
    """One row's intervals with lists for pairs (JSON has no tuples) and for a vector
    dataset's ``lo``/``hi`` arrays (numpy in memory: pets.dp.release)."""
    return {
        k: {n: list(a.tolist() if hasattr(a, "tolist") else a) for n, a in v.items()}
        if isinstance(v, Mapping)
        else [list(p) for p in v]
        if isinstance(v, list)
        else list(v)
        for k, v in iv.items()
    }


def _flat_intervals(result: Result, iv: dict[str, Any]) -> list[tuple[str, tuple[float, float]]]:
    """One row's intervals per column (a vector spread over its labels)."""
    out: list[tuple[str, tuple[float, float]]] = []
    for name, value in iv.items():
        if isinstance(value, Mapping):  # a vector dataset: {"lo": [...], "hi": [...]}
            for i, (lo, hi) in enumerate(zip(value["lo"], value["hi"], strict=True)):
                out.append((str(i), (float(lo), float(hi))))
        elif isinstance(value, list):
            labels = result.labels or tuple(f"{name}[{i}]" for i in range(len(value)))
            for label, (lo, hi) in zip(labels, value, strict=True):
                out.append((label, (float(lo), float(hi))))
        else:
            lo, hi = value
            out.append((name, (float(lo), float(hi))))
    return out


def _close(x: float, y: float, rel: float, tol: float) -> bool:
    return abs(x - y) <= tol + rel * max(abs(x), abs(y))


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value == 0 or 1e-4 <= abs(value) < 1e15:
            if value.is_integer():
                return str(int(value))
            return f"{value:.6f}".rstrip("0").rstrip(".")
        return f"{value:.6g}"
    return str(value)
