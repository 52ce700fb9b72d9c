"""Noise in the ring, in Prio3's fields and for Paillier; centred decoding (pets.dp.noise)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pets.dp.noise import (
    FIELD64_MODULUS,
    FIELD128_MODULUS,
    RING_MODULUS,
    add_to_field_share,
    add_to_ring_share,
    centered,
    check_noisy_range,
    paillier_noise,
)
from pets.encoding import to_ring
from pets.errors import InvalidInputError, OverflowDetectedError

I62 = st.integers(-(1 << 61), (1 << 61) - 1)
VECS = st.lists(st.tuples(I62, I62), min_size=1, max_size=20)


def test_field_moduli_are_prio3s() -> None:
    assert FIELD64_MODULUS == 2**64 - 2**32 + 1
    assert FIELD128_MODULUS == 2**66 * 4611686018427387897 + 1
    assert FIELD128_MODULUS.bit_length() == 128


@given(VECS)
def test_ring_round_trip(pairs: list[tuple[int, int]]) -> None:
    """Two additive shares of x, noise on one: the centred sum is x + z exactly."""
    x = np.array([a for a, _ in pairs], dtype=np.int64)
    z = np.array([b for _, b in pairs], dtype=np.int64)
    mask = np.arange(len(pairs), dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    leader, helper = to_ring(x) - mask, mask
    noisy = add_to_ring_share(leader, z)
    assert centered(noisy + helper) == [int(a) + int(b) for a, b in pairs]
    assert leader.tolist() == (to_ring(x) - mask).tolist()  # input untouched


@given(VECS)
def test_ring_sum_is_the_same_wherever_it_is_written(pairs: list[tuple[int, int]]) -> None:
    """``into`` the noise's or the share's own memory: the same sum as a new array, and
    only the memory named is overwritten."""
    share = np.array([a for a, _ in pairs], dtype=np.int64).view(np.uint64)
    z = np.array([b for _, b in pairs], dtype=np.int64)
    want = add_to_ring_share(share, z).tolist()
    into_noise, noise_before = z.copy(), z.copy()
    assert add_to_ring_share(share, into_noise, into="noise").tolist() == want
    into_share, share_before = share.copy(), share.copy()
    out = add_to_ring_share(into_share, z, into="share")
    assert out is into_share and into_share.tolist() == want
    assert z.tolist() == noise_before.tolist() and share.tolist() == share_before.tolist()


def test_ring_sum_into_a_read_only_share_or_nowhere_is_refused() -> None:
    share = np.zeros(3, dtype=np.uint64)
    share.setflags(write=False)
    with pytest.raises(InvalidInputError, match="read-only"):
        add_to_ring_share(share, np.ones(3, dtype=np.int64), into="share")
    with pytest.raises(InvalidInputError, match="into must be"):
        add_to_ring_share(share, np.ones(3, dtype=np.int64), into="elsewhere")  # type: ignore[arg-type]


@given(VECS, st.sampled_from([FIELD64_MODULUS, FIELD128_MODULUS, 2**63 + 29]))
def test_field_round_trip(pairs: list[tuple[int, int]], p: int) -> None:
    x = [a % p for a, _ in pairs]
    z = np.array([b for _, b in pairs], dtype=np.int64)
    want = [a + b for a, b in pairs]
    got = add_to_field_share(x, z, p)
    assert isinstance(got, list) and centered(got, p) == want
    if p < RING_MODULUS:  # the numpy path agrees with the Python path
        arr = add_to_field_share(np.array(x, dtype=np.uint64), z, p)
        assert isinstance(arr, np.ndarray) and [int(v) for v in arr] == got


def test_field64_wrap_edges() -> None:
    p = FIELD64_MODULUS
    share = np.array([p - 1, p - 1, 0, 0], dtype=np.uint64)
    z = np.array([1, (1 << 63) - 1, -1, -(1 << 63)], dtype=np.int64)
    got = add_to_field_share(share, z, p)
    assert [int(v) for v in got] == [(int(s) + int(n)) % p for s, n in zip(share, z, strict=True)]


@given(st.lists(I62, min_size=1, max_size=10))
def test_paillier_noise_is_mod_n(zs: list[int]) -> None:
    n = (1 << 2047) + 12345
    plain = paillier_noise(np.array(zs, dtype=np.int64), n)
    assert all(0 <= v < n for v in plain) and centered(plain, n) == zs


def test_centered_is_balanced() -> None:
    assert centered([0, 1, 2, 3, 4], 5) == [0, 1, 2, -2, -1]
    assert centered([2, 3], 6) == [2, 3] and centered([4], 6) == [-2]
    assert centered(np.array([2**63, 2**64 - 1], dtype=np.uint64)) == [-(2**63), -1]


def test_bad_inputs() -> None:
    with pytest.raises(InvalidInputError):
        add_to_ring_share(np.zeros(2, dtype=np.int64), np.zeros(2, dtype=np.int64))
    with pytest.raises(InvalidInputError):
        add_to_ring_share(np.zeros(2, dtype=np.uint64), np.zeros(3, dtype=np.int64))
    with pytest.raises(InvalidInputError):
        add_to_ring_share(np.zeros(2, dtype=np.uint64), np.zeros(2, dtype=np.float64))
    with pytest.raises(InvalidInputError):
        add_to_field_share([FIELD64_MODULUS], np.zeros(1, dtype=np.int64), FIELD64_MODULUS)
    with pytest.raises(InvalidInputError):
        add_to_field_share(
            np.array([2**64 - 1], dtype=np.uint64), np.zeros(1, dtype=np.int64), FIELD64_MODULUS
        )
    with pytest.raises(InvalidInputError):
        centered([5], 5)
    with pytest.raises(InvalidInputError):
        centered([1.5], 7)  # type: ignore[list-item]
    with pytest.raises(InvalidInputError):
        paillier_noise(np.zeros(1, dtype=np.int64), 1)


def test_check_noisy_range() -> None:
    check_noisy_range("count", -3, 0, 10, 5)
    with pytest.raises(OverflowDetectedError, match="outside"):
        check_noisy_range("count", -6, 0, 10, 5)
    with pytest.raises(OverflowDetectedError, match="beyond"):
        check_noisy_range("sum", 0, 0, 2**63 - 10, 20)
    with pytest.raises(OverflowDetectedError, match="beyond"):
        check_noisy_range("sum", 0, -10, 10, 3, modulus=23)


def test_check_noise_bound_refuses_instead_of_clamping() -> None:
    from pets.dp.noise import check_noise_bound

    check_noise_bound(np.array([-5, 5], dtype=np.int64), 5)
    with pytest.raises(OverflowDetectedError, match="exceeds"):
        check_noise_bound(np.array([0, -6], dtype=np.int64), 5)
    with pytest.raises(OverflowDetectedError):
        check_noise_bound(np.array([-(2**63)], dtype=np.int64), 2**62)
