"""Linkage benchmarks (issue 16): the pure core of :mod:`pets.linkage`, in one process.

Groups (every case records ``extra_info["elements"]``, the records it handles
per call, so the report shows records/s):

``linkage-holder``
    :func:`pets.linkage.blind` (shuffle, RFC 9380 hash-to-curve, one
    multiplication per record) and :func:`pets.linkage.finish` (checks, one
    multiplication, pseudonym, second shuffle) on 2,000 records.
``linkage-server``
    :func:`pets.linkage.evaluate` on 2,000 points: plain, on two threads, and
    verified (batched DLEQ proof); and the holder's check of one proof.
    The baseline is the bare libsecp256k1 multiplication of the same points
    (no decoding or encoding): the floor of a server's cost.
``linkage-join``
    :func:`pets.linkage.match` on 10^5 × 10^5 pseudonyms, half shared, plus the
    matched-set digest.
``linkage-core-10k``
    the whole in-process pipeline for two holders of 10^4 records (half shared):
    blind, helper, leader, unblind, pseudonyms, join; one and two threads, and
    each stage for both holders at once on two processes.
    The target of the service version is <= 3 s end to end on 2 cores.
``linkage-core-1m`` (``slow``)
    the same for 10^6 × 10^6 on two processes, one round (issue target:
    <= 5 minutes end to end; the per-record CPU costs measured add up to about
    430 s, so about 215 s if both cores stay busy).
``linkage-service``
    10^4 × 10^4 end to end through a real leader and helper (processes, mTLS,
    SQLite) with two holder processes, unverified and verified; ``slow``: the
    same at 10^6 × 10^6 (:func:`pets.devtools.bench_linkage.service_run`).
"""

from __future__ import annotations

import os

import pytest

from pets.devtools.bench_linkage import (
    DOMAIN,
    QUERY,
    core_seconds,
    core_seconds_processes,
    service_run,
)
from pets.linkage import (
    blind,
    derive_key_share,
    evaluate,
    finish,
    match,
    matched_set_digest,
    verify_batch,
)
from pets.linkage.points import decode_batch

N = 2000


@pytest.fixture(scope="module")
def setup() -> dict:
    leader = derive_key_share(os.urandom(32), "leader", DOMAIN, QUERY)
    helper = derive_key_share(os.urandom(32), "helper", DOMAIN, QUERY)
    ids = [b"%012d" % i for i in range(N)]
    batch, state = blind(ids, DOMAIN)
    mid = evaluate(batch, helper, max_rows=N, prove=True, context=b"h")
    out = evaluate(mid.outputs, leader, max_rows=N)
    return {
        "leader": leader,
        "helper": helper,
        "ids": ids,
        "batch": batch,
        "state": state,
        "mid": mid,
        "out": out,
    }


def _run(benchmark, fn, elements: int, *, rounds: int = 5, baseline: bool = False) -> None:
    benchmark.extra_info["elements"] = elements
    if baseline:
        benchmark.extra_info["baseline"] = True
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group="linkage-holder")
def test_holder_blind(benchmark, setup: dict) -> None:
    _run(benchmark, lambda: blind(setup["ids"], DOMAIN), N)


@pytest.mark.benchmark(group="linkage-holder")
def test_holder_finish(benchmark, setup: dict) -> None:
    out = setup["out"].outputs
    _run(benchmark, lambda: finish(out, setup["state"], DOMAIN, QUERY), N)


@pytest.mark.benchmark(group="linkage-server")
def test_server_bare_multiplication(benchmark, setup: dict) -> None:
    points = decode_batch(setup["batch"], N)
    key = setup["helper"].scalar_bytes
    _run(benchmark, lambda: [p.multiply(key) for p in points], N, baseline=True)


@pytest.mark.benchmark(group="linkage-server")
@pytest.mark.parametrize("workers", [1, 2])
def test_server_evaluate(benchmark, setup: dict, workers: int) -> None:
    batch, helper = setup["batch"], setup["helper"]
    _run(benchmark, lambda: evaluate(batch, helper, max_rows=N, workers=workers), N)


@pytest.mark.benchmark(group="linkage-server")
def test_server_evaluate_verified(benchmark, setup: dict) -> None:
    batch, helper = setup["batch"], setup["helper"]
    _run(
        benchmark,
        lambda: evaluate(batch, helper, max_rows=N, prove=True, context=b"h"),
        N,
    )


@pytest.mark.benchmark(group="linkage-server")
def test_holder_verify_one_proof(benchmark, setup: dict) -> None:
    mid, helper = setup["mid"], setup["helper"]
    _run(
        benchmark,
        lambda: verify_batch(
            helper.public_key, setup["batch"], mid.outputs, mid.proof, context=b"h", max_rows=N
        ),
        N,
    )


@pytest.mark.benchmark(group="linkage-join")
def test_join_100k(benchmark) -> None:
    n = 100_000
    shared = os.urandom(16 * (n // 2))
    a = shared + os.urandom(16 * (n - n // 2))
    b = os.urandom(16 * (n - n // 2)) + shared

    def run() -> None:
        matched_set_digest(QUERY, match([a, b]))

    _run(benchmark, run, 2 * n, rounds=10)


@pytest.mark.benchmark(group="linkage-core-10k")
@pytest.mark.parametrize("workers", [1, 2])
def test_core_10k(benchmark, workers: int) -> None:
    benchmark.extra_info["elements"] = 20_000
    benchmark.pedantic(
        lambda: core_seconds(10_000, workers=workers), rounds=2, iterations=1, warmup_rounds=0
    )


@pytest.mark.benchmark(group="linkage-core-10k")
def test_core_10k_two_processes(benchmark) -> None:
    benchmark.extra_info["elements"] = 20_000
    benchmark.pedantic(
        lambda: core_seconds_processes(10_000), rounds=2, iterations=1, warmup_rounds=0
    )


@pytest.mark.slow
@pytest.mark.benchmark(group="linkage-core-1m")
def test_core_1m(benchmark) -> None:
    benchmark.extra_info["elements"] = 2_000_000
    benchmark.pedantic(
        lambda: core_seconds_processes(1_000_000), rounds=1, iterations=1, warmup_rounds=0
    )


@pytest.mark.benchmark(group="linkage-service")
@pytest.mark.parametrize("verify", [False, True], ids=["unverified", "verified"])
def test_service_10k(benchmark, verify: bool) -> None:
    """10^4 x 10^4 through a real leader and helper, two holder processes
    (:func:`pets.devtools.bench_linkage.service_run`); target <= 3 s unverified."""
    benchmark.extra_info["elements"] = 20_000
    benchmark.pedantic(
        lambda: service_run(10_000, verify=verify), rounds=1, iterations=1, warmup_rounds=0
    )


@pytest.mark.slow
@pytest.mark.benchmark(group="linkage-service")
def test_service_1m(benchmark) -> None:
    """10^6 x 10^6 through the service; target <= 5 minutes on one 2-core machine."""
    benchmark.extra_info["elements"] = 2_000_000
    benchmark.pedantic(lambda: service_run(1_000_000), rounds=1, iterations=1, warmup_rounds=0)
