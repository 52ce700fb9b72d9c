"""pets.devtools.bench_zk.quick returns every metric, quickly."""

from __future__ import annotations

import time

from pets.devtools.bench_zk import quick

KEYS = {
    "schnorr_prove_verify_ms",
    "range_18_150_prove_ms",
    "range_18_150_verify_ms",
    "range64_verify_ms",
    "presentation_3_predicates_verify_ms",
    "zk_fast_vs_reference_speedup",
}


def test_quick_metrics() -> None:
    start = time.perf_counter()
    metrics = quick()
    assert time.perf_counter() - start < 20
    assert set(metrics) == KEYS
    assert all(isinstance(v, float) and v > 0 for v in metrics.values())
    assert metrics["zk_fast_vs_reference_speedup"] > 1
