"""The plaintext reference for linked queries: a plain pandas join over the holders' files.

What the private linkage computes without ever showing an identifier, this
module computes in the clear, the obvious way, so demos and tests can compare
(issue 16 item 4). It shares no code with the secure path's evaluation
(:mod:`pets.linkage.persons`, :mod:`pets.query.evaluate`): it takes only the
compiled plan (for the sides, filters, bounds, groups and bin labels) and the
:class:`~pets.query.Result` shape. Steps, per holder of each side:

1. **filter** the rows with the side's filters, on raw values (pandas);
2. **normalise** the identifiers with the dataset's declared steps, written
   again here with pandas string methods, and drop the missing or empty ones;
3. **dedup**: one row per person by the dataset's rule (``first``, ``last``,
   ``reject``: the row; ``sum``, ``min``, ``max``: numeric columns combined,
   category columns from the person's first row);

then **join**: a side's people are the union of its holders' people; a
value-side holder's person is matched if every other side has them (a person
of two value-side holders counts for each); and **aggregate** the matched
people's values, clipped to the plan's bounds, per group: count, sum, mean,
(population) variance or histogram.

The data is synthetic and public; the reference reads whole files into memory
(it is for checking, not for 10^6-row production use).
"""

from __future__ import annotations

import operator
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from pets.errors import InvalidInputError
from pets.query import QueryPlan, Result
from pets.query.decode import result_for
from pets.query.linked import LinkagePlan, LinkedSide
from pets.query.model import Aggregate, Filter

Source: TypeAlias = Path | pd.DataFrame

_NORMALISE = {
    "nfkc": lambda s: s.str.normalize("NFKC"),
    "casefold": lambda s: s.str.casefold(),
    "strip": lambda s: s.str.strip(),
    "collapse_whitespace": lambda s: s.str.split().str.join(" "),
    "remove_whitespace": lambda s: s.str.split().str.join(""),
    "digits_only": lambda s: s.str.replace(r"[^0-9]+", "", regex=True),
    # str.isalnum() is exactly Python's regex \w without "_".
    "alnum_only": lambda s: s.str.replace(r"[\W_]+", "", regex=True),
}


