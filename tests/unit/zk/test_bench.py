"""pets.devtools.bench_zk.quick returns every metric (speed itself is for benchmarks/)."""

from __future__ import annotations

from pets.devtools.bench_zk import quick

KEYS = {
    "schnorr_prove_verify_ms",
    "range_18_150_prove_ms",
    "range_18_150_verify_ms",
    "range64_verify_ms",
    "presentation_3_predicates_verify_ms",
    "zk_fast_vs_reference_speedup",
    "hash_to_curve_us",
    "hash_to_curve_reference_us",
}


def test_quick_metrics() -> None:
    metrics = quick()
    assert set(metrics) == KEYS
    assert all(isinstance(v, float) and v > 0 for v in metrics.values())
