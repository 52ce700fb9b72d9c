"""Zero-knowledge benchmarks: py_ecc reference vs coincurve (libsecp256k1), same session.

Groups: ``zk-schnorr`` (prove + verify), ``zk-range-18-150-prove``,
``zk-range-18-150-verify`` (18 <= x < 150, 8 bits), ``zk-range64-verify``
(64 bits), ``zk-membership`` (set of 4, prove + verify), ``zk-presentation-verify``
(3 predicates), ``zk-hash-to-curve`` (RFC 9380 suite secp256k1_XMD:SHA-256_SSWU_RO_:
the pure-Python reference map vs the default gmpy2 straight-line map, issue 16
item 3) and ``zk-pedersen-commit`` (blinded secret scalars, value 0 vs 2^64 - 1:
the two must cost the same). The py_ecc (or reference) case of each group carries
``extra_info["baseline"] = True`` so the report shows coincurve's time as a
fraction of the reference's. The py_ecc side runs few rounds (milliseconds per
multiplication).
"""

from __future__ import annotations

import pytest

from pets.devtools.bench_zk import PRESENTATION_PREDICATES, bench_credential
from pets.zk import hash_to_curve as h2c
from pets.zk.credential import (
    create_presentation,
    verify_presentation,
)
from pets.zk.group import get_group
from pets.zk.membership import MembershipRelation
from pets.zk.pedersen import PedersenParams
from pets.zk.range_proof import RangeRelation
from pets.zk.schnorr import DLogRelation

BACKENDS = ["py_ecc", "coincurve"]


def _run(benchmark, backend: str, fn, *, fast_rounds: int = 50) -> None:
    if backend == "py_ecc":
        benchmark.extra_info["baseline"] = True
        benchmark.pedantic(fn, rounds=3, iterations=1, warmup_rounds=0)
    else:
        benchmark.pedantic(fn, rounds=fast_rounds, iterations=1, warmup_rounds=1)
    benchmark.extra_info["backend"] = backend


@pytest.mark.benchmark(group="zk-schnorr")
@pytest.mark.parametrize("backend", BACKENDS)
def test_schnorr_prove_verify(benchmark, backend: str) -> None:
    group = get_group(backend)
    x = group.random_scalar()
    relation = DLogRelation(group.mul_base(x))
    _run(benchmark, backend, lambda: relation.verify(relation.prove(x)), fast_rounds=500)


def _range(backend: str, lo: int, hi: int):
    params = PedersenParams(get_group(backend))
    commitment, opening = params.commit(42)
    relation = RangeRelation(params, commitment, lo, hi)
    return relation, opening


@pytest.mark.benchmark(group="zk-range-18-150-prove")
@pytest.mark.parametrize("backend", BACKENDS)
def test_range_18_150_prove(benchmark, backend: str) -> None:
    relation, opening = _range(backend, 18, 149)
    _run(benchmark, backend, lambda: relation.prove(opening))


@pytest.mark.benchmark(group="zk-range-18-150-verify")
@pytest.mark.parametrize("backend", BACKENDS)
def test_range_18_150_verify(benchmark, backend: str) -> None:
    relation, opening = _range(backend, 18, 149)
    proof = relation.prove(opening)
    _run(benchmark, backend, lambda: relation.verify(proof))


@pytest.mark.benchmark(group="zk-range64-verify")
@pytest.mark.parametrize("backend", BACKENDS)
def test_range64_verify(benchmark, backend: str) -> None:
    relation, opening = _range(backend, 0, (1 << 64) - 1)
    proof = relation.prove(opening)
    _run(benchmark, backend, lambda: relation.verify(proof), fast_rounds=20)


@pytest.mark.benchmark(group="zk-membership")
@pytest.mark.parametrize("backend", BACKENDS)
def test_membership_prove_verify(benchmark, backend: str) -> None:
    params = PedersenParams(get_group(backend))
    commitment, opening = params.commit(42)
    relation = MembershipRelation(params, commitment, [7, 42, 99, 1000])
    _run(benchmark, backend, lambda: relation.verify(relation.prove(opening)))


@pytest.mark.benchmark(group="zk-presentation-verify")
@pytest.mark.parametrize("backend", BACKENDS)
def test_presentation_verify(benchmark, backend: str) -> None:
    group = get_group(backend)
    issuer, holder = bench_credential(group, expires_at=2_000_000_000)
    nonce = b"\x01" * 32
    presentation = create_presentation(
        holder,
        list(PRESENTATION_PREDICATES),
        nonce=nonce,
        context="bench",
    )

    def verify() -> None:
        verify_presentation(
            presentation,
            trusted_issuers=[issuer.public_key],
            context="bench",
            now=1_000_000_000,
            expected_nonce=nonce,
        )

    _run(benchmark, backend, verify)


H2C_DST = b"PETS-BENCH-V01-CS01-with-secp256k1_XMD:SHA-256_SSWU_RO_"


@pytest.mark.benchmark(group="zk-hash-to-curve")
@pytest.mark.parametrize("implementation", ["python", "gmpy2"])
def test_hash_to_curve(benchmark, implementation: str) -> None:
    fn = h2c.hash_to_curve if implementation == "gmpy2" else h2c.hash_to_curve_reference
    messages = iter(range(1 << 30))

    def one() -> None:
        fn(next(messages).to_bytes(4, "big"), H2C_DST)

    if implementation == "python":
        benchmark.extra_info["baseline"] = True
        benchmark.pedantic(one, rounds=200, iterations=1, warmup_rounds=5)
    else:
        benchmark.pedantic(one, rounds=2000, iterations=1, warmup_rounds=20)
    benchmark.extra_info["implementation"] = implementation


@pytest.mark.benchmark(group="zk-pedersen-commit")
@pytest.mark.parametrize("value", [0, (1 << 64) - 1], ids=["v=0", "v=2^64-1"])
def test_pedersen_commit(benchmark, value: int) -> None:
    params = PedersenParams(get_group("coincurve"))
    if value == 0:
        benchmark.extra_info["baseline"] = True
    benchmark.pedantic(lambda: params.commit(value), rounds=2000, iterations=1, warmup_rounds=20)
