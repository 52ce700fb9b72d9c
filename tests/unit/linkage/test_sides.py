"""The service's join (pets.linkage.sides) against a plain-Python set computation."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pets.linkage import BatchRejectedError, IntersectionBelowFloorError
from pets.linkage.sides import SideUpload, check_records_floor, match_sides


def ps(i: int) -> bytes:
    return hashlib.sha256(b"%d" % i).digest()[:16]


uploads_st = st.lists(
    st.tuples(st.integers(0, 2), st.sets(st.integers(0, 40), max_size=25)), min_size=1, max_size=6
)


@settings(max_examples=200, deadline=None)
@given(uploads_st)
def test_union_within_a_side_intersection_across_sides(spec: list[tuple[int, set[int]]]) -> None:
    uploads = [
        SideUpload(f"h{k}", side, b"".join(ps(i) for i in sorted(people)))
        for k, (side, people) in enumerate(spec)
    ]
    result = match_sides("q-1", uploads, 3)
    others = [set().union(*[p for s, p in spec if s == side]) for side in (1, 2)]
    value = sorted((f"h{k}", sorted(p)) for k, (s, p) in enumerate(spec) if s == 0)
    assert result.holders == tuple(h for h, _ in value)
    for (_, people), rows in zip(value, result.rows, strict=True):
        expected = [j for j, i in enumerate(people) if all(i in o for o in others)]
        assert rows.tolist() == expected
    assert result.records == sum(len(r) for r in result.rows)
    # Both servers compute the same digest from the same uploads, in any order.
    assert match_sides("q-1", uploads[::-1], 3).digest == result.digest


def test_the_digest_depends_on_the_matched_rows_and_the_query() -> None:
    a = SideUpload("a", 0, ps(1) + ps(2) + ps(3))
    b = SideUpload("b", 1, ps(2) + ps(3))
    fewer = SideUpload("b", 1, ps(2))
    base = match_sides("q-1", [a, b], 2)
    assert base.records == 2
    assert match_sides("q-1", [a, fewer], 2).digest != base.digest
    assert match_sides("q-2", [a, b], 2).digest != base.digest


def test_a_repeated_pseudonym_is_refused() -> None:
    with pytest.raises(BatchRejectedError, match="duplicate-pseudonym"):
        match_sides("q", [SideUpload("a", 0, ps(1) * 2), SideUpload("b", 1, ps(1))], 2)


def test_the_floor_refuses_without_saying_the_size() -> None:
    m = match_sides("q", [SideUpload("a", 0, ps(1)), SideUpload("b", 1, ps(1))], 2)
    check_records_floor(m, 1)
    with pytest.raises(IntersectionBelowFloorError) as info:
        check_records_floor(m, 2)
    assert "1" not in str(info.value)
    assert np.array_equal(m.rows[0], [0])