_OPS = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def read_frame(path: Path, dataset: str) -> pd.DataFrame:
    """One holder's file (CSV, Parquet or SQLite table ``dataset``) as a DataFrame of text ids."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix in (".sqlite", ".db"):
        conn = sqlite3.connect(path)
        try:
            return pd.read_sql_query(f'SELECT * FROM "{dataset}"', conn)  # noqa: S608
        finally:
            conn.close()
    raise InvalidInputError(f"cannot read {path.name}: expected .csv, .parquet or .sqlite")


def sources_by_dataset(
    holder_data: Mapping[str, Mapping[str, Path]], datasets: Sequence[str]
) -> dict[str, list[Path]]:
    """``dataset -> [path of each holder that has it]`` from ``holder -> dataset -> path``.

    The shape :class:`pets.devtools.localcluster.LocalCluster` keeps its holders' files in.
    """
    return {d: [files[d] for files in holder_data.values() if d in files] for d in datasets}


def linked_people(plan: QueryPlan, sources: Mapping[str, Sequence[Source]]) -> pd.DataFrame:
    """The matched value-side people: one row per (holder, person) with their values.

    Columns: ``holder`` (index into the value side's sources), ``id`` (the
    normalised identifier) and the value columns the query reads.
    """
    linkage = _linkage(plan)
    for side in linkage.sides:
        if side.name not in sources:
            raise InvalidInputError(f"no data for dataset {side.name!r}, a side of the query")
    value = linkage.value_side
    columns = _value_columns(plan)
    frames = []
    for h, source in enumerate(sources[value.name]):
        people = _people(side=value, frame=_frame(source, value.name), columns=columns)
        people.insert(0, "holder", h)
        frames.append(people)
    matched = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["holder", "id", *columns])
    )
    for side in linkage.sides[1:]:
        ids: set[str] = set()
        for source in sources[side.name]:
            ids.update(_people(side=side, frame=_frame(source, side.name), columns=[])["id"])
        matched = matched[matched["id"].isin(ids)]
    return matched.reset_index(drop=True)


def linked_intersection(plan: QueryPlan, sources: Mapping[str, Sequence[Source]]) -> int:
    """How many value-side (holder, person) records are matched."""
    return len(linked_people(plan, sources))


def linked_plaintext(plan: QueryPlan, sources: Mapping[str, Sequence[Source]]) -> Result:
    """The answer of a linked ``plan`` computed in the clear (see the module docstring).

    ``sources[dataset]`` lists each holder's data of that dataset: a file
    path, or a DataFrame with the id column and the dataset's columns
    (categories as labels). ``contributors`` of the result is the number of
    value-side holders.
    """
    people = linked_people(plan, sources)
    contributors = len(sources[plan.dataset.name])
    query = plan.query
    groups = list(zip(*(people[c].astype(str) for c in query.group_by), strict=True))
    if not query.group_by:
        groups = [()] * len(people)
    index = {g: i for i, g in enumerate(plan.groups)}
    which = np.asarray([index[g] for g in groups], dtype=np.int64)
    rows: list[dict[str, Any]] = []
    if query.aggregate == Aggregate.histogram:
        bins = _bins(plan, people)
        for i, group in enumerate(plan.groups):
            counts = np.bincount(bins[which == i], minlength=len(plan.bin_labels))
            row: dict[str, Any] = dict(zip(query.group_by, group, strict=True))
            row.update(zip(plan.bin_labels, map(int, counts), strict=True))
            rows.append(row)
        return result_for(plan, rows, contributors)
    values = None
    if plan.bounds:
        b = plan.bounds[0]
        values = np.clip(people[b.column].astype(float).to_numpy(), b.lo, b.hi)
    for i, group in enumerate(plan.groups):
        row = dict(zip(query.group_by, group, strict=True))
        mine = which == i
        c = int(np.count_nonzero(mine))
        row["count"] = c
        if values is not None:
            x = values[mine]
            if query.aggregate == Aggregate.sum:
                row["sum"] = float(x.sum())
            else:
                mean = float(x.sum()) / c if c else None
                row["mean"] = mean
                if query.aggregate == Aggregate.variance:
                    row["variance"] = float(((x - mean) ** 2).sum()) / c if c else None
        rows.append(row)
    return result_for(plan, rows, contributors)


# -- steps ------------------------------------------------------------------------------


def _linkage(plan: QueryPlan) -> LinkagePlan:
    if plan.linkage is None:
        raise InvalidInputError("not a linked query; use pets.query.plaintext")
    return plan.linkage


def _value_columns(plan: QueryPlan) -> list[str]:
    out = [b.column for b in plan.bounds] + list(plan.query.group_by)
    if plan.query.aggregate == Aggregate.histogram and plan.query.column is not None:
        out.append(plan.query.column)
    return list(dict.fromkeys(out))


def _frame(source: Source, dataset: str) -> pd.DataFrame:
    return source if isinstance(source, pd.DataFrame) else read_frame(Path(source), dataset)


def _people(side: LinkedSide, frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """One holder's people of ``side``: filter, normalise, dedup; columns ``id`` + ``columns``."""
    link = side.linkage
    frame = frame[_mask(side, frame)]
    ids = frame[link.id_column]
    usable = ids.map(lambda v: isinstance(v, str))
    ids = ids.where(usable, "").astype(str)
    for step in link.normalisation:
        ids = _NORMALISE[step](ids)
    data = pd.DataFrame({"id": ids.to_numpy()})
    for name in columns:
        data[name] = frame[name].to_numpy()
    data = data[data["id"] != ""]
    numeric = [c for c in columns if side.dataset.column(c).is_numeric]
    for name in numeric:
        data[name] = data[name].astype(float)
    rule = link.one_row
    if rule == "reject":
        if data["id"].duplicated().any():
            raise InvalidInputError(f"{side.name}: an identifier repeats and the rule is 'reject'")
        return data.reset_index(drop=True)
    if rule in ("first", "last"):
        return data.drop_duplicates("id", keep=rule).reset_index(drop=True)
    grouped = data.groupby("id", sort=False)
    combined = grouped[numeric].agg(rule) if numeric else None
    first = grouped[[c for c in columns if c not in numeric]].first()
    out = first if combined is None else first.join(combined)
    return out.reset_index()[["id", *columns]]


def _mask(side: LinkedSide, frame: pd.DataFrame) -> np.ndarray:
    mask = np.ones(len(frame), dtype=bool)
    for f in side.where:
        mask &= _passes(f, frame[f.column], side.dataset.column(f.column).is_numeric)
    return mask


def _passes(f: Filter, column: pd.Series, numeric: bool) -> np.ndarray:
    wanted = f.value if isinstance(f.value, tuple) else (f.value,)
    target: list[float] | list[str]
    if numeric:
        x = column.astype(float).to_numpy()
        target = [float(v) for v in wanted]
    else:
        x = column.astype(str).to_numpy()
        target = [str(v) for v in wanted]
    if f.op == "in":
        return np.isin(x, target)
    return np.asarray(_OPS[f.op](x, target[0]), dtype=bool)


def _bins(plan: QueryPlan, people: pd.DataFrame) -> np.ndarray:
    name = str(plan.query.column)
    if plan.query.bins is None:  # category: the label's position in the domain
        labels = list(plan.bin_labels)
        return np.asarray([labels.index(v) for v in people[name].astype(str)], dtype=np.int64)
    edges = np.asarray(plan.query.bins, dtype=float)
    raw = people[name].astype(float).to_numpy()
    return np.clip(np.searchsorted(edges, raw, side="right") - 1, 0, len(edges) - 2)
