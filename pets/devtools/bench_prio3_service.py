"""Quick benchmark of Prio3 in the service (issue 12): throughput and cost against additive.

``prio3_contributions_per_s``
    A grouped mean with 16 groups (32 slots: count and sum per group) into
    one query, from
    :data:`RATE_HOLDERS` concurrent holders, each its own certified identity,
    split over :data:`RATE_PROCESSES` client processes. Each contribution is
    durably acknowledged after the full protocol: the leader's
    ``verify_init``, the helper's check (certificate, signature, HPKE open,
    ``verify_init``, verifier message, ``verify_next``), the leader's
    verifier message and ``verify_next``, the group commit. The holders'
    proving (``shard``) is *not* timed: each holder proves on its own machine
    before it sends (here the client processes shard every report first, then
    all send at a barrier), so the rate is what the two servers sustain.
    Best of :data:`RATE_ROUNDS` rounds; the median beside it;
    ``prio3_shard_ms`` is one holder's proving time for that query.
``prio3_contributions_per_cpu_s``
    The same rounds divided by the CPU time every process involved spent in
    the timed window (both servers with their verification workers, both
    client processes; :mod:`pets.devtools.proc_cpu`, Linux), median: the
    load-independent figure. Two idle cores sustain at most twice that.
``prio3_vs_additive_e2e_ratio``
    The same 10-holder grouped mean through both protocols in the same run,
    interleaved (in alternating order): from the first holder's contribution
    (proving included) to the analyst holding the decoded result; median of
    :data:`E2E_ROUNDS` rounds each.

Both run on one leader and one helper with TLS on loopback
(:class:`pets.devtools.localcluster.LocalCluster`).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pets.client.analyst import AnalystClient
from pets.client.connect import Connector
from pets.client.holder import HolderClient
from pets.devtools.bench_service import _endpoints_from_json, _endpoints_to_json
from pets.devtools.localcluster import LocalCluster
from pets.devtools.proc_cpu import tree_cpu_seconds
from pets.identity.certificates import Role
from pets.protocols import by_name
from pets.query import Query, QueryPlan, Schema
from pets.query import compile as compile_query
from pets.v1 import aggregation_pb2 as pb

RATE_HOLDERS = 200
RATE_PROCESSES = 2
RATE_ROUNDS = 3
E2E_HOLDERS = 10
E2E_ROUNDS = 5
GROUPS = 16
QUERY = "mean(x) from groups group by g"

SCHEMA_TOML = (
    "[datasets.groups]\nmax_rows = 1000\n\n"
    '[[datasets.groups.columns]]\nname = "x"\ntype = "int"\nlo = 0\nhi = 1000\n\n'
    '[[datasets.groups.columns]]\nname = "g"\ntype = "category"\n'
    "domain = [" + ", ".join(f'"g{i:02d}"' for i in range(GROUPS)) + "]\n"
)


def holder_vector(plan: QueryPlan, index: int) -> np.ndarray:
    """A valid vector: holder ``index`` has one row of ``x = index % 1000`` in one group."""
    vec = np.zeros(plan.length, dtype=np.int64)
    width = len(plan.fields)
    x = index % 1000
    terms = {"count": 1}
    at = (index % GROUPS) * width
    for i, f in enumerate(plan.fields):
        vec[at + i] = terms.get(f.label, x if f.label.startswith("sum(") else x * x)
    return vec


def _plan(schema: Schema) -> QueryPlan:
    return compile_query(Query.parse(QUERY), schema)


# --------------------------------------------------------------------------- rate worker


def _worker_main() -> None:
    """A client process: stdin gets the holders' endpoints, then per round an
    announcement (hex). It shards every holder's report, prints ``{"ready"}``,
    waits for a ``go`` line, sends them all at once and prints ``{"start", "end"}``."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        read = lambda: loop.run_in_executor(None, sys.stdin.readline)  # noqa: E731
        endpoints = [_endpoints_from_json(e) for e in json.loads(await read())]
        schema = Schema.from_toml(endpoints[0].schema.read_text())
        plan = _plan(schema)
        clients = [HolderClient(Connector(e, "holder")) for e in endpoints]
        protocol = by_name("prio3")
        try:
            while line := await read():
                ann = pb.QueryAnnouncement.FromString(bytes.fromhex(line.strip()))
                try:
                    made = [
                        await protocol.contribute(
                            ann,
                            plan,
                            holder_vector(plan, i),
                            holder=c.name,
                            seed_key=None,
                            sealer=c.seal_seeds,
                        )
                        for i, c in enumerate(clients)
                    ]
                    print(json.dumps({"ready": True}), flush=True)
                    await read()  # go
                    start = time.perf_counter()
                    await asyncio.gather(
                        *(
                            c.send_payload(
                                ann.query_id,
                                m.payload,
                                m.digest,
                                m.sealed_seeds,
                                deadline=ann.deadline_unix,
                            )
                            for c, m in zip(clients, made, strict=True)
                        )
                    )
                    out: dict[str, Any] = {"start": start, "end": time.perf_counter()}
                except Exception as exc:  # report, never leave the parent waiting
                    out = {"error": f"{type(exc).__name__}: {exc}"}
                print(json.dumps(out), flush=True)
        finally:
            for c in clients:
                await c.close()

    asyncio.run(main())


