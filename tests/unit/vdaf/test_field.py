"""Fields and polynomial operations of pets.vdaf against direct definitions (draft §6.1)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pets.vdaf.field import Field, Field64, Field128
from pets.vdaf.poly import (
    double_evaluations,
    extend_values,
    inv_ntt,
    lagrange_coeffs,
    lagrange_coeffs_multi,
    ntt,
    poly_eval,
)

FIELDS = [Field64, Field128]


def test_parameters() -> None:
    assert Field64.MODULUS == 2**32 * 4294967295 + 1
    assert Field128.MODULUS == 2**66 * 4611686018427387897 + 1
    for f in FIELDS:
        g = f.GENERATOR
        assert pow(g, f.GEN_ORDER, f.MODULUS) == 1
        assert pow(g, f.GEN_ORDER // 2, f.MODULUS) != 1


@pytest.mark.parametrize("f", FIELDS, ids=repr)
def test_decode_rejects_non_canonical_and_bad_lengths(f: Field) -> None:
    size = f.ENCODED_SIZE
    assert f.decode_vec(b"") == []
    assert f.decode_vec(b"\x00" * (size + 1)) is None
    assert f.decode_vec((f.MODULUS - 1).to_bytes(size, "little")) == [f.MODULUS - 1]
    assert f.decode_vec(f.MODULUS.to_bytes(size, "little")) is None
    assert f.decode_vec(b"\xff" * size) is None


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(FIELDS), st.data())
def test_encode_decode_roundtrip(f: Field, data: st.DataObject) -> None:
    vec = data.draw(st.lists(st.integers(0, f.MODULUS - 1), max_size=20))
    enc = f.encode_vec(vec)
    assert len(enc) == len(vec) * f.ENCODED_SIZE
    assert f.decode_vec(enc) == vec


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(FIELDS), st.integers(0, 6), st.data())
def test_ntt_matches_direct_evaluation(f: Field, log_n: int, data: st.DataObject) -> None:
    n = 1 << log_n
    p = f.MODULUS
    coeffs = data.draw(st.lists(st.integers(0, p - 1), min_size=n, max_size=n))
    vals = ntt(f, coeffs, n)
    assert vals == [poly_eval(f, coeffs, x) for x in f.nth_root_powers(n)]
    assert inv_ntt(f, vals, n) == coeffs
    doubled = double_evaluations(f, vals)
    assert doubled == [poly_eval(f, coeffs, x) for x in f.nth_root_powers(2 * n)]
    t = data.draw(st.integers(0, p - 1))
    lag = lagrange_coeffs(f, n, t)
    assert sum(a * b for a, b in zip(lag, vals, strict=True)) % p == poly_eval(f, coeffs, t)


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(FIELDS), st.integers(1, 5), st.data())
def test_extend_values(f: Field, log_n: int, data: st.DataObject) -> None:
    n = 1 << log_n
    known = data.draw(st.integers(1, n))
    coeffs = data.draw(st.lists(st.integers(0, f.MODULUS - 1), min_size=known, max_size=known))
    nodes = f.nth_root_powers(n)
    vals = [poly_eval(f, coeffs, x) for x in nodes[:known]]
    assert extend_values(f, vals, n) == [poly_eval(f, coeffs, x) for x in nodes]


def test_inverse() -> None:
    for f in FIELDS:
        assert f.inv(3) * 3 % f.MODULUS == 1
        with pytest.raises(ZeroDivisionError):
            f.inv(f.MODULUS)


def test_xof_rejection_sampling(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sample ``>= p`` is skipped and the stream continues (draft §6.2 ``next_vec``)."""
    from pets.vdaf import xof

    def fake_stream(msg: bytes, length: int) -> bytes:
        # Element 1 of each field is all-ones (>= p); the rest count up.
        out = bytearray()
        i = 0
        while len(out) < length:
            block = b"\xff" * 16 if i == 1 else i.to_bytes(16, "little")
            out += block
            i += 1
        return bytes(out[:length])

    monkeypatch.setattr(xof, "turboshake128", fake_stream)
    for f in FIELDS:
        size = f.ENCODED_SIZE
        stream = fake_stream(b"", 64 * size)
        starts = range(0, len(stream), size)
        words = [int.from_bytes(stream[k : k + size], "little") for k in starts]
        want = [w for w in words if w < f.MODULUS][:5]
        vec, enc = xof.XofTurboShake128.expand_into_vec_encoded(f, bytes(32), b"d", b"b", 5)
        assert vec == want
        assert enc is None  # a rejection happened: no raw-encoding shortcut
        assert xof.XofTurboShake128(bytes(32), b"d", b"b").next_vec(f, 5) == want


@pytest.mark.parametrize("f", FIELDS, ids=repr)
def test_lagrange_at_nodes_of_the_larger_set(f: Field) -> None:
    """``t`` a node of ``W_16`` but not of ``W_8``: the ``W_8`` basis is still exact."""
    coeffs = list(range(1, 9))
    vals8 = ntt(f, coeffs, 8)
    vals16 = ntt(f, coeffs, 16)
    for k in range(16):
        t = f.nth_root_powers(16)[k]
        lag8, lag16 = lagrange_coeffs_multi(f, (8, 16), t)
        want = poly_eval(f, coeffs, t)
        assert sum(a * b for a, b in zip(lag8, vals8, strict=True)) % f.MODULUS == want
        assert sum(a * b for a, b in zip(lag16, vals16, strict=True)) % f.MODULUS == want
