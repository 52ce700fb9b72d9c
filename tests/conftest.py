"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.postgres import PostgresServer, PostgresUnavailable, start_postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server per test session (see ``tests/postgres.py``).

    Skips where PostgreSQL is missing, but fails when ``CI`` is set: CI must
    not pass by skipping the database tests.
    """
    server = _start_or_skip()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def private_postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for one test alone, e.g. one the test restarts."""
    server = _start_or_skip()
    try:
        yield server
    finally:
        server.stop()


def _start_or_skip() -> PostgresServer:
    try:
        return start_postgres()
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI: {exc}")
        pytest.skip(f"PostgreSQL unavailable: {exc}")
