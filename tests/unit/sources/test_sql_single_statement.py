"""A configured SQL query is one read-only SELECT: stacked statements never run.

psycopg sends parameterless text by the simple-query protocol, where
``;``-separated statements all run (PostgreSQL protocol docs, "Simple Query");
a query that closes the source's wrapping parentheses could commit, leave
the read-only transaction and write. These tests run such queries against a
real PostgreSQL server (and SQLite) and check the table is unchanged.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pets.errors import InvalidInputError
from pets.query import Column, Dataset
from pets.sources.sql import PostgresSource, SqliteSource

DATASET = Dataset("c", (Column("a", "int", 0, 10),), 10)

# Closes ``COPY (SELECT "a" FROM (`` ... ``) AS pets_source) TO STDOUT (FORMAT csv)``.
COPY_INJECTION = (
    "select 1 as a) AS pets_source) TO STDOUT (FORMAT csv); COMMIT; BEGIN READ WRITE; "
    "INSERT INTO injected VALUES (7); COMMIT; COPY (SELECT 1 AS a FROM (select 1 as a"
)
# Closes ``SELECT * FROM (`` ... ``) AS pets_source LIMIT 0`` (the schema probe).
SCHEMA_INJECTION = (
    "select 1 as a) AS pets_source LIMIT 0; COMMIT; "
    "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; COMMIT; "
    "INSERT INTO injected VALUES (8); SELECT * FROM (select 1 as a"
)


@pytest.fixture
def pg_injected(pg_conninfo: str) -> str:
    import psycopg

    with psycopg.connect(pg_conninfo) as conn:
        conn.execute("DROP TABLE IF EXISTS injected")
        conn.execute("CREATE TABLE injected (n integer)")
    return pg_conninfo


def _pg_rows(conninfo: str) -> list[tuple[int, ...]]:
    import psycopg

    with psycopg.connect(conninfo) as conn:
        return conn.execute("SELECT n FROM injected").fetchall()


@pytest.mark.parametrize("query", [COPY_INJECTION, SCHEMA_INJECTION])
def test_postgresql_stacked_statements_never_run(pg_injected: str, query: str) -> None:
    source = PostgresSource(DATASET, pg_injected, 10, query=query)
    with pytest.raises(InvalidInputError, match="refused"):
        list(source.batches(["a"]))
    assert _pg_rows(pg_injected) == []
    with pytest.raises(InvalidInputError, match="refused"):
        source.arrow_schema()
    assert _pg_rows(pg_injected) == []


@pytest.mark.parametrize(
    "query",
    [
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
        "COMMIT",
        "BEGIN READ WRITE",
        "select 1 as a; SET default_transaction_read_only = off",
    ],
)
def test_postgresql_set_and_transaction_control_are_refused(pg_injected: str, query: str) -> None:
    source = PostgresSource(DATASET, pg_injected, 10, query=query)
    with pytest.raises(InvalidInputError, match="refused"):
        source.arrow_schema()
    with pytest.raises(InvalidInputError, match="refused"):
        list(source.batches(["a"]))


def test_postgresql_one_select_still_reads(pg_injected: str) -> None:
    source = PostgresSource(DATASET, pg_injected, 10, query="select 3 as a")
    assert source.arrow_schema().names == ["a"]
    assert [b.to_pydict() for b in source.batches(["a"])] == [{"a": [3]}]


@pytest.mark.parametrize(
    "query",
    [
        "select 1 as a); INSERT INTO injected VALUES (7); SELECT * FROM (select 1 as a",
        "select 1 as a) LIMIT 0; COMMIT; INSERT INTO injected VALUES (8); SELECT * FROM (select 1",
        "select 1 as a; PRAGMA query_only = OFF",
    ],
)
def test_sqlite_stacked_statements_never_run(tmp_path: Path, query: str) -> None:
    db = tmp_path / "h.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE injected (n integer)")
    conn.close()
    source = SqliteSource(DATASET, db, 10, query=query)
    with pytest.raises(InvalidInputError):
        source.arrow_schema()
    with pytest.raises(InvalidInputError):
        list(source.batches(["a"]))
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM injected").fetchone()[0] == 0
    conn.close()


def test_postgresql_two_selects_name_the_rule(pg_injected: str) -> None:
    query = "select 1 as a) AS pets_source LIMIT 0; SELECT * FROM (select 1 as a"
    source = PostgresSource(DATASET, pg_injected, 10, query=query)
    with pytest.raises(InvalidInputError, match="42601: the query must be one SELECT statement"):
        source.arrow_schema()
