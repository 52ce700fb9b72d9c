"""pets.devtools.bench_vdaf: the metric functions run and return positive numbers (no timing)."""

from __future__ import annotations

import math

from pets.devtools import bench_vdaf
from pets.vdaf import prio3_count


def test_shard_and_verify_ms_is_positive() -> None:
    shard_ms, verify_ms = bench_vdaf.shard_and_verify_ms(prio3_count(2), 1, repeat=1)
    assert math.isfinite(shard_ms) and shard_ms > 0
    assert math.isfinite(verify_ms) and verify_ms > 0


def test_batch_reports_per_s_is_positive() -> None:
    rate = bench_vdaf.batch_reports_per_s(workers=1, n=10, repeat=1)
    assert math.isfinite(rate) and rate > 0
