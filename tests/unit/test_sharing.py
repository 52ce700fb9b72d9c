"""Additive sharing: known-answer vectors, rejections, and the unshard property."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pets import encoding, sharing
from tests.vectors.loader import cases, load, rejected

VECTORS = load("sharing.json")


def _u64(values: list[str]) -> np.ndarray:
    return np.array([int(v) for v in values], dtype=np.uint64)


@pytest.mark.parametrize("case", cases(VECTORS.accept))
def test_known_answer_shards(case: dict) -> None:
    x = encoding.to_ring(np.array([int(v) for v in case["input"]], dtype=np.int64))
    seeds = [bytes.fromhex(s) for s in case["helper_seeds"]]
    shares = sharing.shard(x, case["servers"], seeds=seeds, algorithm=case["algorithm"])
    assert np.array_equal(shares.leader, _u64(case["leader_share"]))
    for seed, expected in zip(seeds, case["helper_shares"], strict=True):
        got = sharing.expand_share(seed, len(x), algorithm=case["algorithm"])
        assert np.array_equal(got, _u64(expected))
    helper = [_u64(h) for h in case["helper_shares"]]
    assert np.array_equal(sharing.unshard([_u64(case["leader_share"]), *helper]), x)


@pytest.mark.parametrize("case", cases(VECTORS.reject))
def test_rejected_vectors(case: dict) -> None:
    with rejected(case):
        if case["step"] == "shard":
            seeds = [bytes.fromhex(s) for s in case["helper_seeds"]]
            sharing.shard(_u64(case["input"]), case["servers"], seeds=seeds)
        elif case["step"] == "aggregate":
            sharing.aggregate(_u64(case["accumulator"]), _u64(case["share"]))
        else:
            sharing.unshard([_u64(a) for a in case["aggregates"]])


def test_shard_does_not_modify_input() -> None:
    x = np.arange(10, dtype=np.uint64)
    sharing.shard(x, 3)
    assert np.array_equal(x, np.arange(10, dtype=np.uint64))


def test_leader_share_alone_reveals_nothing_obvious() -> None:
    """The leader's share of a constant vector is not that constant."""
    x = np.full(256, 5, dtype=np.uint64)
    leader = sharing.shard(x, 2).leader
    assert len(np.unique(leader)) > 250


def test_repr_hides_shares() -> None:
    shares = sharing.shard(np.arange(3, dtype=np.uint64), 2)
    assert repr(shares) == "Shares(length=3, helpers=1)"


def test_aggregate_seeds_adds_and_subtracts() -> None:
    seeds = [bytes([i]) * 32 for i in range(4)]
    total = sharing.aggregate_seeds(seeds, 50)
    sharing.aggregate_seeds(seeds[2:], 50, total, sign=-1)
    assert np.array_equal(total, sharing.aggregate_seeds(seeds[:2], 50))


int64s = st.integers(-(2**63), 2**63 - 1)


@settings(max_examples=60, deadline=None)
@given(
    servers=st.integers(2, 5),
    length=st.integers(0, 40),
    holders=st.integers(1, 6),
    data=st.data(),
)
def test_unshard_of_aggregates_is_plain_sum(
    servers: int, length: int, holders: int, data: st.DataObject
) -> None:
    """For any K, length and values: unshard(aggregate(shards)) == sum mod 2^64."""
    vectors = [
        np.array(data.draw(st.lists(int64s, min_size=length, max_size=length)), dtype=np.int64)
        for _ in range(holders)
    ]
    leader = np.zeros(length, dtype=np.uint64)
    helper_seeds: list[list[bytes]] = [[] for _ in range(servers - 1)]
    for v in vectors:
        shares = sharing.shard(encoding.to_ring(v), servers)
        sharing.aggregate(leader, shares.leader)
        for i, seed in enumerate(shares.helper_seeds):
            helper_seeds[i].append(seed)
    helpers = [sharing.aggregate_seeds(seeds, length) for seeds in helper_seeds]
    total = sharing.unshard([leader, *helpers])
    expected = [sum(int(v[j]) for v in vectors) % 2**64 for j in range(length)]
    assert [int(t) for t in total] == expected
