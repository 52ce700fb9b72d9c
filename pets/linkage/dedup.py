"""One row per person: the rule a dataset's schema states for repeated identifiers.

After filtering and normalisation a holder may have several rows for one
person (several admissions, several claims). The linkage protocol needs one
pseudonym per person (a repeated pseudonym is refused by the join, and would
tell the servers that the holder has repeats), so each dataset declares how
its rows collapse:

* ``first`` / ``last``: keep the first / last row in the holder's order;
* ``sum``: add the value vectors column by column (in the array's dtype:
  wrap-around for ``uint64`` ring vectors, exact for ints);
* ``min`` / ``max``: column-wise minimum / maximum. Apply these to the plain
  values *before* ring encoding, since encoded negatives compare as large;
* ``reject``: repeated identifiers are a data error.

Output order is the order of each person's first row; it is shuffled later
anyway (:mod:`pets.linkage.holder`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pets.errors import InvalidInputError, SchemaError

ONE_ROW_RULES = ("first", "last", "sum", "min", "max", "reject")


def check_rule(rule: str) -> str:
    if rule not in ONE_ROW_RULES:
        raise SchemaError(
            f"unknown one-row-per-person rule {rule!r}; expected one of {', '.join(ONE_ROW_RULES)}"
        )
    return rule


def one_row_per_person(
    ids: Sequence[bytes], values: np.ndarray | None, rule: str
) -> tuple[list[bytes], np.ndarray | None]:
    """Collapse repeated identifiers: (distinct ids, one value row each).

    ``values`` is None or a 2-D array with one row per identifier.
    """
    check_rule(rule)
    if values is not None:
        values = np.asarray(values)
        if values.ndim != 2 or values.shape[0] != len(ids):
            raise InvalidInputError("values must be a 2-D array with one row per identifier")
        if values.dtype.kind not in "iuf":
            raise InvalidInputError("values must be a numeric (integer or float) array")
    index: dict[bytes, int] = {}
    group = np.empty(len(ids), dtype=np.int64)
    chosen: list[int] = []  # row kept per person, for first / last
    for row, ident in enumerate(ids):
        g = index.get(ident)
        if g is None:
            g = index[ident] = len(chosen)
            chosen.append(row)
        elif rule == "last":
            chosen[g] = row
        elif rule == "reject":
            raise InvalidInputError(f"row {row} repeats an identifier and the rule is 'reject'")
        group[row] = g
    distinct = list(index)
    if values is None:
        return distinct, None
    if rule in ("first", "last", "reject"):
        return distinct, values[np.asarray(chosen, dtype=np.int64)]
    out_shape = (len(distinct), values.shape[1])
    if rule == "sum":
        out = np.zeros(out_shape, dtype=values.dtype)
        np.add.at(out, group, values)
        return distinct, out
    out = values[np.asarray(chosen, dtype=np.int64)].copy()  # each person's first row
    ufunc = np.minimum if rule == "min" else np.maximum
    ufunc.at(out, group, values)
    return distinct, out
