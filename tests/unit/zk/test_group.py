"""Group: strict encodings, identity handling, and byte-identical backends."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pets.errors import InvalidInputError
from pets.zk.curve import GX, GY, N, P, decompress
from pets.zk.group import Group, Point, get_group
from tests.unit.zk.helpers import BACKENDS
from tests.vectors.loader import Case, cases, load, rejected

POINTS = load("zk/point_encodings.json")
SCALARS = st.integers(min_value=0, max_value=N - 1)


def _of(items: list[Case], operation: str) -> list[object]:
    return [p for p in cases(items) if p.values[0]["operation"] == operation]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("vector", _of(POINTS.accept, "point"))
def test_point_decoding_vectors(backend: str, vector: Case) -> None:
    data = bytes.fromhex(vector["hex"])
    assert get_group(backend).point_from_bytes(data).to_bytes() == data


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("vector", _of(POINTS.reject, "point"))
def test_point_decoding_rejects(backend: str, vector: Case) -> None:
    with rejected(vector):
        get_group(backend).point_from_bytes(bytes.fromhex(vector["hex"]))


@pytest.mark.parametrize("vector", _of(POINTS.accept, "scalar"))
def test_scalar_decoding_vectors(vector: Case) -> None:
    data = bytes.fromhex(vector["hex"])
    assert Group.scalar_to_bytes(Group.scalar_from_bytes(data)) == data


@pytest.mark.parametrize("vector", _of(POINTS.reject, "scalar"))
def test_scalar_decoding_rejects(vector: Case) -> None:
    with rejected(vector):
        Group.scalar_from_bytes(bytes.fromhex(vector["hex"]))


def test_scalar_encoding_rejects_out_of_range() -> None:
    for bad in (-1, N, 2**256):
        with pytest.raises(InvalidInputError):
            Group.scalar_to_bytes(bad)


def test_identity_is_explicit(group: Group) -> None:
    g, o = group.generator, group.identity
    assert o.is_identity and o.to_bytes() == b"\x00"
    assert (g - g).is_identity and (0 * g).is_identity and (N * g).is_identity
    assert g + o == g and o + g == g and -o == o and (5 * o).is_identity
    assert group.mul_base(0).is_identity and group.mul_base(N).is_identity
    assert group.lincomb([(3, g), (-3, g)]).is_identity
    assert group.lincomb([]).is_identity
    assert group.sum([g, -g]).is_identity
    h = group.derive_generator("h")
    assert group.lincomb([(2, h), (5, g), (-2, h), (-5, g)]).is_identity
    assert group.lincomb([(1, h), (N - 1, h)]).is_identity
    assert group.point_from_bytes(b"\x00") is group.identity


def test_generator_matches_sec2(group: Group) -> None:
    assert group.generator.to_bytes() == bytes([2 + (GY & 1)]) + GX.to_bytes(32, "big")


def test_mixing_backends_is_refused() -> None:
    a, b = get_group("coincurve").generator, get_group("py_ecc").generator
    with pytest.raises(InvalidInputError):
        _ = a + b


def test_unknown_backend_rejected_and_default_is_coincurve() -> None:
    assert get_group().name == "coincurve"
    with pytest.raises(InvalidInputError):
        get_group("openssl")


def test_point_from_affine_rejects_off_curve(group: Group) -> None:
    with pytest.raises(InvalidInputError):
        group.point_from_affine(1, 1)


@settings(max_examples=12, deadline=None)
@given(a=SCALARS, b=SCALARS, c=SCALARS)
def test_backends_agree_byte_for_byte(a: int, b: int, c: int) -> None:
    fast, ref = get_group("coincurve"), get_group("py_ecc")
    results = []
    for g in (fast, ref):
        h = g.derive_generator("agree")
        p = g.mul_base(a)
        q = b * h
        results.append(
            [
                p.to_bytes(),
                q.to_bytes(),
                (p + q).to_bytes(),
                (p - q).to_bytes(),
                (-q).to_bytes(),
                g.lincomb([(a, g.generator), (b, h), (c, p)]).to_bytes(),
                g.sum([p, p, q]).to_bytes(),
            ]
        )
    assert results[0] == results[1]


@settings(max_examples=40, deadline=None)
@given(a=SCALARS, b=SCALARS)
def test_lincomb_matches_naive_arithmetic(a: int, b: int) -> None:
    g = get_group("coincurve")
    h = g.derive_generator("naive")
    assert g.lincomb([(a, g.generator), (b, h)]) == a * g.generator + b * h
    assert g.lincomb([(a, h), (b, g.generator)]) == g.mul_base(b) + a * h


def test_double_multiplication_with_large_x(fast: Group, ref: Group) -> None:
    """Points with x >= n take the recovery-id-2/3 path of the fast backend."""
    x = next(t for t in range(N, P) if decompress(t, False) is not None)
    enc = b"\x02" + x.to_bytes(32, "big")
    for a, b in ((5, 7), (1, N - 1), (N - 1, 1)):
        results = {
            g.name: g.lincomb([(a, g.generator), (b, g.point_from_bytes(enc))]).to_bytes()
            for g in (fast, ref)
        }
        assert results["coincurve"] == results["py_ecc"]


def test_double_multiplication_reaching_identity(fast: Group) -> None:
    p = fast.mul_base(12345)
    assert fast.lincomb([(12345, fast.generator), (N - 1, p)]).is_identity


def test_point_equality_and_hash(group: Group) -> None:
    g = group.generator
    again = group.point_from_bytes(g.to_bytes())
    assert again == g and hash(again) == hash(g) and g != group.identity
    assert isinstance(repr(g), str) and (g == 5) is False
    assert isinstance(2 * g, Point) and g * 2 == g + g
