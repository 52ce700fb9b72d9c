"""Quick zero-knowledge metrics for ``pets bench --quick`` (a few seconds in total).

Each figure is the median over repetitions of ``time.perf_counter`` timings,
in milliseconds. ``zk_fast_vs_reference_speedup`` times Schnorr prove+verify
on the py_ecc reference backend and on the chosen backend in the same run.
``hash_to_curve_us`` and ``hash_to_curve_reference_us`` time RFC 9380
``hash_to_curve`` (secp256k1_XMD:SHA-256_SSWU_RO_) per call, in microseconds,
through the gmpy2 straight-line map (:func:`pets.zk.hash_to_curve.hash_to_curve`,
the one pets uses) and the pure-Python reference map, on the same messages.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pets.zk.credential import HolderCredential, IssuerKey
    from pets.zk.group import Group

PRESENTATION_PREDICATES = (
    "age >= 18",
    "accreditation >= 2",
    "purpose in {public-health, research}",
)


def bench_credential(group: Group, *, expires_at: int) -> tuple[IssuerKey, HolderCredential]:
    """The issuer and the holder credential every presentation benchmark uses."""
    from pets.zk.credential import IssuerKey, issue_to_holder

    issuer = IssuerKey.generate()
    holder = issue_to_holder(
        issuer,
        "bench/v1",
        group.random_scalar(),
        {"age": 42, "accreditation": 3, "purpose": "research"},
        expires_at,
        group=group,
        max_values={"age": 150, "accreditation": 10},
    )
    return issuer, holder


def _median_ms(fn: Callable[[], object], repeat: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(samples)


def _schnorr_ms(backend: str, repeat: int) -> float:
    from pets.zk.group import get_group
    from pets.zk.schnorr import DLogRelation

    group = get_group(backend)
    x = group.random_scalar()
    public = group.mul_base(x)

    def run() -> None:
        relation = DLogRelation(public)
        relation.verify(relation.prove(x, context=b"bench"), context=b"bench")

    return _median_ms(run, repeat)


def hash_to_curve_us(reference: bool = False, count: int = 200) -> float:
    """Microseconds per RFC 9380 ``hash_to_curve`` call, best of 5 runs over ``count`` messages."""
    from pets.zk import hash_to_curve as h2c

    fn = h2c.hash_to_curve_reference if reference else h2c.hash_to_curve
    messages = [b"bench-%d" % i for i in range(count)]
    dst = b"pets-bench-h2c"
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for message in messages:
            fn(message, dst)
        best = min(best, time.perf_counter() - start)
    return best / count * 1e6


def quick(backend: str = "coincurve") -> dict[str, float]:
    """Timings of the main zero-knowledge operations on ``backend`` (see module docstring)."""
    from pets.zk.credential import (
        NonceRegistry,
        create_presentation,
        verify_presentation,
    )
    from pets.zk.group import get_group
    from pets.zk.pedersen import PedersenParams
    from pets.zk.range_proof import RangeRelation

    group = get_group(backend)
    slow = backend == "py_ecc"
    params = PedersenParams(group)
    commitment, opening = params.commit(42)
    relation = RangeRelation(params, commitment, 18, 149)  # 18 <= x < 150
    proof = relation.prove(opening)
    metrics: dict[str, float] = {}
    metrics["schnorr_prove_verify_ms"] = _schnorr_ms(backend, 5 if slow else 200)
    metrics["range_18_150_prove_ms"] = _median_ms(
        lambda: relation.prove(opening), 3 if slow else 30
    )
    metrics["range_18_150_verify_ms"] = _median_ms(
        lambda: relation.verify(proof), 3 if slow else 30
    )
    wide = RangeRelation(params, commitment, 0, (1 << 64) - 1)
    wide_proof = wide.prove(opening)
    metrics["range64_verify_ms"] = _median_ms(lambda: wide.verify(wide_proof), 1 if slow else 10)

    clock = [1_000_000.0]
    issuer, holder = bench_credential(group, expires_at=2_000_000)
    registry = NonceRegistry(lambda: clock[0])
    predicates = list(PRESENTATION_PREDICATES)

    def verify_once() -> None:
        nonce = registry.issue()
        presentation = create_presentation(holder, predicates, nonce=nonce, context="bench")
        start = time.perf_counter()
        verify_presentation(
            presentation,
            trusted_issuers=[issuer.public_key],
            context="bench",
            now=clock[0],
            nonces=registry,
        )
        samples.append((time.perf_counter() - start) * 1000.0)

    samples: list[float] = []
    for _ in range(1 if slow else 10):
        verify_once()
    metrics["presentation_3_predicates_verify_ms"] = statistics.median(samples)

    reference = _schnorr_ms("py_ecc", 5) if not slow else metrics["schnorr_prove_verify_ms"]
    fast = metrics["schnorr_prove_verify_ms"]
    metrics["zk_fast_vs_reference_speedup"] = reference / fast if fast > 0 else 0.0
    metrics["hash_to_curve_us"] = hash_to_curve_us()
    metrics["hash_to_curve_reference_us"] = hash_to_curve_us(reference=True, count=40)
    return metrics
