"""The leader's additive running sum reads received chunks in place, whatever their sizes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pets.errors import InvalidInputError
from pets.protocols.additive import AdditiveAggregate
from pets.transport import wire

LENGTH = 64


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.integers(0, 2**64 - 1), min_size=LENGTH, max_size=LENGTH),
    cuts=st.lists(st.integers(0, LENGTH * 8), max_size=6),
)
def test_any_chunking_adds_the_same_vector(values: list[int], cuts: list[int]) -> None:
    vector = np.array(values, dtype=np.uint64)
    payload = wire.vector_to_bytes(vector)
    bounds = [0, *sorted(cuts), len(payload)]
    chunks = [payload[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    agg = AdditiveAggregate(LENGTH)
    agg.add(agg.validate(chunks))
    agg.add(agg.validate(payload))
    assert np.array_equal(agg.total, vector * np.uint64(2))
    assert agg.count == 2


def test_wrong_total_length_is_refused() -> None:
    agg = AdditiveAggregate(LENGTH)
    with pytest.raises(InvalidInputError, match="expected 512"):
        agg.validate([bytes(256), bytes(255)])


def test_the_provable_maximum_of_contributions_holds() -> None:
    agg = AdditiveAggregate(LENGTH, max_contributions=1)
    agg.add(agg.validate(bytes(LENGTH * 8)))
    with pytest.raises(InvalidInputError, match="fits the 64-bit ring"):
        agg.add(agg.validate(bytes(LENGTH * 8)))
