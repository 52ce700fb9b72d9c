"""Quick metrics for PRG expansion, sharding and aggregation at d = 10^6."""

from __future__ import annotations

import numpy as np

from pets import prg, sharing
from pets.devtools.bench import best_time

D = 1_000_000


def quick(d: int = D) -> dict[str, float]:
    """``shard_elements_per_s`` and ``aggregate_vs_npadd_ratio`` (plus context)."""
    x = np.arange(d, dtype=np.uint64)
    seed = prg.new_seed()
    buf = np.empty(d, dtype=np.uint64)
    acc = np.zeros(d, dtype=np.uint64)
    share = sharing.shard(x, 2).leader

    t_prg = best_time(lambda: prg.expand(seed, d, buf), repeat=9)
    t_shard = best_time(lambda: sharing.shard(x, 2), repeat=9)
    t_shard3 = best_time(lambda: sharing.shard(x, 3), repeat=5)
    # Interleave the two paths so drift in machine load hits both alike.
    t_agg, t_add = float("inf"), float("inf")
    for _ in range(5):
        t_agg = min(t_agg, best_time(lambda: sharing.aggregate(acc, share), repeat=5))
        t_add = min(t_add, best_time(lambda: np.add(acc, share, out=acc), repeat=5))
    t_copy = best_time(lambda: np.copyto(buf, x), repeat=9)
    return {
        "prg_elements_per_s": d / t_prg,
        "shard_elements_per_s": d / t_shard,
        "shard_3_servers_elements_per_s": d / t_shard3,
        "shard_vs_copy_ratio": t_shard / t_copy,
        "aggregate_elements_per_s": d / t_agg,
        "aggregate_vs_npadd_ratio": t_agg / t_add,
    }
