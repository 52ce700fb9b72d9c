"""The throw-away PostgreSQL server of the tests: :mod:`pets.devtools.pgserver`
(also used by the benchmarks), under the name the tests import."""

from pets.devtools.pgserver import (
    SERVICE_USER,
    PostgresServer,
    PostgresUnavailable,
    find_bin,
    start_postgres,
)

__all__ = ["SERVICE_USER", "PostgresServer", "PostgresUnavailable", "find_bin", "start_postgres"]