class _Worker:
    def __init__(self, cluster: LocalCluster, names: Sequence[str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pets.devtools.bench_prio3_service", "worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.write(json.dumps([_endpoints_to_json(cluster.endpoints(n)) for n in names]))

    def write(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("a benchmark client process exited")
        out: dict[str, Any] = json.loads(line)
        if "error" in out:
            raise RuntimeError(f"benchmark client: {out['error']}")
        return out

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


# --------------------------------------------------------------------------- the rig


class _Rig:
    def __init__(self, workdir: Path) -> None:
        self.cluster = LocalCluster(
            workdir=workdir,
            schema=Schema.from_toml(SCHEMA_TOML),
            min_holders=2,
            limits={"release_window_seconds": 0.001, "finalize_timeout_seconds": 60},
        )
        self.cluster.prepare()
        self.cluster.start_servers()
        self.loop = asyncio.new_event_loop()
        self.analyst = self.run(self._analyst())
        self.plan = _plan(self.cluster.schema)

    async def _analyst(self) -> AnalystClient:
        return AnalystClient(self.cluster.endpoints("analyst"))

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def holders(self, names: Sequence[str]) -> list[HolderClient]:
        for n in names:
            self.cluster.issue(Role.HOLDER, n)

        async def make() -> list[HolderClient]:
            return [HolderClient(Connector(self.cluster.endpoints(n), "holder")) for n in names]

        return self.run(make())  # type: ignore[no-any-return]

    async def submit(self, protocol: str) -> Any:
        return await self.analyst.submit(
            Query.parse(QUERY), protocol=protocol, deadline_seconds=600
        )

    async def finish(self, submitted: Any) -> Any:
        await self.analyst.close_query(submitted.query_id)
        status = await self.analyst.wait(submitted.query_id)
        if status.state != pb.QUERY_STATE_READY:
            raise RuntimeError(f"{submitted.query_id} ended {status.failure_detail}")
        return await self.analyst.fetch(submitted, status)

    def close(self) -> None:
        self.run(self.analyst.close())
        self.loop.close()
        self.cluster.stop()


def rate_metrics(
    rig: _Rig, holders: int = RATE_HOLDERS, rounds: int = RATE_ROUNDS
) -> dict[str, float]:
    names = [f"p3-{i:05d}" for i in range(holders)]
    for n in names:
        rig.cluster.issue(Role.HOLDER, n)
    announcer = rig.holders(["p3-announcer"])[0]
    workers = [_Worker(rig.cluster, names[i::RATE_PROCESSES]) for i in range(RATE_PROCESSES)]
    rates: list[float] = []
    cpu_rates: list[float] = []
    try:
        for r in range(rounds + 1):  # round 0 connects every channel: not counted
            submitted = rig.run(rig.submit("prio3"))
            ann = rig.run(announcer.announcement(submitted.query_id))
            for w in workers:
                w.write(ann.SerializeToString().hex())
            for w in workers:
                w.read()  # ready: every report proved
            pids = [p.popen.pid for p in rig.cluster.processes.values() if p.popen is not None]
            pids += [w.process.pid for w in workers]
            cpu_before = tree_cpu_seconds(*pids)
            for w in workers:
                w.write("go")
            spans = [w.read() for w in workers]
            cpu_after = tree_cpu_seconds(*pids)
            result = rig.run(rig.finish(submitted))
            if result.contributors != holders:
                raise RuntimeError(f"{result.contributors} of {holders} contributions counted")
            if r:
                seconds = max(s["end"] for s in spans) - min(s["start"] for s in spans)
                rates.append(holders / seconds)
                if cpu_before is not None and cpu_after is not None and cpu_after > cpu_before:
                    cpu_rates.append(holders / (cpu_after - cpu_before))
    finally:
        for w in workers:
            w.stop()
        rig.run(announcer.close())
    out = {
        "prio3_contributions_per_s": max(rates),
        "prio3_contributions_per_s_median": statistics.median(rates),
    }
    if cpu_rates:
        out["prio3_contributions_per_cpu_s"] = statistics.median(cpu_rates)
    return out


def e2e_metrics(rig: _Rig, rounds: int = E2E_ROUNDS) -> dict[str, float]:
    clients = rig.holders([f"e2e-{i:02d}" for i in range(E2E_HOLDERS)])
    vectors = [holder_vector(rig.plan, i) for i in range(E2E_HOLDERS)]

    async def once(protocol: str) -> float:
        submitted = await rig.submit(protocol)
        ann = await clients[0].announcement(submitted.query_id)
        start = time.perf_counter()
        await asyncio.gather(
            *(c.contribute(ann, rig.plan, v) for c, v in zip(clients, vectors, strict=True))
        )
        result = await rig.finish(submitted)
        seconds = time.perf_counter() - start
        if result.contributors != E2E_HOLDERS:
            raise RuntimeError("not every holder counted")
        return seconds

    rig.run(once("additive")), rig.run(once("prio3"))  # warm-up
    times: dict[str, list[float]] = {"additive": [], "prio3": []}
    for i in range(rounds):
        # Alternate the order, so neither protocol always runs after the other.
        for protocol in ("additive", "prio3") if i % 2 == 0 else ("prio3", "additive"):
            times[protocol].append(rig.run(once(protocol)))
    additive, prio3 = times["additive"], times["prio3"]
    for c in clients:
        rig.run(c.close())
    t_add, t_p3 = statistics.median(additive), statistics.median(prio3)
    return {
        "prio3_vs_additive_e2e_ratio": t_p3 / t_add,
        "prio3_e2e_seconds": t_p3,
        "additive_e2e_seconds_same_query": t_add,
    }


def shard_ms(plan: QueryPlan) -> float:
    """One holder's proving time for the rate query (best of 5)."""
    protocol = by_name("prio3")
    ann = pb.QueryAnnouncement(
        query_id="q-0000000000000001",
        vector_length=plan.length,
        helpers=["helper-1"],
        fingerprint=plan.fingerprint(),
    )
    best = float("inf")
    for i in range(6):
        start = time.perf_counter()
        asyncio.run(
            protocol.contribute(
                ann,
                plan,
                holder_vector(plan, i),
                holder="h",
                seed_key=None,
                sealer=lambda a, s: [pb.SealedSeed(helper="helper-1", sealed=bytes(80))],
            )
        )
        best = min(best, time.perf_counter() - start)
    return best * 1000


def quick() -> dict[str, float]:
    """``prio3_contributions_per_s`` and ``prio3_vs_additive_e2e_ratio`` (plus context)."""
    with tempfile.TemporaryDirectory(prefix="pets-bench-prio3-") as tmp:
        rig = _Rig(Path(tmp))
        try:
            metrics = {"prio3_shard_ms": shard_ms(rig.plan)}
            metrics.update(e2e_metrics(rig))
            metrics.update(rate_metrics(rig))
        finally:
            rig.close()
    return metrics


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        _worker_main()
    else:
        print(json.dumps(quick(), indent=1, sort_keys=True))
