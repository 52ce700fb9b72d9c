"""``pets bench --quick --json``: the output contract and the suite list, not the speed.

Runs the real command in a subprocess for cheap suites (sharing, dp: a few
seconds) and checks that stdout is exactly one JSON object whose ``metrics``
hold each suite's headline keys as positive finite numbers. The whole quick
run (every suite, about 35 s on 2 cores) is ``@pytest.mark.slow``. No timing
thresholds: speed targets live in ``benchmarks/``.
"""

from __future__ import annotations

import importlib
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

import pets.devtools
from pets.devtools.bench import SUITES

# Headline metrics a suite must report (a suite may report more; a suite not listed
# here, e.g. one that reports nothing where its service is not installed, is only run).
HEADLINE: dict[str, set[str]] = {
    "sharing": {"shard_elements_per_s", "aggregate_vs_npadd_ratio"},
    "service": {
        "e2e_secure_vs_clear_ratio",
        "e2e_secure_vs_clear_ratio_ci95_lo",
        "e2e_secure_vs_clear_ratio_ci95_hi",
        "e2e_dp_overhead_ratio",
        "e2e_dp_overhead_ratio_ci95_lo",
        "e2e_dp_overhead_ratio_ci95_hi",
        "contributions_per_s",
        "contributions_per_s_stream",
        "contributions_per_s_unary",
    },
    "paillier": {"paillier_packed_encrypt_values_per_s", "paillier_packed_vs_phe_speedup"},
    "zk": {
        "schnorr_prove_verify_ms",
        "presentation_3_predicates_verify_ms",
        "hash_to_curve_us",
        "hash_to_curve_reference_us",
    },
    "sources": {"holder_eval_rows_per_s_parquet", "holder_eval_vs_duckdb_ratio_parquet"},
    "vdaf": {
        "prio3_count_shard_verify_ms",
        "prio3_histogram100_verify_ms",
        "prio3_histogram100_batch_verify_reports_per_s",
    },
    "prio3_service": {"prio3_contributions_per_s", "prio3_vs_additive_e2e_ratio"},
    "dp": {"dp_gaussian_10k_slots_ms", "dp_laplace_10k_slots_ms", "dp_add_noise_ring_10k_ms"},
    "linkage": {
        "linkage_per_record_us_holder",
        "linkage_per_record_us_server",
        "linkage_core_10k_seconds",
        "linkage_core_10k_seconds_2_processes",
    },
}


def _quick_json(*suites: str) -> dict[str, float]:
    argv = [sys.executable, "-m", "pets", "bench", "--quick", "--json"]
    if suites:
        argv += ["--only", ",".join(suites)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stdout
    out = json.loads(lines[0])
    assert isinstance(out, dict) and set(out) == {"metrics"}
    metrics = out["metrics"]
    assert isinstance(metrics, dict)
    return metrics


def _check(metrics: dict[str, float], suites: tuple[str, ...]) -> None:
    for suite in suites:
        for key in HEADLINE.get(suite, ()):
            value = metrics[key]
            assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)
            assert math.isfinite(value) and value > 0, (key, value)


def test_every_bench_module_is_a_registered_suite() -> None:
    folder = Path(pets.devtools.__file__).parent
    modules = {p.stem.removeprefix("bench_") for p in folder.glob("bench_*.py")}
    assert set(SUITES) == modules, "register every bench_<name>.py in SUITES"
    assert set(HEADLINE) <= set(SUITES)
    assert len(SUITES) == len(set(SUITES))
    for name in SUITES:
        assert callable(importlib.import_module(f"pets.devtools.bench_{name}").quick), name


def test_quick_json_cheap_suites_print_one_object_with_metrics() -> None:
    _check(_quick_json("sharing", "dp"), ("sharing", "dp"))


@pytest.mark.slow
def test_quick_json_runs_every_suite() -> None:
    _check(_quick_json(), SUITES)
