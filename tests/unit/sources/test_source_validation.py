"""Per-batch validation: errors name the source, the row and the column, never the value."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pets.errors import InvalidInputError
from pets.query import compile, parse_query
from pets.sources import SourceSpec, check_source, evaluate_source, open_source, read_table
from tests.unit.sources.conftest import Files

HEADER = "age,sex,prefecture,diagnosis,length_of_stay,cost\n"
GOOD = "70,F,Tokyo,C,3,12.5\n"
SECRET = "73519"  # a value that must never appear in a message


def _csv(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + body)
    return path


def _error(files: Files, setting: object, query: str = "sum(cost) from hospitals") -> str:
    plan = compile(parse_query(query), files.schema)
    source = open_source(files.schema, "hospitals", setting)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError) as info:
        for workers in (1, 2):
            evaluate_source(plan, source, workers=workers)
    return str(info.value)


@pytest.mark.parametrize(
    ("row", "column", "problem"),
    [
        (f"70,F,Tokyo,C,3,{SECRET}x\n", "cost", "is not a number"),
        ("70,F,Tokyo,C,3,\n", "cost", "is empty"),
        ("70,,Tokyo,C,3,1\n", "sex", "is empty"),
        ("70,F,Tokyo,C,3,nan\n", "cost", "not finite"),
        ("70,F,Tokyo,C,3,-inf\n", "cost", "not finite"),
        (f"{SECRET}.5,F,Tokyo,C,3,1\n", "age", "is not an integer"),
        (f"70,F,Tokio{SECRET},C,3,1\n", "prefecture", "is not in the domain"),
    ],
)
def test_csv_errors_name_file_row_and_column(
    files: Files, tmp_path: Path, row: str, column: str, problem: str
) -> None:
    path = _csv(tmp_path, GOOD * 4 + row + GOOD)
    query = "mean(cost) from hospitals where age >= 0 group by sex, prefecture"
    message = _error(files, path, query)
    assert str(path) in message
    assert "row 5" in message and repr(column) in message and problem in message
    assert SECRET not in message


def test_csv_wrong_field_count_is_reported_without_the_line(files: Files, tmp_path: Path) -> None:
    path = _csv(tmp_path, GOOD * 2 + f"70,F,Tokyo,{SECRET}\n")
    message = _error(files, path)
    assert "row 3 has 4 fields, the header has 6" in message and SECRET not in message


def test_errors_count_rows_across_batches(files: Files, tmp_path: Path) -> None:
    path = _csv(tmp_path, GOOD * 900 + "70,F,Tokyo,C,3,\n")
    message = _error(files, SourceSpec("csv", path=path, batch_rows=64))
    assert "row 901, column 'cost': value is empty" in message


def test_whitespace_around_csv_values_and_header_is_ignored(files: Files, tmp_path: Path) -> None:
    path = tmp_path / "ws.csv"
    path.write_text(
        "\ufeff age , sex,prefecture,diagnosis,length_of_stay, cost\n 70 , F ,Tokyo,C,3, 1.5\n"
    )
    table = read_table(open_source(files.schema, "hospitals", path))
    assert table.values("age").tolist() == [70.0] and table.labels("sex").tolist() == ["F"]


def test_parquet_wrong_type_is_found_at_start(files: Files, tmp_path: Path) -> None:
    bad = files.table.set_column(5, "cost", pa.array(["x"] * files.table.num_rows))
    path = tmp_path / "bad.parquet"
    pq.write_table(bad, path)
    with pytest.raises(InvalidInputError, match="column 'cost' has type string"):
        check_source(files.schema, open_source(files.schema, "hospitals", path))


def test_missing_column_is_found_at_start(files: Files, tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text("age,sex\n1,F\n")
    for setting in (
        path,
        SourceSpec("sqlite", path=files.sqlite, query="SELECT age, sex FROM stays"),
    ):
        with pytest.raises(InvalidInputError, match=r"column\(s\) \['prefecture'"):
            check_source(files.schema, open_source(files.schema, "hospitals", setting))


def test_parquet_nulls_and_nan_are_refused(files: Files, tmp_path: Path) -> None:
    cost = files.table.column("cost").to_pylist()
    for value, problem in ((None, "is empty"), (float("nan"), "not finite")):
        cost[7] = value
        path = tmp_path / "n.parquet"
        table = files.table.set_column(5, "cost", pa.array(cost, pa.float64()))
        pq.write_table(table, path, row_group_size=3)  # row 8 is in the third row group
        message = _error(files, SourceSpec("parquet", path=path, batch_rows=5))
        assert "row 8, column 'cost'" in message and problem in message


def test_sqlite_is_opened_read_only(files: Files, tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    db.write_bytes(files.sqlite.read_bytes())
    spec = SourceSpec("sqlite", path=db, query="DELETE FROM stays RETURNING *")
    with pytest.raises(InvalidInputError, match="refused"):
        read_table(open_source(files.schema, "hospitals", spec))
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM stays").fetchone()[0] == files.table.num_rows
    conn.close()
    missing = SourceSpec("sqlite", path=tmp_path / "none.db", table="stays")
    with pytest.raises(InvalidInputError, match="does not exist"):
        check_source(files.schema, open_source(files.schema, "hospitals", missing))
    assert not (tmp_path / "none.db").exists()


def test_sqlite_text_in_a_numeric_column_names_the_row(files: Files, tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    db.write_bytes(files.sqlite.read_bytes())
    with sqlite3.connect(db) as conn:
        conn.execute(f"UPDATE stays SET cost = 'x{SECRET}' WHERE rowid = 9")
    conn.close()
    message = _error(files, SourceSpec("sqlite", path=db, table="stays", batch_rows=4))
    assert "row 9, column 'cost': value is not a number" in message and SECRET not in message


def test_postgresql_is_read_only(files: Files, pg_conninfo: str) -> None:
    import psycopg

    for query, state in (
        ("WITH gone AS (DELETE FROM stays RETURNING *) SELECT * FROM gone", "0A000"),
        ("SELECT *, nextval('seq') FROM stays", "25006"),  # read_only_sql_transaction
    ):
        spec = SourceSpec("postgresql", conninfo=pg_conninfo, query=query)
        with pytest.raises(InvalidInputError, match=f"refused the read .*{state}"):
            read_table(open_source(files.schema, "hospitals", spec))
    with psycopg.connect(pg_conninfo) as conn:
        row = conn.execute("SELECT count(*) FROM stays").fetchone()
        assert row is not None and row[0] == files.table.num_rows
    wrong = SourceSpec("postgresql", conninfo=pg_conninfo, table="wrong")
    with pytest.raises(InvalidInputError, match="missing"):
        check_source(files.schema, open_source(files.schema, "hospitals", wrong))


def test_postgresql_read_only_transaction_refuses_writes(pg_conninfo: str) -> None:
    from pets.query import Column, Dataset
    from pets.sources.sql import PostgresSource

    source = PostgresSource(Dataset("c", (Column("n", "int", 0, 10),), 10), pg_conninfo, 10)
    with source.connect() as conn:
        import psycopg

        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("UPDATE counter SET n = 1")


def test_max_rows_is_checked_as_rows_stream(files: Files, tmp_path: Path) -> None:
    path = _csv(tmp_path, GOOD * 1001)
    message = _error(files, SourceSpec("csv", path=path, batch_rows=100))
    assert str(path) in message and "more than max_rows=1000 rows" in message


def test_postgresql_null_names_the_row(files: Files, pg_conninfo: str) -> None:
    import psycopg

    with psycopg.connect(pg_conninfo) as conn:
        conn.execute("DROP TABLE IF EXISTS nulls")
        conn.execute("CREATE TABLE nulls AS SELECT row_number() OVER () AS id, * FROM stays")
        conn.execute("UPDATE nulls SET cost = NULL WHERE id = 9")
    query = "SELECT * FROM nulls ORDER BY id"
    spec = SourceSpec("postgresql", conninfo=pg_conninfo, query=query, batch_rows=4)
    assert "row 9, column 'cost': value is empty" in _error(files, spec)


def test_an_earlier_row_error_comes_before_max_rows_whatever_the_workers(
    files: Files, tmp_path: Path
) -> None:
    """Row groups read in parallel report errors in row order, like batches read in a stream."""
    path = tmp_path / "many.parquet"
    table = pa.concat_tables([files.table, files.table])  # 1200 rows > max_rows = 1000
    cost = table.column("cost").to_pylist()
    cost[1] = float("nan")
    table = table.set_column(5, "cost", pa.array(cost, pa.float64()))
    pq.write_table(table, path, row_group_size=500)
    plan = compile(parse_query("sum(cost) from hospitals"), files.schema)
    source = open_source(
        files.schema, "hospitals", SourceSpec("parquet", path=path, batch_rows=500)
    )
    for workers in (1, 2):
        with pytest.raises(InvalidInputError, match="row 2, column 'cost'"):
            evaluate_source(plan, source, workers=workers)
