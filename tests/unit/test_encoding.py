"""Fixed-point encoding into Z_2^64: known answers, rejections, properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pets import encoding, errors
from tests.vectors.loader import cases, load, rejected

VECTORS = load("encoding.json")


@pytest.mark.parametrize("case", cases(VECTORS.accept, step="encode"))
def test_known_answers(case: dict) -> None:
    got = encoding.encode(case["values"], case["lo"], case["hi"], case["scale"])
    assert got.dtype == np.uint64
    assert [str(int(v)) for v in got] == case["ring"]


@pytest.mark.parametrize("case", cases(VECTORS.accept, step="check_sum"))
def test_check_sum_accepts(case: dict) -> None:
    total = int(case["total"])
    assert encoding.check_sum(total, case["terms"], case["lo"], case["hi"]) == total


@pytest.mark.parametrize("case", cases(VECTORS.reject))
def test_rejected_vectors(case: dict) -> None:
    with rejected(case):
        if case["step"] == "check_sum":
            encoding.check_sum(int(case["total"]), case["terms"], case["lo"], case["hi"])
        else:
            values = [float(v) for v in case["values"]]
            encoding.encode(values, case["lo"], case["hi"], case["scale"])


def test_ring_round_trip_of_extremes() -> None:
    x = np.array([0, -1, 2**63 - 1, -(2**63)], dtype=np.int64)
    assert np.array_equal(encoding.from_ring(encoding.to_ring(x)), x)


def test_from_ring_rejects_signed_input() -> None:
    with pytest.raises(errors.InvalidInputError):
        encoding.from_ring(np.array([1], dtype=np.int64))


def test_to_ring_rejects_floats() -> None:
    with pytest.raises(errors.InvalidInputError):
        encoding.to_ring(np.array([1.5]))


def test_wrapped_sum_is_detected_not_decoded() -> None:
    """Two maximal terms wrap around the ring; decoding must refuse, not lie."""
    big = np.array([2**62 + 5], dtype=np.int64)
    total = encoding.to_ring(big) + encoding.to_ring(big)  # wraps to a negative value
    signed = int(encoding.from_ring(total)[0])
    assert signed < 0
    with pytest.raises(errors.OverflowDetectedError):
        encoding.check_sum(signed, 2, 0, 2**62 + 5)


@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=50),
    st.sampled_from([1, 10, 100, 1000]),
)
def test_sum_in_ring_equals_exact_sum(values: list[float], scale: int) -> None:
    ring = encoding.encode(values, -1e6, 1e6, scale)
    total = int(encoding.from_ring(np.array([ring.sum(dtype=np.uint64)], dtype=np.uint64))[0])
    exact = sum(round(v * scale) for v in values)
    # np.rint and Python's round both round half to even
    assert total == exact
    assert encoding.check_sum(total, len(values), -(10**6) * scale, 10**6 * scale) == exact
    assert abs(encoding.from_fixed(total, scale) - sum(values)) <= len(values) * 0.5 / scale + 1e-6
