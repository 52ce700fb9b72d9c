"""Prio3 (pets.vdaf) benchmarks: per-report shard and verify, and batched verification.

Groups:

``vdaf-shard``
    :meth:`pets.vdaf.prio3.Prio3.shard` (two aggregators) for Count, Sum with
    max 255 and 2^32 - 1, SumVec(10, 255), Histogram(100) and Histogram(1000).
``vdaf-verify``
    ``verify_init`` on both aggregators plus ``verifier_shares_to_message``
    for the same cases (issue 10's "verify" definition).
``vdaf-batch``
    1,000 Histogram(100) reports through :class:`pets.vdaf.batch.BatchVerifier`
    in-process and on two worker processes; ``extra_info["reports"]`` gives
    reports per call, so the report shows reports/s.

Targets (issue 10, two cores): Histogram(100) shard <= 2 ms, verify <= 1 ms;
Count shard + verify <= 0.15 ms; batched Histogram(100) >= 5,000 reports/s.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from pets.vdaf import Prio3, VdafError, prio3_count, prio3_histogram, prio3_sum, prio3_sum_vec
from pets.vdaf.batch import BatchVerifier

CTX = b"pets bench"

CASES: list[tuple[str, Any, Any]] = [
    ("count", lambda: prio3_count(2), 1),
    ("sum255", lambda: prio3_sum(2, 255), 200),
    ("sum2p32", lambda: prio3_sum(2, 2**32 - 1), 2**31 + 5),
    ("sumvec10x255", lambda: prio3_sum_vec(2, 10, 255), list(range(10))),
    ("histogram100", lambda: prio3_histogram(2, 100), 42),
    ("histogram1000", lambda: prio3_histogram(2, 1000), 420),
]


@pytest.mark.benchmark(group="vdaf-shard")
@pytest.mark.parametrize(("name", "make", "meas"), CASES, ids=[c[0] for c in CASES])
def test_shard(benchmark: Any, name: str, make: Any, meas: Any) -> None:
    vdaf: Prio3 = make()
    nonce = os.urandom(16)
    _public, shares = benchmark(vdaf.shard, CTX, meas, nonce)
    assert len(shares) == 2


@pytest.mark.benchmark(group="vdaf-verify")
@pytest.mark.parametrize(("name", "make", "meas"), CASES, ids=[c[0] for c in CASES])
def test_verify(benchmark: Any, name: str, make: Any, meas: Any) -> None:
    vdaf: Prio3 = make()
    key, nonce = os.urandom(32), os.urandom(16)
    public, shares = vdaf.shard(CTX, meas, nonce)

    def verify() -> bytes:
        vs = [vdaf.verify_init(key, CTX, j, nonce, public, shares[j])[1] for j in range(2)]
        return vdaf.verifier_shares_to_message(CTX, vs)

    benchmark(verify)


@pytest.fixture(scope="module")
def hist_batch() -> dict[str, Any]:
    vdaf = prio3_histogram(2, 100)
    nonces = [os.urandom(16) for _ in range(1000)]
    reports = [vdaf.shard(CTX, i % 100, n) for i, n in enumerate(nonces)]
    return {
        "vdaf": vdaf,
        "key": os.urandom(32),
        "nonces": nonces,
        "publics": [r[0] for r in reports],
        "leader": [r[1][0] for r in reports],
        "helper": [r[1][1] for r in reports],
    }


def _share(result: Any) -> bytes:
    if isinstance(result, VdafError):
        raise result
    return result[1]  # type: ignore[no-any-return]


@pytest.mark.benchmark(group="vdaf-batch")
@pytest.mark.parametrize("workers", [1, 2])
def test_batch_verify_histogram100(
    benchmark: Any, hist_batch: dict[str, Any], workers: int
) -> None:
    d = hist_batch
    benchmark.extra_info["reports"] = len(d["nonces"])
    with BatchVerifier(d["vdaf"], workers) as bv:
        bv.verify_init(d["key"], CTX, 1, d["nonces"][:8], d["publics"][:8], d["helper"][:8])

        def run() -> list[Any]:
            r0 = bv.verify_init(d["key"], CTX, 0, d["nonces"], d["publics"], d["leader"])
            r1 = bv.verify_init(d["key"], CTX, 1, d["nonces"], d["publics"], d["helper"])
            return bv.verifier_shares_to_message(
                CTX, [[_share(a), _share(b)] for a, b in zip(r0, r1, strict=True)]
            )

        msgs = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=0)
    assert all(isinstance(m, bytes) for m in msgs)
