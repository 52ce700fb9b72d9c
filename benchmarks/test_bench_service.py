"""Service benchmarks over real processes on loopback: secure vs clear, and scaling.

Every case runs a real leader and helper (``python -m pets serve``, mutual
TLS, SQLite) started by :class:`pets.devtools.bench_service.ServiceRig`; holders are
``HolderClient`` objects, each with its own certificate, driven concurrently
by asyncio in this process. Each timed call is one fresh query; submitting it
and learning its announcement happen in the untimed ``setup`` of
``benchmark.pedantic``. Channels are connected by the warm-up round.

Group ``service-e2e`` (10 holders x 10^6 values, same session, same holders)
    ``test_e2e_clear`` (baseline): the 10 vectors streamed in the clear
    (~1 MB chunks, mutual TLS, same server options) to a plaintext sink
    process that adds them into a numpy sum; the analyst fetches the sum and
    decodes it. ``test_e2e_secure``: first holder starts contributing (shard,
    seal and sign the helper's seed, masked vector and sealed seed to the
    leader, durable ack) → the analyst holds the decoded sum (leader closes
    after the 10th contribution, helper finalises, the analyst fetches both
    shares, adds, decodes). See :mod:`pets.devtools.bench_service` for exactly what
    is timed. The two cases run one after the other, so their ratio here
    moves more between runs than the quick metric's, whose rounds are
    interleaved.

Group ``service-contributions`` (200 holders, each its own certificate, one
small contribution each to a fresh ``count() from hospitals`` query)
    ``test_contributions[stream]``: every holder sends its contribution as one
    message on its persistent ``ContributeStream`` (a node's default);
    ``test_contributions[unary]``: as one ``ContributeOne`` call. Timed: first
    holder starts (shard, seal and sign the helper's seed) → last durable
    acknowledgement. The holders run on this process's one event loop, so
    unlike ``contributions_per_s`` (two client processes) the client side is
    one Python thread here. Closing and finalising the previous round happen
    in the untimed ``setup``.

Scaling (``extra_info["scaling"]``, one chart per series in the report)
    ``service-scaling-holders``: 10, 100, 1000 holders at d = 10^3.
    ``service-scaling-length``: d = 10^3 ... 10^7 with 4 holders.
    Timed: first holder starts contributing → the analyst holds the summed
    ring vector (both shares fetched and added; decoding into Python floats
    is left out, it is the analyst library's cost and would dominate at
    10^7). ``rss_mb`` is the leader's peak RSS (``VmHWM``, reset before the
    case) over the case's rounds; the helper's and the RSS before the case
    are in the same dict. Each series has its own deployment, so retained
    state from other cases does not blur the memory numbers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import numpy as np
import pytest

from pets.devtools.bench_service import (
    E2E_HOLDERS,
    E2E_LENGTH,
    RATE_HOLDERS,
    SMALL_DATASET,
    Round,
    ServiceRig,
    dataset_name,
    holder_vector,
    random_vectors,
)
from pets.query import Query
from pets.query import compile as compile_query

HOLDER_COUNTS = (10, 100, 1000)
HOLDERS_SERIES_LENGTH = 1000
LENGTHS = (10**3, 10**4, 10**5, 10**6, 10**7)
LENGTH_SERIES_HOLDERS = 4
SERVERS = ("leader", "helper-1")


def _rig(
    tmp_path_factory: pytest.TempPathFactory, name: str, lengths: tuple[int, ...]
) -> ServiceRig:
    return ServiceRig(tmp_path_factory.mktemp(name), lengths=lengths).start()


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    rig = _rig(tmp_path_factory, "e2e", (E2E_LENGTH,))
    try:
        clients = rig.holders(E2E_HOLDERS, prefix="e2e")
        vectors = random_vectors(E2E_HOLDERS, E2E_LENGTH)
        yield {
            "rig": rig,
            "clients": clients,
            "clear": rig.clear_holders(clients),
            "vectors": vectors,
            "expected": np.sum(vectors, axis=0),
            "dataset": dataset_name(E2E_LENGTH),
        }
    finally:
        rig.close()


@pytest.fixture(scope="module")
def holders_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceRig]:
    rig = _rig(tmp_path_factory, "scale-holders", (HOLDERS_SERIES_LENGTH,))
    yield rig
    rig.close()


@pytest.fixture(scope="module")
def length_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceRig]:
    rig = _rig(tmp_path_factory, "scale-length", LENGTHS)
    yield rig
    rig.close()


def _check(result, expected: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    got = np.asarray(result.rows[0]["vector"])
    assert np.array_equal(got, expected)


# --------------------------------------------------------------------------- e2e


@pytest.mark.benchmark(group="service-e2e")
def test_e2e_clear(benchmark, e2e) -> None:
    rig: ServiceRig = e2e["rig"]
    plan = compile_query(Query.parse(f"vector_sum() from {e2e['dataset']}"), rig.cluster.schema)
    benchmark.extra_info.update(
        baseline=True, elements=E2E_HOLDERS * E2E_LENGTH, holders=E2E_HOLDERS
    )
    result = benchmark.pedantic(
        lambda: rig.run(rig.clear_sum(plan, e2e["clear"], e2e["vectors"])),
        rounds=5,
        warmup_rounds=1,
    )
    _check(result, e2e["expected"])


@pytest.mark.benchmark(group="service-e2e")
def test_e2e_secure(benchmark, e2e) -> None:
    rig: ServiceRig = e2e["rig"]
    clients = e2e["clients"]

    def setup():  # type: ignore[no-untyped-def]
        rnd = rig.run(
            rig.open_round(e2e["dataset"], close_after=len(clients), announcer=clients[0])
        )
        return (rnd,), {}

    benchmark.extra_info.update(elements=E2E_HOLDERS * E2E_LENGTH, holders=E2E_HOLDERS)
    result = benchmark.pedantic(
        lambda rnd: rig.run(rig.secure_sum(rnd, clients, e2e["vectors"])),
        setup=setup,
        rounds=5,
        warmup_rounds=1,
    )
    _check(result, e2e["expected"])
    benchmark.extra_info["leader_hwm_mb"] = rig.memory("leader").hwm_mb


# --------------------------------------------------------------------------- contributions


@pytest.fixture(scope="module")
def contributions_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    rig = _rig(tmp_path_factory, "contributions", (1,))
    try:
        clients = rig.holders(RATE_HOLDERS, prefix="rate")
        yield {"rig": rig, "clients": clients, "open": []}
    finally:
        rig.close()


@pytest.mark.benchmark(group="service-contributions")
@pytest.mark.parametrize("path", ["stream", "unary"])
def test_contributions(benchmark, contributions_rig, path: str) -> None:
    rig: ServiceRig = contributions_rig["rig"]
    clients = contributions_rig["clients"]
    opened: list[Round] = contributions_rig["open"]
    for c in clients:
        c.use_stream = path == "stream"
    ones = np.ones(1, dtype=np.uint64)

    def setup():  # type: ignore[no-untyped-def]
        while opened:  # the previous round: closed and finalised, untimed
            rig.run(rig.finish_round(opened.pop(), close=True))
        rnd = rig.run(rig.open_round(SMALL_DATASET, announcer=clients[0]))
        opened.append(rnd)
        return (rnd,), {}

    async def contribute(rnd: Round) -> int:
        acks = await asyncio.gather(
            *(c.contribute_additive(rnd.announcement, ones) for c in clients)
        )
        return sum(a.newly_accepted for a in acks)

    accepted = benchmark.pedantic(
        lambda rnd: rig.run(contribute(rnd)), setup=setup, rounds=5, warmup_rounds=1
    )
    assert accepted == len(clients)
    benchmark.extra_info.update(
        holders=len(clients),
        path=path,
        contributions_per_s=round(len(clients) / benchmark.stats.stats.mean),
    )


# --------------------------------------------------------------------------- scaling


def _scaling_case(
    benchmark,
    rig: ServiceRig,
    *,
    holders: int,
    length: int,
    rounds: int,
    series: str,
    x: int,
    x_label: str,
    prefix: str,
) -> None:  # type: ignore[no-untyped-def]
    clients = rig.holders(holders, prefix=prefix)
    vectors = [holder_vector(i, length) for i in range(holders)]
    expected = np.full(length, sum(int(v[0]) for v in vectors), dtype=np.uint64)
    dataset = dataset_name(length)
    before = {name: rig.memory(name).rss_mb for name in SERVERS}
    for name in SERVERS:
        rig.reset_peak(name)

    def setup():  # type: ignore[no-untyped-def]
        rnd = rig.run(rig.open_round(dataset, close_after=holders, announcer=clients[0]))
        return (rnd,), {}

    total = benchmark.pedantic(
        lambda rnd: rig.run(rig.secure_total(rnd, clients, vectors)),
        setup=setup,
        rounds=rounds,
        warmup_rounds=1,
    )
    assert np.array_equal(total, expected)
    peak = {name: rig.memory(name).hwm_mb for name in SERVERS}
    benchmark.extra_info.update(
        elements=holders * length,
        holders=holders,
        vector_length=length,
        scaling={
            "series": series,
            "x": x,
            "x_label": x_label,
            "rss_mb": round(peak["leader"], 1),
            "rss_label": "leader peak RSS",
            "helper_rss_mb": round(peak["helper-1"], 1),
            "leader_rss_before_mb": round(before["leader"], 1),
            "helper_rss_before_mb": round(before["helper-1"], 1),
            "payload_mb_per_holder": length * 8 / 1e6,
        },
    )
    # Close the deployment's holder channels of this case before the next one.
    rig.run(_close(clients))


async def _close(clients) -> None:  # type: ignore[no-untyped-def]
    for c in clients:
        await c.close()


@pytest.mark.benchmark(group="service-scaling-holders")
@pytest.mark.parametrize("holders", HOLDER_COUNTS)
def test_scaling_holders(benchmark, holders_rig, holders: int) -> None:
    _scaling_case(
        benchmark,
        holders_rig,
        holders=holders,
        length=HOLDERS_SERIES_LENGTH,
        rounds=3 if holders < 1000 else 2,
        series=f"holders (d={HOLDERS_SERIES_LENGTH})",
        x=holders,
        x_label="holders",
        prefix=f"h{holders}",
    )


@pytest.mark.benchmark(group="service-scaling-length")
@pytest.mark.parametrize("length", LENGTHS)
def test_scaling_length(benchmark, length_rig, length: int) -> None:
    _scaling_case(
        benchmark,
        length_rig,
        holders=LENGTH_SERIES_HOLDERS,
        length=length,
        rounds=3 if length < 10**7 else 1,
        series=f"vector length ({LENGTH_SERIES_HOLDERS} holders)",
        x=length,
        x_label="values per vector",
        prefix=f"d{length}",
    )
