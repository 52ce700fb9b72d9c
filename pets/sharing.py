"""Additive secret sharing over Z_2^64 with seed-compressed helper shares.

The three roles are named after the protocol, as in libprio's VDAF
interface:

* :func:`shard` (data holder): split a ring vector ``x`` for ``K >= 2``
  servers. Helper ``i`` gets a fresh 32-byte seed ``s_i``; the leader gets
  ``x - sum_i PRG(s_i)``. Every strict subset of shares is uniformly random,
  so privacy holds as long as one server keeps its share to itself.
* :func:`aggregate` / :func:`aggregate_seeds` (each server): add shares in
  place, the leader its vectors, a helper the expansions of its seeds.
* :func:`unshard` (analyst): add the servers' aggregates to get the sum of
  all holders' vectors.

All arithmetic is numpy ``uint64`` with wrap-around, i.e. exact arithmetic
modulo 2^64. Bandwidth per holder is one vector plus 32 bytes per helper.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from pets.errors import InvalidInputError
from pets.prg import DEFAULT_ALGORITHM, PrgAlgorithm, expand, new_seed

MIN_SERVERS = 2


@dataclass(frozen=True)
class Shares:
    """The output of :func:`shard`: the leader's vector and one seed per helper."""

    leader: np.ndarray
    helper_seeds: tuple[bytes, ...]

    def __repr__(self) -> str:  # never print shares or seeds
        return f"Shares(length={self.leader.shape[0]}, helpers={len(self.helper_seeds)})"


def _ring_vector(x: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype != np.uint64 or arr.ndim != 1:
        raise InvalidInputError(f"{what} must be a one-dimensional uint64 array")
    return arr


def shard(
    x: np.ndarray,
    servers: int = 2,
    *,
    seeds: Sequence[bytes] | None = None,
    algorithm: PrgAlgorithm | str = DEFAULT_ALGORITHM,
) -> Shares:
    """Split ring vector ``x`` into shares for ``servers`` servers (leader first).

    ``seeds`` injects the helpers' seeds for known-answer tests; by default
    they come from ``os.urandom``. ``x`` is not modified.
    """
    x = _ring_vector(x, "input vector")
    if servers < MIN_SERVERS:
        raise InvalidInputError(f"need at least {MIN_SERVERS} servers, got {servers}")
    if seeds is None:
        seeds = [new_seed() for _ in range(servers - 1)]
    elif len(seeds) != servers - 1:
        raise InvalidInputError(f"need {servers - 1} helper seeds, got {len(seeds)}")
    n = x.shape[0]
    leader = expand(seeds[0], n, algorithm=algorithm)
    np.subtract(x, leader, out=leader)
    if len(seeds) > 1:
        mask = np.empty(n, dtype=np.uint64)
        for seed in seeds[1:]:
            np.subtract(leader, expand(seed, n, mask, algorithm=algorithm), out=leader)
    return Shares(leader=leader, helper_seeds=tuple(bytes(s) for s in seeds))


def expand_share(
    seed: bytes, length: int, *, algorithm: PrgAlgorithm | str = DEFAULT_ALGORITHM
) -> np.ndarray:
    """A helper's share vector: the expansion of its seed."""
    return expand(seed, length, algorithm=algorithm)


def aggregate(accumulator: np.ndarray, share: np.ndarray) -> np.ndarray:
    """Add ``share`` into ``accumulator`` in place (mod 2^64) and return it."""
    acc = _ring_vector(accumulator, "accumulator")
    share = _ring_vector(share, "share")
    if share.shape != acc.shape:
        raise InvalidInputError(
            f"share has length {share.shape[0]}, the aggregate has {acc.shape[0]}"
        )
    np.add(acc, share, out=acc)
    return acc


def aggregate_seeds(
    seeds: Iterable[bytes],
    length: int,
    out: np.ndarray | None = None,
    *,
    sign: int = 1,
    algorithm: PrgAlgorithm | str = DEFAULT_ALGORITHM,
) -> np.ndarray:
    """Add (``sign=1``) or subtract (``sign=-1``) the expansions of ``seeds``.

    Works in place on ``out`` (zeros when omitted) with a single scratch
    buffer, so memory is two vectors whatever the number of seeds.
    """
    if sign not in (1, -1):
        raise InvalidInputError("sign must be 1 or -1")
    acc = np.zeros(length, dtype=np.uint64) if out is None else _ring_vector(out, "accumulator")
    if acc.shape != (length,):
        raise InvalidInputError(f"accumulator must have length {length}")
    scratch = np.empty(length, dtype=np.uint64)
    op = np.add if sign == 1 else np.subtract
    for seed in seeds:
        op(acc, expand(seed, length, scratch, algorithm=algorithm), out=acc)
    return acc


def unshard(aggregates: Sequence[np.ndarray]) -> np.ndarray:
    """Combine the servers' aggregate shares into the sum of all inputs."""
    if len(aggregates) < MIN_SERVERS:
        raise InvalidInputError(
            f"need the aggregates of all servers (at least {MIN_SERVERS}), got {len(aggregates)}"
        )
    first = _ring_vector(aggregates[0], "aggregate")
    total = first.copy()
    for agg in aggregates[1:]:
        aggregate(total, agg)
    return total
