"""``pets bench --quick --json``: the output contract, not the speed.

Runs the real command in a subprocess for the cheapest area (sharing, a few
seconds) and checks that stdout is exactly one JSON object whose ``metrics``
hold the headline keys as positive finite numbers. No timing thresholds: speed
targets live in ``benchmarks/``.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys


def test_quick_json_sharing_prints_one_object_with_metrics() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pets", "bench", "--quick", "--json", "--only", "sharing"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stdout
    out = json.loads(lines[0])
    assert isinstance(out, dict) and set(out) == {"metrics"}
    metrics = out["metrics"]
    for key in ("shard_elements_per_s", "aggregate_vs_npadd_ratio"):
        value = metrics[key]
        assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)
        assert math.isfinite(value) and value > 0, (key, value)
