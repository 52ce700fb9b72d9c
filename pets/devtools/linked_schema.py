"""Small linked schemas built in code, for tests and benchmarks of record linkage.

A linked dataset is an ordinary table dataset with a ``linkage`` declaration
(issue 16; ``docs/LINKAGE.md``, "Declaring a linkable dataset"): the
identifier column, the linkage domain and the one-row-per-person rule.
:func:`linked_dataset` builds one; :func:`care_and_hospitals` is the two-sided
schema the linkage tests share (one place instead of a TOML copy per test).
The linked synthetic data of ``pets gen-data`` has its own, larger schema
(:func:`pets.devtools.datagen_linked.schema`).
"""

from __future__ import annotations

from collections.abc import Sequence

from pets.query.schema import Column, Dataset, Linkage, Schema

RESIDENT = "resident"


def linked_dataset(
    name: str,
    id_column: str,
    columns: Sequence[Column],
    *,
    max_rows: int,
    domain: str = RESIDENT,
    one_row: str = "first",
) -> Dataset:
    """A table dataset whose rows link by ``id_column`` in ``domain`` (default normalisation)."""
    return Dataset(name, tuple(columns), max_rows, linkage=Linkage(domain, id_column, one_row))


def care_and_hospitals(max_rows: int = 1000) -> Schema:
    """``ltc`` (``care_cost`` int [0, 1000], ``care_level`` care1..care3) keyed by
    ``person_id`` and ``hospitals`` (``diagnosis`` E11, I10, J45) keyed by
    ``patient_id``; both in domain ``resident``, first row per person."""
    return Schema(
        (
            linked_dataset(
                "ltc",
                "person_id",
                (
                    Column("care_cost", "int", 0, 1000),
                    Column("care_level", "category", domain=("care1", "care2", "care3")),
                ),
                max_rows=max_rows,
            ),
            linked_dataset(
                "hospitals",
                "patient_id",
                (Column("diagnosis", "category", domain=("E11", "I10", "J45")),),
                max_rows=max_rows,
            ),
        )
    )
