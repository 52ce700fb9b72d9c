"""The query model: schemas, queries, compilation, evaluation and decoding.

Pure core, no I/O. The flow: every party loads the same :class:`Schema`; the
analyst's :class:`Query` is compiled into a :class:`QueryPlan` (a fixed int64
vector layout); each holder :func:`evaluate`\\ s it on its own :class:`Table`
(or streams batches through :func:`evaluate_batches`, as :mod:`pets.sources`
does); the vectors are summed secretly; the analyst :func:`decode`\\ s the sum into a
:class:`Result` (checked against overflow). :func:`plaintext` gives the same
answer from raw rows, for comparison.

Linked queries (``... from ltc linked to hospitals ...``, issue 16): a
dataset's :class:`Linkage` declares its identifier column, normalisation and
one-row-per-person rule; a linked :class:`QueryPlan` carries a
:class:`LinkagePlan` (:mod:`pets.query.linked`), and holders evaluate it per
person with :mod:`pets.linkage.persons`.
"""

from pets.query.decode import decode, plaintext
from pets.query.evaluate import (
    Accumulator,
    Evaluation,
    cell_row_counts,
    evaluate,
    evaluate_batches,
    group_row_counts,
)
from pets.query.linked import LinkagePlan, LinkedSide
from pets.query.model import Aggregate, Filter, Query, parse_query, parse_where
from pets.query.plan import Field, NumericBounds, QueryPlan, compile
from pets.query.result import Result
from pets.query.schema import Column, Dataset, Linkage, Schema
from pets.query.table import Table, parse_csv

__all__ = [
    "Accumulator",
    "Aggregate",
    "Column",
    "Dataset",
    "Evaluation",
    "Field",
    "Filter",
    "Linkage",
    "LinkagePlan",
    "LinkedSide",
    "NumericBounds",
    "Query",
    "QueryPlan",
    "Result",
    "Schema",
    "Table",
    "cell_row_counts",
    "compile",
    "decode",
    "evaluate",
    "evaluate_batches",
    "group_row_counts",
    "parse_csv",
    "parse_query",
    "parse_where",
    "plaintext",
]
