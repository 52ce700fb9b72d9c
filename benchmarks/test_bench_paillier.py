"""Paillier benchmarks at d = 10^4 values: naive phe against packed pets.paillier.

Both sides run in the same session on one 2048-bit key. Layout: values in
``[0, 2^20)``, ``max_holders = 1000`` (30-bit slots, 66 slots per plaintext,
152 plaintexts for 10^4 values).

Naive phe (one ``EncryptedNumber`` per value via ``public_key.encrypt(int)``,
and ``private_key.decrypt`` per value) costs about 10 ms per value, so a full
10^4-value run would take minutes per round. Those baseline cases are timed on
a subset of :data:`PHE_SUBSET` values instead; their cost does not depend on
the value, so it scales linearly. Each such case records
``extra_info["elements"] = PHE_SUBSET``, ``scaled_from`` and
``extrapolated_d_s`` (the subset time times ``D / PHE_SUBSET``); the report
(``benchmarks/report.py``) sees the differing element counts and compares time
per element, so its ratio is per value.

Groups: ``paillier-encrypt`` (naive, packed serial, packed with a precomputed
pool (online part only: the pool is filled in an untimed setup), packed over
a 2-process pool), ``paillier-decrypt`` (per value vs packed CRT), and
``paillier-aggregate`` (the leader's work per holder: add 10^4 phe
``EncryptedNumber`` pairs vs fold 152 packed ciphertexts from 1 MB chunks).
"""

from __future__ import annotations

import multiprocessing
import secrets
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import phe
import pytest

from pets.paillier import (
    Accumulator,
    PackingLayout,
    RandomnessPool,
    ciphertexts_to_bytes,
    decrypt_vector,
    encrypt_vector,
    generate_keypair,
)

D = 10_000
PHE_SUBSET = 100
ROUNDS = 3
CHUNK = 1 << 20


@pytest.fixture(scope="module")
def setup() -> dict:
    pub, priv = generate_keypair(2048)
    layout = PackingLayout.for_key(pub, lo=0, hi=2**20 - 1, max_holders=1000, length=D)
    values = np.random.default_rng(0).integers(0, 2**20, D, dtype=np.int64)
    return {"pub": pub, "priv": priv, "layout": layout, "values": values}


@pytest.fixture(scope="module")
def executor() -> Iterator[ProcessPoolExecutor]:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["pets.paillier.encryption"])
    with ProcessPoolExecutor(max_workers=2, mp_context=ctx) as ex:
        ex.submit(int, 0).result()  # start the workers outside the timing
        yield ex


def _subset_info(benchmark) -> None:
    benchmark.extra_info.update(
        baseline=True,
        elements=PHE_SUBSET,
        scaled_from=PHE_SUBSET,
        scale_factor=D / PHE_SUBSET,
    )


def _extrapolate(benchmark) -> None:
    benchmark.extra_info["extrapolated_d_s"] = benchmark.stats.stats.mean * D / PHE_SUBSET


@pytest.mark.benchmark(group="paillier-encrypt")
def test_encrypt_phe_naive(benchmark, setup) -> None:
    pub = setup["pub"]
    subset = [int(v) for v in setup["values"][:PHE_SUBSET]]
    _subset_info(benchmark)
    out = benchmark.pedantic(lambda: [pub.encrypt(v) for v in subset], rounds=ROUNDS)
    _extrapolate(benchmark)
    assert len(out) == PHE_SUBSET


@pytest.mark.benchmark(group="paillier-encrypt")
def test_encrypt_packed(benchmark, setup) -> None:
    benchmark.extra_info["elements"] = D
    out = benchmark.pedantic(
        encrypt_vector,
        args=(setup["pub"], setup["layout"], setup["values"]),
        kwargs={"processes": 1},
        rounds=ROUNDS,
    )
    assert len(out) == setup["layout"].num_plaintexts


@pytest.mark.benchmark(group="paillier-encrypt")
def test_encrypt_packed_pool_online(benchmark, setup) -> None:
    pub, layout, values = setup["pub"], setup["layout"], setup["values"]
    benchmark.extra_info.update(elements=D, note="online part only; pool filled in setup")

    def fresh_pool():
        return (pub, layout, values), {"pool": RandomnessPool(pub, layout.num_plaintexts)}

    out = benchmark.pedantic(encrypt_vector, setup=fresh_pool, rounds=ROUNDS)
    assert len(out) == layout.num_plaintexts


@pytest.mark.benchmark(group="paillier-encrypt")
def test_encrypt_packed_processes(benchmark, setup, executor) -> None:
    benchmark.extra_info.update(elements=D, note="2 worker processes, started beforehand")
    out = benchmark.pedantic(
        encrypt_vector,
        args=(setup["pub"], setup["layout"], setup["values"]),
        kwargs={"executor": executor},
        rounds=ROUNDS,
    )
    assert len(out) == setup["layout"].num_plaintexts


@pytest.mark.benchmark(group="paillier-decrypt")
def test_decrypt_phe_naive(benchmark, setup) -> None:
    pub, priv = setup["pub"], setup["priv"]
    encrypted = [pub.encrypt(int(v)) for v in setup["values"][:PHE_SUBSET]]
    _subset_info(benchmark)
    out = benchmark.pedantic(lambda: [priv.decrypt(e) for e in encrypted], rounds=ROUNDS)
    _extrapolate(benchmark)
    assert out == setup["values"][:PHE_SUBSET].tolist()


@pytest.mark.benchmark(group="paillier-decrypt")
def test_decrypt_packed(benchmark, setup, executor) -> None:
    pub, priv, layout = setup["pub"], setup["priv"], setup["layout"]
    cts = encrypt_vector(pub, layout, setup["values"], executor=executor)
    benchmark.extra_info["elements"] = D
    out = benchmark.pedantic(decrypt_vector, args=(priv, layout, cts, 1), rounds=ROUNDS)
    assert out == setup["values"].tolist()


def _random_units(pub: phe.PaillierPublicKey, count: int) -> list[int]:
    # Timing only: random units mod n^2 cost the same to multiply as real ciphertexts.
    return [secrets.randbelow(pub.nsquare - 2) + 2 for _ in range(count)]


@pytest.mark.benchmark(group="paillier-aggregate")
def test_aggregate_phe_naive(benchmark, setup) -> None:
    pub = setup["pub"]
    running = [phe.EncryptedNumber(pub, c) for c in _random_units(pub, D)]
    incoming = [phe.EncryptedNumber(pub, c) for c in _random_units(pub, D)]
    benchmark.extra_info.update(baseline=True, elements=D)
    out = benchmark.pedantic(
        lambda: [a + b for a, b in zip(running, incoming, strict=True)], rounds=ROUNDS
    )
    assert len(out) == D


@pytest.mark.benchmark(group="paillier-aggregate")
def test_aggregate_packed_stream(benchmark, setup, executor) -> None:
    pub, layout = setup["pub"], setup["layout"]
    wire = ciphertexts_to_bytes(
        pub, encrypt_vector(pub, layout, setup["values"], executor=executor)
    )
    acc = Accumulator(pub, layout.num_plaintexts)
    acc.add(encrypt_vector(pub, layout, setup["values"], executor=executor))

    def fold_one_holder() -> None:
        contribution = acc.begin()
        for i in range(0, len(wire), CHUNK):
            contribution.feed(wire[i : i + CHUNK])
        acc.add(contribution)

    benchmark.extra_info["elements"] = D
    benchmark.pedantic(fold_one_holder, rounds=ROUNDS * 5)
    assert acc.contributors == 1 + ROUNDS * 5
