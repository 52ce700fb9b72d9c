"""The e2e benchmark's paired bootstrap interval for a ratio of medians
(bench_service._ratio_interval)."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from pets.devtools.bench_service import _ratio_interval


def test_the_interval_holds_the_ratio_and_is_reproducible() -> None:
    rng = np.random.default_rng(3)
    num = list(0.25 + 0.035 * rng.standard_normal(25))
    den = list(0.24 + 0.035 * rng.standard_normal(25))
    first = _ratio_interval("r", num, den)
    assert first == _ratio_interval("r", num, den)  # a fixed seed: the same report
    point = statistics.median(num) / statistics.median(den)
    assert first["r_ci95_lo"] < point < first["r_ci95_hi"]
    # ±14% per round, 25 rounds: the ratio is uncertain by several percent either way.
    assert first["r_ci95_hi"] - first["r_ci95_lo"] > 0.05


def test_rounds_without_spread_give_a_point_and_a_clear_shift_excludes_one() -> None:
    flat = _ratio_interval("r", [2.0] * 9, [1.0] * 9)
    assert flat == {"r_ci95_lo": 2.0, "r_ci95_hi": 2.0}
    rng = np.random.default_rng(4)
    slower = list(1.3 + 0.01 * rng.standard_normal(25))
    base = list(1.0 + 0.01 * rng.standard_normal(25))
    shifted = _ratio_interval("r", slower, base)
    assert 1.25 < shifted["r_ci95_lo"] < 1.3 < shifted["r_ci95_hi"] < 1.35


def test_a_drift_shared_by_both_kinds_does_not_widen_the_interval() -> None:
    """Rounds paired by iteration: a machine that slows down over the run moves both
    sides together, so the interval stays near the constant 10% gap."""
    drift = np.linspace(1.0, 1.6, 25)
    rng = np.random.default_rng(5)
    base = list(0.25 * drift * (1 + 0.005 * rng.standard_normal(25)))
    slower = list(0.275 * drift * (1 + 0.005 * rng.standard_normal(25)))
    paired = _ratio_interval("r", slower, base)
    assert 1.07 < paired["r_ci95_lo"] < 1.1 < paired["r_ci95_hi"] < 1.13


def test_unpaired_rounds_are_refused() -> None:
    with pytest.raises(ValueError, match="same number of rounds"):
        _ratio_interval("r", [1.0, 2.0], [1.0])
