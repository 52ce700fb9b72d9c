"""``contributions_per_s_pg`` and ``contributions_per_s_pg_2_replicas``: the service's
throughput with its state in PostgreSQL, one leader and two leader replicas, beside
the SQLite figure measured in the same run (issue 14, item 6).

Three deployments of :mod:`pets.devtools.bench_service` run side by side on
loopback: one leader + one helper on SQLite (the default); one leader + one
helper on PostgreSQL; and two leader replicas (two processes on the leader's one
database, holders given both addresses: gRPC ``round_robin``) + one helper on
PostgreSQL. Each server has its own database of one local PostgreSQL server
started for the run (:mod:`pets.devtools.pgserver`) with ``fsync`` and
``synchronous_commit`` on, as in production, so each group commit pays its flush
as SQLite's ``synchronous=FULL`` does. The throughput measurement is
:func:`pets.devtools.bench_service.rate_metrics` (many small contributions from
concurrent holders in client processes, durably acknowledged), run in
alternating passes on the three deployments (in reverse order every other pass)
so that background load affects them alike; the best round of each is
reported (the first path ``rate_metrics`` measures: the persistent contribution
stream where it is built).

Metrics: ``contributions_per_s_sqlite`` (this run's reference;
``contributions_per_s`` of the ``service`` suite is the same measurement, in
another part of the run), ``contributions_per_s_pg``,
``contributions_per_s_pg_2_replicas``, their ratios to SQLite
(``pg_vs_sqlite_ratio``, ``pg_2_replicas_vs_sqlite_ratio``), and the CPU split
per contribution of each deployment in the steady state (the CPU of a pass of 5
rounds minus that of a pass of 1, over the extra contributions: the holders'
connections and streams cancel out, each round's query set-up and finalisation
stays in): ``cpu_us_per_contribution_<part>_<rig>``
for the leader processes (summed over replicas), the helper, the PostgreSQL
server (postmaster and backends) and, from the sum, ``cpu_us_per_contribution_
total_<rig>``. On 2 cores the replicas compete with everything else for the same
cores; the docs derive the projection for more cores from the CPU split
(docs/ARCHITECTURE.md, "Storage"). Where PostgreSQL is not installed the suite
reports nothing and says why.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pets.devtools import bench_service
from pets.devtools.bench_service import ServiceRig, process_cpu_seconds, rate_metrics
from pets.devtools.pgcluster import PostgresCluster, server_databases
from pets.devtools.pgserver import PostgresServer, PostgresUnavailable, start_postgres

log = logging.getLogger("pets.bench")

# Each deployment gets a short and a long pass (in turn with the others); the CPU
# difference between them is what the extra rounds cost: the steady state, without
# connecting holders (TLS handshakes, once per replica) and starting streams.
PASS_ROUNDS = (1, 5)
VECTOR_LENGTH = 16  # the rigs' vector dataset; the measurement uses count() (length 1)
_CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")  # /proc stat units
# The contribution paths each rate_metrics call measures (stream and unary, where built).
_PATHS = len(getattr(bench_service, "RATE_PATHS", ("unary",)))


@dataclass
class PostgresRig(ServiceRig):
    """A :class:`ServiceRig` whose leader (``leader_replicas`` processes) and helper
    keep their state in PostgreSQL."""

    state_urls: dict[str, str] = field(default_factory=dict)
    leader_replicas: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        self.cluster = PostgresCluster.like(self.cluster, self.state_urls)
        self.cluster.leader_replicas = self.leader_replicas

    def leader_pids(self) -> list[int]:
        assert isinstance(self.cluster, PostgresCluster)
        return [self.pid(p) for p in self.cluster.leader_processes]


def _postgres_cpu_seconds(server: PostgresServer) -> float:
    """CPU of the PostgreSQL server so far: the postmaster with its reaped children
    (cutime, cstime) and its live children (the backends)."""
    pid = int((server.data_dir / "postmaster.pid").read_text().split()[0])
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rpartition(")")[2].split()
    total = sum(int(fields[i]) for i in (11, 12, 13, 14)) / _CLOCK_TICKS_PER_S
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        for child in children:
            with contextlib.suppress(OSError):
                total += process_cpu_seconds(int(child))
    return total


def _cpu(rig: ServiceRig, server: PostgresServer) -> dict[str, float]:
    leaders = rig.leader_pids() if isinstance(rig, PostgresRig) else [rig.pid("leader")]
    return {
        "leaders": sum(process_cpu_seconds(p) for p in leaders),
        "helper": process_cpu_seconds(rig.pid("helper-1")),
        "postgres": _postgres_cpu_seconds(server),
    }


@contextlib.contextmanager
def _rigs(server: PostgresServer, tmp: Path) -> Iterator[dict[str, ServiceRig]]:
    one = server_databases(server, ["leader", "helper-1"])
    two = server_databases(server, ["leader", "helper-1"])
    with (
        ServiceRig(tmp / "sqlite", lengths=(VECTOR_LENGTH,)) as sqlite,
        PostgresRig(tmp / "pg", lengths=(VECTOR_LENGTH,), state_urls=one) as pg,
        PostgresRig(
            tmp / "pg2", lengths=(VECTOR_LENGTH,), state_urls=two, leader_replicas=2
        ) as pg2,
    ):
        yield {"sqlite": sqlite, "pg": pg, "pg_2_replicas": pg2}


def quick() -> dict[str, float]:
    """``contributions_per_s_sqlite``, ``_pg`` and ``_pg_2_replicas`` of one run, their
    ratios to SQLite and the CPU split (about a minute on a loaded 2-core machine,
    much of it starting servers)."""
    try:
        server = start_postgres(durable=True)
    except PostgresUnavailable as exc:
        log.warning("PostgreSQL benchmark skipped: %s", exc)
        return {}
    out: dict[str, float] = {}
    try:
        with (
            tempfile.TemporaryDirectory(prefix="pets-bench-pg-") as tmp,
            _rigs(server, Path(tmp)) as rigs,
        ):
            best = dict.fromkeys(rigs, 0.0)
            parts = ("leaders", "helper", "postgres")
            cpu = {name: {r: dict.fromkeys(parts, 0.0) for r in PASS_ROUNDS} for name in rigs}
            order = list(rigs.items())
            for i, rounds in enumerate(PASS_ROUNDS):
                # Reversed every other pass: no deployment always runs right after
                # another (whose leftover checkpoint or vacuum work it would pay).
                for name, rig in order if i % 2 == 0 else order[::-1]:
                    before = _cpu(rig, server)
                    metrics = rate_metrics(rig, rounds=rounds)
                    after = _cpu(rig, server)
                    best[name] = max(best[name], metrics["contributions_per_s"])
                    for part in parts:
                        cpu[name][rounds][part] = after[part] - before[part]
            short, long = PASS_ROUNDS
            extra = bench_service.RATE_HOLDERS * (long - short) * _PATHS  # contributions
            for name in rigs:
                out[f"contributions_per_s_{name}"] = best[name]
                for part in parts:
                    seconds = cpu[name][long][part] - cpu[name][short][part]
                    out[f"cpu_us_per_contribution_{part}_{name}"] = seconds / extra * 1e6
                out[f"cpu_us_per_contribution_total_{name}"] = sum(
                    out[f"cpu_us_per_contribution_{p}_{name}"] for p in parts
                )
    finally:
        server.stop()
    out["pg_vs_sqlite_ratio"] = out["contributions_per_s_pg"] / out["contributions_per_s_sqlite"]
    out["pg_2_replicas_vs_sqlite_ratio"] = (
        out["contributions_per_s_pg_2_replicas"] / out["contributions_per_s_sqlite"]
    )
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(quick(), indent=1, sort_keys=True))
