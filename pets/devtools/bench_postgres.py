"""``contributions_per_s_pg``: the service's throughput with its state in PostgreSQL,
beside the SQLite figure measured in the same run (issue 14, item 6).

Two deployments of :mod:`pets.devtools.bench_service` run side by side on
loopback: one leader + one helper on SQLite (the default), and one leader +
one helper on PostgreSQL, each server on its own database of one local
PostgreSQL server started for the run (:mod:`pets.devtools.pgserver`) with
``fsync`` and ``synchronous_commit`` on, as in production, so each group
commit pays its flush as SQLite's ``synchronous=FULL`` does. The throughput
measurement is :func:`pets.devtools.bench_service.rate_metrics` (many small
contributions from concurrent holders in client processes, durably
acknowledged), run in alternating passes on the two deployments so that
background load affects both alike; the best round of each is reported.

Metrics: ``contributions_per_s_pg``, ``contributions_per_s_sqlite`` (this
run's reference; ``contributions_per_s`` of the ``service`` suite is the same
measurement, in another part of the run) and ``pg_vs_sqlite_ratio``. Where
PostgreSQL is not installed the suite reports nothing and says why.

Replicas (several leaders on one database) are not built yet, so there is no
``contributions_per_s_pg_2_replicas``.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pets.devtools.bench_service import ServiceRig, rate_metrics
from pets.devtools.pgcluster import PostgresCluster, server_databases
from pets.devtools.pgserver import PostgresUnavailable, start_postgres

log = logging.getLogger("pets.bench")

PASSES = 2
ROUNDS_PER_PASS = 3
VECTOR_LENGTH = 16  # the rigs' vector dataset; the measurement uses count() (length 1)


@dataclass
class PostgresRig(ServiceRig):
    """A :class:`ServiceRig` whose leader and helper keep their state in PostgreSQL."""

    state_urls: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.cluster = PostgresCluster.like(self.cluster, self.state_urls)


def quick() -> dict[str, float]:
    """``contributions_per_s_pg`` and ``contributions_per_s_sqlite`` of one run, and
    their ratio (20 s on an idle 2-core machine, most of it starting servers; a minute
    under load)."""
    try:
        server = start_postgres(durable=True)
    except PostgresUnavailable as exc:
        log.warning("PostgreSQL benchmark skipped: %s", exc)
        return {}
    try:
        with tempfile.TemporaryDirectory(prefix="pets-bench-pg-") as tmp:
            urls = server_databases(server, ["leader", "helper-1"])
            with (
                ServiceRig(Path(tmp) / "sqlite", lengths=(VECTOR_LENGTH,)) as sqlite,
                PostgresRig(Path(tmp) / "pg", lengths=(VECTOR_LENGTH,), state_urls=urls) as pg,
            ):
                best = {"sqlite": 0.0, "pg": 0.0}
                for _ in range(PASSES):
                    for name, rig in (("sqlite", sqlite), ("pg", pg)):
                        rate = rate_metrics(rig, rounds=ROUNDS_PER_PASS)["contributions_per_s"]
                        best[name] = max(best[name], rate)
    finally:
        server.stop()
    return {
        "contributions_per_s_pg": best["pg"],
        "contributions_per_s_sqlite": best["sqlite"],
        "pg_vs_sqlite_ratio": best["pg"] / best["sqlite"],
    }


if __name__ == "__main__":
    import json

    print(json.dumps(quick(), indent=1, sort_keys=True))
