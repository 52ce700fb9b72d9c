"""Quick linkage metrics (issue 16): per-record costs and the in-process 10^4 × 10^4 core.

Everything here is the pure core of :mod:`pets.linkage`, in one process, no
network: what the service will distribute over the holder, the leader and the
helper. Times are ``time.perf_counter`` wall times; per-record figures are
the best of a few runs divided by the batch size.

* ``linkage_per_record_us_holder``: blind (shuffle, RFC 9380 hash-to-curve,
  one multiplication) plus finish (checks, one multiplication, pseudonym,
  second shuffle), per record;
* ``linkage_per_record_us_server``: one server's key application (decode,
  check, one multiplication, encode), per record; ``..._verified`` adds the
  batched DLEQ proof, ``linkage_per_record_us_holder_verify`` is the holder's
  check of both servers' proofs;
* ``linkage_h2c_us``, ``linkage_scalar_mul_us``, ``linkage_point_decode_us``:
  the per-point primitives (RFC 9380 hash_to_curve through the gmpy2 SSWU map,
  libsecp256k1's constant-time ``ecmult_const`` multiplication by a secret
  scalar, :func:`pets.linkage.points.multiply_secret`, and strict decoding),
  to show where the time goes; ``linkage_scalar_mul_variable_us`` is coincurve's
  variable-time ``PublicKey.multiply``, which pets does not use for secrets,
  for comparison;
* ``linkage_core_10k_seconds``: two holders of 10^4 records (half shared):
  blind, helper, leader, unblind, pseudonyms, join, on one thread;
  ``linkage_core_10k_seconds_2_processes``
  runs each stage for both holders at once on two processes, a proxy for
  holders and servers running concurrently on 2 cores end to end;
  ``linkage_join_10k_seconds`` is the join alone. The same pipeline with the
  multiplications on two threads (``core_seconds(workers=2)``; coincurve
  releases the GIL) is measured by ``benchmarks/test_bench_linkage.py``
  (``make bench``), not here: it sits between the two figures above and kept
  ``pets bench --quick`` 3 s longer.
* ``linkage_10k_seconds``: the same 10^4 x 10^4 end to end through the
  service (:func:`service_run`): a real leader and helper (processes, mTLS,
  SQLite) and two holders, each in its own process as on its own machine,
  from submitting ``count(*) from left linked to right`` to the decoded
  count, unverified mode (``service_run(verify=True)`` measures verified
  mode); ``linkage_per_record_us_service_{holder,leader,helper}`` are the CPU
  microseconds each party spent per record (of the 2·10^4), from
  ``time.process_time`` in the holders and ``/proc/PID/stat`` for the servers,
  and ``linkage_10k_cpu_seconds`` their sum over all four processes;
* ``openmined_psi_cardinality_10k_seconds``: openmined-psi's PSI cardinality
  (ECDH over P-256, both parties in this process, one thread, no network) at
  the same sizes, best of 3 after a warm-up, when ``openmined.psi`` is
  installed (it is not a dependency); ``..._cpu_seconds`` beside it, because
  the pets run above spreads over both cores and PSI uses one.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from coincurve import PublicKey

from pets.devtools.bench import best_time
from pets.devtools.linked_schema import linked_dataset
from pets.linkage import (
    BlindState,
    KeyShare,
    LinkageDomain,
    blind,
    derive_key_share,
    evaluate,
    finish,
    match,
    verify_evaluations,
)
from pets.linkage.holder import hash_to_point
from pets.linkage.local import link_in_process
from pets.linkage.points import decode_batch, multiply_secret
from pets.query.schema import Column, Schema

DOMAIN = LinkageDomain("bench-ids")
QUERY = "bench-query"


def _ids(start: int, n: int) -> list[bytes]:
    return [b"%012d" % i for i in range(start, start + n)]


def per_record(n: int = 1000) -> dict[str, float]:
    """Per-record holder and server costs on batches of ``n``."""
    leader = derive_key_share(os.urandom(32), "leader", DOMAIN, QUERY)
    helper = derive_key_share(os.urandom(32), "helper", DOMAIN, QUERY)
    ids = _ids(0, n)
    batch, state = blind(ids, DOMAIN)
    mid = evaluate(batch, helper, max_rows=n, prove=True, context=b"h")
    out = evaluate(mid.outputs, leader, max_rows=n, prove=True, context=b"l")
    assert mid.proof is not None and out.proof is not None
    t_blind = best_time(lambda: blind(ids, DOMAIN), repeat=3)
    t_finish = best_time(lambda: finish(out.outputs, state, DOMAIN, QUERY), repeat=3)
    t_server = best_time(lambda: evaluate(batch, helper, max_rows=n), repeat=3)
    t_verified = best_time(
        lambda: evaluate(batch, helper, max_rows=n, prove=True, context=b"h"), repeat=3
    )
    t_verify = best_time(
        lambda: verify_evaluations(
            batch,
            mid.outputs,
            out.outputs,
            helper_public_key=helper.public_key,
            helper_proof=mid.proof or b"",
            helper_context=b"h",
            leader_public_key=leader.public_key,
            leader_proof=out.proof or b"",
            leader_context=b"l",
        ),
        repeat=3,
    )
    sample = ids[:200]
    t_h2c = best_time(lambda: [hash_to_point(i, DOMAIN.dst) for i in sample], repeat=3)
    key = helper.scalar_bytes
    points = decode_batch(batch, n)
    t_mul = best_time(lambda: [multiply_secret(p, key) for p in points], repeat=3)
    t_mul_variable = best_time(lambda: [p.multiply(key).format() for p in points], repeat=3)
    t_decode = best_time(lambda: [PublicKey(batch[i : i + 33]) for i in range(0, 33 * n, 33)])
    us = 1e6
    return {
        "linkage_per_record_us_holder": (t_blind + t_finish) / n * us,
        "linkage_per_record_us_server": t_server / n * us,
        "linkage_per_record_us_server_verified": t_verified / n * us,
        "linkage_per_record_us_holder_verify": t_verify / n * us,
        "linkage_h2c_us": t_h2c / len(sample) * us,
        "linkage_scalar_mul_us": t_mul / n * us,
        "linkage_scalar_mul_variable_us": t_mul_variable / n * us,
        "linkage_point_decode_us": t_decode / n * us,
    }


def core_seconds(n: int = 10_000, *, workers: int = 1) -> float:
    """Wall time of the in-process pipeline for two holders of ``n`` records, half shared."""
    leader = derive_key_share(os.urandom(32), "leader", DOMAIN, QUERY)
    helper = derive_key_share(os.urandom(32), "helper", DOMAIN, QUERY)
    a, b = _ids(0, n), _ids(n // 2, n)
    start = time.perf_counter()
    run = link_in_process(
        [a, b], DOMAIN, QUERY, leader=leader, helper=helper, max_rows=n, workers=workers
    )
    elapsed = time.perf_counter() - start
    if run.matched.size != n - n // 2:
        raise AssertionError("the benchmark's join found the wrong intersection")
    return elapsed


def _blind_task(args: tuple[list[bytes], LinkageDomain]) -> tuple[bytes, BlindState]:
    ids, domain = args
    return blind(ids, domain)


def _evaluate_task(args: tuple[bytes, KeyShare, int]) -> bytes:
    batch, key, max_rows = args
    return evaluate(batch, key, max_rows=max_rows).outputs


def _finish_task(args: tuple[bytes, BlindState, LinkageDomain, str]) -> bytes:
    out, state, domain, query = args
    return finish(out, state, domain, query).pseudonyms


def core_seconds_processes(n: int = 10_000, *, processes: int = 2) -> float:
    """The pipeline of :func:`core_seconds` with the two holders' work on two processes.

    Each stage (blind, helper, leader, finish) runs for both holders at once,
    as separate holder and server processes would; then the join. Pool
    start-up is included. A proxy for what 2 cores can do end to end.
    """
    leader = derive_key_share(os.urandom(32), "leader", DOMAIN, QUERY)
    helper = derive_key_share(os.urandom(32), "helper", DOMAIN, QUERY)
    holders = [_ids(0, n), _ids(n // 2, n)]
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=processes, mp_context=get_context("fork")) as pool:
        blinded = list(pool.map(_blind_task, [(ids, DOMAIN) for ids in holders]))
        mid = list(pool.map(_evaluate_task, [(b, helper, n) for b, _ in blinded]))
        out = list(pool.map(_evaluate_task, [(m, leader, n) for m in mid]))
        uploads = list(
            pool.map(
                _finish_task,
                [(o, state, DOMAIN, QUERY) for o, (_, state) in zip(out, blinded, strict=True)],
            )
        )
    matched = match(uploads)
    elapsed = time.perf_counter() - start
    if matched.size != n - n // 2:
        raise AssertionError("the benchmark's join found the wrong intersection")
    return elapsed


def join_seconds(n: int = 10_000) -> float:
    shared = os.urandom(16 * (n // 2))
    a = shared + os.urandom(16 * (n - n // 2))
    b = os.urandom(16 * (n - n // 2)) + shared
    return best_time(lambda: match([a, b]), repeat=5)


# --------------------------------------------------------------------------- the service
def service_schema(rows: int) -> Schema:
    """``left`` (``v``) and ``right`` (``w``), int [0, 1], both keyed by ``id`` in domain
    ``bench-ids``, first row per person."""
    return Schema(
        tuple(
            linked_dataset(
                name, "id", (Column(column, "int", 0, 1),), max_rows=rows, domain="bench-ids"
            )
            for name, column in (("left", "v"), ("right", "w"))
        )
    )


@dataclass
class _Rows:
    """:class:`pets.client.linkage.PersonRows` for the benchmark: a count per person."""

    ids: list[bytes]
    domain: LinkageDomain
    width: int

    def vectors(self, persons: np.ndarray) -> np.ndarray:
        return np.ones((len(persons), self.width), dtype=np.uint64)


def _cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _side_ids(side: int, n: int) -> list[bytes]:
    """Holder ``side``'s ``n`` ids: the first half shared by both holders."""
    own = b"lr"[side : side + 1]
    return [b"s%09d" % i for i in range(n // 2)] + [own + b"%09d" % i for i in range(n - n // 2)]


def _holder_process(
    endpoints: Any, side: int, n: int, verify: bool, workers: int, inbox: Any, outbox: Any
) -> None:
    """One holder in its own process (as on its own machine): connect, wait for the
    query id, then link and upload; reports its CPU seconds."""
    import asyncio

    from pets.client.connect import Connector
    from pets.client.holder import HolderClient
    from pets.client.linkage import link_and_upload

    ids = _side_ids(side, n)

    async def run() -> None:
        client = HolderClient(Connector(endpoints, "holder"))
        outbox.put("ready")
        qid = await asyncio.to_thread(inbox.get)
        cpu = time.process_time()
        try:
            ann = await client.announcement(qid)
            rows = _Rows(ids, DOMAIN, 1 if side == 0 else 0)
            await link_and_upload(client, ann, side, rows, verify=verify, workers=workers)
        finally:
            await client.close()
        outbox.put(time.process_time() - cpu)

    asyncio.run(run())


def service_run(n: int = 10_000, *, verify: bool = False, workers: int = 1) -> dict[str, float]:
    """Two holders of ``n`` records each (half shared), each in its own process,
    linked end to end through a real leader and helper (processes, mTLS, SQLite):
    wall time from submitting the query to the decoded count, and CPU microseconds
    per record (of the 2n records) for the holders and for each server."""
    import asyncio
    import tempfile

    from pets.client.analyst import AnalystClient
    from pets.devtools.localcluster import LocalCluster
    from pets.query import Query

    schema = service_schema(max(n, 1))
    holders = ["holder-l", "holder-r"]
    ctx = get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        cluster = LocalCluster(
            workdir=Path(tmp),
            schema=schema,
            holder_data={h: {} for h in holders},
            min_holders=2,
            limits={"finalize_timeout_seconds": max(60, n // 5000)},
        )
        cluster.prepare()
        cluster.start_servers()
        inbox, outbox = ctx.Queue(), ctx.Queue()
        procs = [
            ctx.Process(
                target=_holder_process,
                args=(cluster.endpoints(h), side, n, verify, workers, inbox, outbox),
            )
            for side, h in enumerate(holders)
        ]
        try:
            for p in procs:
                p.start()
            for _ in procs:
                outbox.get(timeout=120)
            pids = {s: cluster.processes[s].popen.pid for s in ("leader", "helper-1")}  # type: ignore[union-attr]

            async def scenario() -> tuple[float, int]:
                analyst = AnalystClient(cluster.endpoints("analyst"))
                try:
                    query = Query.parse("count(*) from left linked to right")
                    started = time.perf_counter()
                    sub = await analyst.submit(
                        query,
                        protocol="linkage",
                        min_holders=2,
                        deadline_seconds=max(600.0, n / 200),  # 10^6: over an hour
                        close_after=2,
                    )
                    for _ in procs:
                        inbox.put(sub.status.query_id)
                    status = await analyst.wait(sub.status.query_id)
                    result = await analyst.fetch(sub, status)
                    return time.perf_counter() - started, int(result.rows[0]["count"])
                finally:
                    await analyst.close()

            before = {s: _cpu_seconds(p) for s, p in pids.items()}
            wall, count = asyncio.run(scenario())
            after = {s: _cpu_seconds(p) for s, p in pids.items()}
            holders_cpu = sum(outbox.get(timeout=60) for _ in procs)
        finally:
            for p in procs:
                p.join(timeout=30)
                if p.is_alive():
                    p.kill()
            cluster.stop()
    if count != n // 2:
        raise AssertionError(f"linked count {count}, expected {n // 2}")
    records = 2 * n
    suffix = "_verified" if verify else ""
    size = f"{n // 1000}k" if n < 1_000_000 else f"{n // 1_000_000}m"
    servers_cpu = sum(after[s] - before[s] for s in pids)
    return {
        f"linkage_{size}_seconds{suffix}": wall,
        # All four processes' CPU: beside openmined-psi's, which runs on one thread.
        f"linkage_{size}_cpu_seconds{suffix}": holders_cpu + servers_cpu,
        f"linkage_per_record_us_service_holder{suffix}": holders_cpu / records * 1e6,
        f"linkage_per_record_us_service_leader{suffix}": (after["leader"] - before["leader"])
        / records
        * 1e6,
        f"linkage_per_record_us_service_helper{suffix}": (after["helper-1"] - before["helper-1"])
        / records
        * 1e6,
    }


def psi_cardinality_seconds(n: int = 10_000, *, repeat: int = 3) -> tuple[float, float] | None:
    """openmined-psi's PSI cardinality (ECDH P-256, both parties in this process, one
    thread) at the same sizes, when the package is installed (None otherwise): the
    best ``(wall seconds, CPU seconds)`` of ``repeat`` runs after a warm-up, fresh keys
    in each (as pets draws fresh key shares per query). It uses one core where the
    pets service run uses both, so its CPU time is reported beside its wall time."""
    try:
        import private_set_intersection.python as psi  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return None
    shared = [f"s{i:09d}" for i in range(n // 2)]
    client_items = shared + [f"c{i:09d}" for i in range(n - n // 2)]
    server_items = shared + [f"v{i:09d}" for i in range(n - n // 2)]

    def once() -> tuple[float, float]:
        started, cpu = time.perf_counter(), time.process_time()
        client = psi.client.CreateWithNewKey(False)  # reveal_intersection=False: cardinality
        server = psi.server.CreateWithNewKey(False)
        setup = server.CreateSetupMessage(
            1e-9, len(client_items), server_items, psi.DataStructure.RAW
        )
        request = client.CreateRequest(client_items)
        response = server.ProcessRequest(request)
        size = client.GetIntersectionSize(setup, response)
        elapsed = (time.perf_counter() - started, time.process_time() - cpu)
        if size != n // 2:
            raise AssertionError(f"openmined-psi counted {size}, expected {n // 2}")
        return elapsed

    once()  # warm-up: the library's first call pays for its own set-up
    return min(once() for _ in range(repeat))


def quick() -> dict[str, float]:
    """All linkage quick metrics (about 8 s on 2 cores)."""
    metrics = per_record()
    metrics["linkage_core_10k_seconds"] = core_seconds()
    metrics["linkage_core_10k_seconds_2_processes"] = core_seconds_processes()
    metrics["linkage_join_10k_seconds"] = join_seconds()
    metrics.update(service_run(10_000))  # linkage_10k_seconds, through real servers
    psi = psi_cardinality_seconds(10_000)
    if psi is not None:
        metrics["openmined_psi_cardinality_10k_seconds"] = psi[0]
        metrics["openmined_psi_cardinality_10k_cpu_seconds"] = psi[1]
    return metrics


if __name__ == "__main__":
    for name, value in quick().items():
        print(f"{name:45s} {value:12.3f}")
