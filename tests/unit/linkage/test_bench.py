"""The linkage quick-bench functions run and report what they promise (small sizes, no timing)."""

from __future__ import annotations

from pets.devtools import bench_linkage


def test_per_record_metrics_are_reported() -> None:
    metrics = bench_linkage.per_record(n=20)
    assert set(metrics) >= {
        "linkage_per_record_us_holder",
        "linkage_per_record_us_server",
        "linkage_per_record_us_server_verified",
        "linkage_per_record_us_holder_verify",
        "linkage_h2c_us",
        "linkage_scalar_mul_us",
        "linkage_scalar_mul_variable_us",
        "linkage_point_decode_us",
    }
    assert all(value > 0 for value in metrics.values())


def test_core_and_join_run_on_small_inputs() -> None:
    assert bench_linkage.core_seconds(40) > 0
    assert bench_linkage.core_seconds(40, workers=2) > 0
    assert bench_linkage.core_seconds_processes(40) > 0
    assert bench_linkage.join_seconds(100) > 0
