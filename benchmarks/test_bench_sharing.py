"""Additive-sharing benchmarks at d = 10^6 ring values (8 MB), each against a plain numpy baseline.

Groups (the baseline case carries ``extra_info["baseline"] = True``; every case
records ``extra_info["elements"]``, the ring values it processes per call, so
the report shows elements/s):

``sharing-prg``
    PRG expansion of one seed into a preallocated buffer (AES-256-CTR, ChaCha20)
    vs ``np.copyto`` of a vector of the same size into the same buffer: how far
    the keystream is from memory bandwidth.
``sharing-shard``
    :func:`pets.sharing.shard` for K = 2 and K = 3 servers (seed draw, PRG
    expansion, subtraction, one fresh output vector) vs ``x.copy()`` (one fresh
    vector of the same size). The holder's cost per contribution.
``sharing-aggregate``
    :func:`pets.sharing.aggregate` (validation + in-place add) vs bare
    ``np.add(acc, share, out=acc)``: the leader's cost per contribution.
``sharing-aggregate-seeds``
    :func:`pets.sharing.aggregate_seeds` over :data:`SEEDS` seeds (a helper's
    finalisation) vs expanding the same seeds into one scratch buffer without
    adding: what the additions cost on top of the PRG. Elements = SEEDS * d.

Inputs are made outside the timed calls; values come from a seeded numpy
generator (benchmark data, not secrets); seeds from :func:`pets.prg.new_seed`.
"""

from __future__ import annotations

import numpy as np
import pytest

from pets import prg, sharing

D = 1_000_000
SEEDS = 10
ROUNDS = 20


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "x": rng.integers(0, 2**63, D, dtype=np.uint64),
        "share": rng.integers(0, 2**63, D, dtype=np.uint64),
        "buf": np.empty(D, dtype=np.uint64),
        "acc": np.zeros(D, dtype=np.uint64),
    }


def _run(benchmark, fn, *, elements: int = D, baseline: bool = False, rounds: int = ROUNDS):  # type: ignore[no-untyped-def]
    benchmark.extra_info["elements"] = elements
    if baseline:
        benchmark.extra_info["baseline"] = True
    return benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=2)


# --------------------------------------------------------------------------- PRG


@pytest.mark.benchmark(group="sharing-prg")
def test_prg_copy_baseline(benchmark, data) -> None:
    out = _run(benchmark, lambda: np.copyto(data["buf"], data["x"]), baseline=True)
    assert out is None


@pytest.mark.benchmark(group="sharing-prg")
@pytest.mark.parametrize("algorithm", [a.value for a in prg.PrgAlgorithm])
def test_prg_expand(benchmark, data, algorithm: str) -> None:
    seed = prg.new_seed()
    benchmark.extra_info["algorithm"] = algorithm
    out = _run(benchmark, lambda: prg.expand(seed, D, data["buf"], algorithm=algorithm))
    assert out is data["buf"]


# --------------------------------------------------------------------------- shard


@pytest.mark.benchmark(group="sharing-shard")
def test_shard_copy_baseline(benchmark, data) -> None:
    out = _run(benchmark, data["x"].copy, baseline=True)
    assert out.shape == (D,)


@pytest.mark.benchmark(group="sharing-shard")
@pytest.mark.parametrize("servers", [2, 3])
def test_shard(benchmark, data, servers: int) -> None:
    benchmark.extra_info["servers"] = servers
    out = _run(benchmark, lambda: sharing.shard(data["x"], servers))
    assert len(out.helper_seeds) == servers - 1


# --------------------------------------------------------------------------- aggregate


@pytest.mark.benchmark(group="sharing-aggregate")
def test_aggregate_npadd_baseline(benchmark, data) -> None:
    acc, share = data["acc"], data["share"]
    out = _run(benchmark, lambda: np.add(acc, share, out=acc), baseline=True, rounds=50)
    assert out is acc


@pytest.mark.benchmark(group="sharing-aggregate")
def test_aggregate(benchmark, data) -> None:
    acc, share = data["acc"], data["share"]
    out = _run(benchmark, lambda: sharing.aggregate(acc, share), rounds=50)
    assert out is acc


# --------------------------------------------------------------------------- aggregate_seeds


@pytest.mark.benchmark(group="sharing-aggregate-seeds")
def test_aggregate_seeds_expand_only_baseline(benchmark, data) -> None:
    seeds = [prg.new_seed() for _ in range(SEEDS)]
    buf = data["buf"]

    def expand_all() -> None:
        for s in seeds:
            prg.expand(s, D, buf)

    benchmark.extra_info["seeds"] = SEEDS
    _run(benchmark, expand_all, elements=SEEDS * D, baseline=True, rounds=5)


@pytest.mark.benchmark(group="sharing-aggregate-seeds")
@pytest.mark.parametrize("algorithm", [a.value for a in prg.PrgAlgorithm])
def test_aggregate_seeds(benchmark, algorithm: str) -> None:
    seeds = [prg.new_seed() for _ in range(SEEDS)]
    benchmark.extra_info.update(seeds=SEEDS, algorithm=algorithm)
    out = _run(
        benchmark,
        lambda: sharing.aggregate_seeds(seeds, D, algorithm=algorithm),
        elements=SEEDS * D,
        rounds=5,
    )
    expected = np.zeros(D, dtype=np.uint64)
    for s in seeds:
        np.add(expected, prg.expand(s, D, algorithm=algorithm), out=expected)
    assert np.array_equal(out, expected)
