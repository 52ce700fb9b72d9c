"""Packing layout, pack/unpack properties (hypothesis), bounds and overflow detection."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pets.errors import InvalidInputError, OverflowDetectedError
from pets.paillier.packing import INT64_MAX, INT64_MIN, PackingLayout, pack, unpack

KEY_BITS = st.sampled_from([256, 512, 1024, 2048, 3072])


def reference_pack(layout: PackingLayout, values: list[int]) -> list[int]:
    """The layout rule, written the slow obvious way."""
    k, s = layout.slots_per_plaintext, layout.slot_bits
    return [
        sum((v - layout.lo) << (i * s) for i, v in enumerate(values[j * k : (j + 1) * k]))
        for j in range(layout.num_plaintexts)
    ]


@st.composite
def layouts(draw: st.DrawFn, max_length: int = 200) -> PackingLayout:
    lo = draw(st.integers(INT64_MIN, INT64_MAX))
    hi = draw(st.integers(lo, INT64_MAX))
    max_holders = draw(st.integers(1, 1 << 24))
    length = draw(st.integers(1, max_length))
    try:
        return PackingLayout(lo, hi, max_holders, length, draw(KEY_BITS))
    except InvalidInputError:
        assume(False)
        raise


def vectors(layout: PackingLayout) -> st.SearchStrategy[np.ndarray]:
    return st.lists(
        st.integers(layout.lo, layout.hi), min_size=layout.length, max_size=layout.length
    ).map(lambda xs: np.array(xs, dtype=np.int64))


def test_realistic_layout() -> None:
    layout = PackingLayout(0, 2**20 - 1, 1000, 10_000, 2048)
    assert layout.slot_bits == 30  # 20 value bits + 10 bits of headroom for 1000 holders
    assert layout.slots_per_plaintext == 66
    assert layout.num_plaintexts == 152
    assert layout.packed_bits <= 2048 - 1 - 64


@pytest.mark.parametrize(
    "args",
    [
        (5, 4, 1, 1, 2048),  # lo > hi
        (INT64_MIN - 1, 0, 1, 1, 2048),
        (0, INT64_MAX + 1, 1, 1, 2048),
        (0, 1, 0, 1, 2048),
        (0, 1, 1, 0, 2048),
        (0, 1, 1, 1, 64),  # no room after the margin
        (INT64_MIN, INT64_MAX, 1 << 40, 1, 160),  # slot wider than the key allows
        (0, 1.5, 1, 1, 2048),
        (0, True, 1, 1, 2048),
    ],
)
def test_invalid_layouts(args: tuple) -> None:
    with pytest.raises(InvalidInputError):
        PackingLayout(*args)


@settings(deadline=None, max_examples=150)
@given(st.data())
def test_pack_matches_reference_and_unpack_inverts(data: st.DataObject) -> None:
    layout = data.draw(layouts())
    contributors = data.draw(st.integers(1, min(layout.max_holders, 5)))
    holders = [data.draw(vectors(layout)) for _ in range(contributors)]
    packed = [pack(layout, v) for v in holders]
    assert packed[0] == reference_pack(layout, holders[0].tolist())
    # Aggregation adds plaintexts; the sum stays below 2**packed_bits < n.
    total = [sum(col) for col in zip(*packed, strict=True)]
    assert all(t < 1 << layout.packed_bits for t in total)
    expected = [sum(int(v[i]) for v in holders) for i in range(layout.length)]
    assert unpack(layout, total, contributors) == expected


@settings(deadline=None, max_examples=150)
@given(layouts())
def test_worst_case_max_holders_at_hi_never_carries(layout: PackingLayout) -> None:
    """max_holders holders, each at hi in every slot: each slot is exactly max*(hi-lo)."""
    one = pack(layout, np.full(layout.length, layout.hi, dtype=np.int64))
    total = [layout.max_holders * m for m in one]  # the sum of max_holders equal plaintexts
    assert all(t < 1 << layout.packed_bits for t in total)
    s = layout.slot_bits
    for j, t in enumerate(total):
        used = min(layout.slots_per_plaintext, layout.length - j * layout.slots_per_plaintext)
        slots = [(t >> (i * s)) & ((1 << s) - 1) for i in range(layout.slots_per_plaintext)]
        assert slots[:used] == [layout.max_slot_sum] * used
        assert not any(slots[used:])
    assert unpack(layout, total, layout.max_holders) == [layout.max_holders * layout.hi] * (
        layout.length
    )


@settings(deadline=None, max_examples=100)
@given(layouts(), st.data())
def test_all_at_lo_gives_zero_slots(layout: PackingLayout, data: st.DataObject) -> None:
    contributors = data.draw(st.integers(1, layout.max_holders))
    one = pack(layout, np.full(layout.length, layout.lo, dtype=np.int64))
    assert one == [0] * layout.num_plaintexts
    assert unpack(layout, one, contributors) == [contributors * layout.lo] * layout.length


def test_negative_lo_min_values() -> None:
    layout = PackingLayout(-(2**62), 2**62, 1000, 300, 2048)
    assert layout.slot_bits > 64
    vals = np.full(300, -(2**62), dtype=np.int64)
    total = [1000 * m for m in pack(layout, vals)]
    assert unpack(layout, total, 1000) == [-1000 * 2**62] * 300


def test_full_int64_range_many_holders() -> None:
    layout = PackingLayout(INT64_MIN, INT64_MAX, 1 << 20, 50, 3072)
    hi = pack(layout, np.full(50, INT64_MAX, dtype=np.int64))
    lo = pack(layout, np.full(50, INT64_MIN, dtype=np.int64))
    total = [(1 << 19) * a + (1 << 19) * b for a, b in zip(hi, lo, strict=True)]
    assert unpack(layout, total, 1 << 20) == [(1 << 19) * (INT64_MAX + INT64_MIN)] * 50


@pytest.mark.parametrize("bad", [1001, -1, 2**40, -(2**63)])
def test_out_of_bounds_rejected(bad: int) -> None:
    layout = PackingLayout(0, 1000, 10, 20, 1024)
    values = np.arange(20, dtype=np.int64)
    values[7] = bad
    with pytest.raises(InvalidInputError, match="index 7"):
        pack(layout, values)


def test_out_of_bounds_message_has_no_value() -> None:
    layout = PackingLayout(0, 1000, 10, 3, 1024)
    with pytest.raises(InvalidInputError) as info:
        pack(layout, np.array([1, 987654321, 2], dtype=np.int64))
    assert "987654321" not in str(info.value)


@pytest.mark.parametrize(
    "values",
    [
        np.zeros(20, dtype=np.float64),
        np.zeros((4, 5), dtype=np.int64),
        np.zeros(19, dtype=np.int64),
        np.array([0] * 19 + [2**63], dtype=np.uint64),
        np.zeros(20, dtype=bool),
    ],
)
def test_bad_shapes_and_dtypes_rejected(values: np.ndarray) -> None:
    with pytest.raises(InvalidInputError):
        pack(PackingLayout(0, 1000, 10, 20, 1024), values)


def test_other_integer_dtypes_and_lists_accepted() -> None:
    layout = PackingLayout(-5, 5, 3, 4, 512)
    expected = pack(layout, np.array([-5, 0, 3, 5], dtype=np.int64))
    assert pack(layout, np.array([-5, 0, 3, 5], dtype=np.int8)) == expected
    assert pack(layout, [-5, 0, 3, 5]) == expected
    strided = np.array([-5, 9, 0, 9, 3, 9, 5, 9], dtype=np.int64)[::2]
    assert pack(layout, strided) == expected


def test_unpack_detects_slot_overflow() -> None:
    layout = PackingLayout(0, 100, 5, 3, 512)
    s = layout.slot_bits
    ok = [100 * 3 + (100 * 3 << s) + (100 * 3 << 2 * s)]
    assert unpack(layout, ok, 3) == [300, 300, 300]
    with pytest.raises(OverflowDetectedError, match="slot 1"):
        unpack(layout, [301 << s], 3)
    with pytest.raises(OverflowDetectedError):
        unpack(layout, [1 << layout.packed_bits], 5)
    with pytest.raises(InvalidInputError):
        unpack(layout, ok, 6)
    with pytest.raises(InvalidInputError):
        unpack(layout, ok, 0)
    with pytest.raises(InvalidInputError):
        unpack(layout, ok + ok, 3)
    with pytest.raises(InvalidInputError):
        unpack(layout, [-1], 3)


def test_unpack_detects_nonzero_unused_slot() -> None:
    layout = PackingLayout(0, 2**40, 5, 5, 256)  # 43-bit slots: 4 per plaintext, 2 plaintexts
    assert layout.num_plaintexts == 2
    with pytest.raises(OverflowDetectedError, match="unused"):
        unpack(layout, [0, 1 << (2 * layout.slot_bits)], 1)


def test_unpack_wide_slots_overflow() -> None:
    layout = PackingLayout(-(2**62), 2**62, 3, 2, 512)
    assert layout.slot_bits == 65
    with pytest.raises(OverflowDetectedError):
        unpack(layout, [(3 * 2**63 + 1) << 65], 3)
    assert unpack(layout, [(3 * 2**63) << 65], 3) == [3 * -(2**62), 3 * 2**62]


def test_layout_for_key_and_check_key() -> None:
    from pets.paillier.keys import generate_keypair

    pub, _ = generate_keypair(512, allow_insecure_test_size=True)
    small, _ = generate_keypair(256, allow_insecure_test_size=True)
    layout = PackingLayout.for_key(pub, lo=0, hi=10, max_holders=2, length=3)
    assert layout.key_bits == 512
    layout.check_key(pub)
    with pytest.raises(InvalidInputError):
        layout.check_key(small)
