"""Ciphertext serialisation, aggregate(), the streaming Accumulator, CRT decryption."""

from __future__ import annotations

import numpy as np
import phe
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pets.errors import InvalidInputError, NotReadyError
from pets.paillier.aggregation import Accumulator, aggregate
from pets.paillier.decryption import decrypt_packed, decrypt_vector, raw_decrypt
from pets.paillier.encryption import encrypt_packed, encrypt_vector
from pets.paillier.keys import generate_keypair
from pets.paillier.packing import PackingLayout
from pets.paillier.serialization import (
    ciphertext_width,
    ciphertexts_from_bytes,
    ciphertexts_to_bytes,
)

KEY = generate_keypair(512, allow_insecure_test_size=True)
PUB, PRIV = KEY
LAYOUT = PackingLayout.for_key(PUB, lo=-50, hi=50, max_holders=8, length=60)
W = ciphertext_width(PUB)


def _holders(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(-50, 51, LAYOUT.length, dtype=np.int64) for _ in range(count)]


HOLDERS = _holders(4)
CTS = [encrypt_vector(PUB, LAYOUT, v, processes=1) for v in HOLDERS]
SUMS = np.sum(HOLDERS, axis=0).tolist()


def test_width_and_round_trip() -> None:
    assert W == 128
    data = ciphertexts_to_bytes(PUB, CTS[0])
    assert len(data) == W * LAYOUT.num_plaintexts
    assert ciphertexts_from_bytes(PUB, data) == CTS[0]
    assert ciphertexts_from_bytes(PUB, memoryview(bytearray(data))) == CTS[0]
    assert ciphertexts_from_bytes(PUB, b"") == []


@pytest.mark.parametrize(
    "data",
    [
        b"\x01" * (W - 1),
        b"\x01" * (W + 1),
        b"\x00" * W,
        PUB.nsquare.to_bytes(W, "big"),
        b"\xff" * W,
        (PRIV.p * 5).to_bytes(W, "big"),
    ],
    ids=["short", "long", "zero", "n-squared", "max", "not-unit"],
)
def test_from_bytes_rejects(data: bytes) -> None:
    with pytest.raises(InvalidInputError) as info:
        ciphertexts_from_bytes(PUB, data)
    assert str(PRIV.p) not in str(info.value)


def test_to_bytes_rejects_out_of_range() -> None:
    for bad in (0, -1, PUB.nsquare):
        with pytest.raises(InvalidInputError):
            ciphertexts_to_bytes(PUB, [bad])


def test_aggregate_in_place() -> None:
    acc = aggregate(PUB, None, CTS[0])
    assert acc == CTS[0] and acc is not CTS[0]
    same = aggregate(PUB, acc, CTS[1])
    assert same is acc
    for cts in CTS[2:]:
        aggregate(PUB, acc, cts)
    assert all(isinstance(c, int) for c in acc)
    assert decrypt_vector(PRIV, LAYOUT, acc, len(CTS)) == SUMS


def test_aggregate_rejects_and_leaves_accumulator_unchanged() -> None:
    acc = aggregate(PUB, None, CTS[0])
    before = list(acc)
    with pytest.raises(InvalidInputError):
        aggregate(PUB, acc, CTS[1][:-1])
    with pytest.raises(InvalidInputError):
        aggregate(PUB, acc, [*CTS[1][:-1], PUB.nsquare])
    with pytest.raises(InvalidInputError):
        aggregate(PUB, acc, [*CTS[1][:-1], 0])
    assert acc == before


@settings(deadline=None, max_examples=40)
@given(st.lists(st.integers(1, 3 * W), min_size=1, max_size=30))
def test_accumulator_any_chunk_boundaries(sizes: list[int]) -> None:
    acc = Accumulator(PUB, LAYOUT.num_plaintexts, max_contributions=LAYOUT.max_holders)
    for cts in CTS:
        data = ciphertexts_to_bytes(PUB, cts)
        contribution = acc.begin()
        pos, i = 0, 0
        while pos < len(data):
            step = sizes[i % len(sizes)]
            contribution.feed(data[pos : pos + step])
            pos, i = pos + step, i + 1
        acc.add(contribution)
    assert acc.contributors == len(CTS)
    expected = None
    for cts in CTS:
        expected = aggregate(PUB, expected, cts)
    assert acc.ciphertexts() == expected
    assert decrypt_vector(PRIV, LAYOUT, acc.ciphertexts(), acc.contributors) == SUMS


@settings(deadline=None, max_examples=40)
@given(st.lists(st.integers(1, 5 * W), min_size=1, max_size=30))
def test_accumulator_sequential_feed(sizes: list[int]) -> None:
    acc = Accumulator(PUB, LAYOUT.num_plaintexts)
    stream = b"".join(ciphertexts_to_bytes(PUB, c) for c in CTS)
    pos, i = 0, 0
    while pos < len(stream):
        step = sizes[i % len(sizes)]
        acc.feed(stream[pos : pos + step])
        pos, i = pos + step, i + 1
    assert acc.contributors == len(CTS)
    assert acc.to_bytes() == ciphertexts_to_bytes(PUB, acc.ciphertexts())
    assert decrypt_vector(PRIV, LAYOUT, acc.ciphertexts(), len(CTS)) == SUMS


def test_accumulator_matches_aggregate() -> None:
    acc = Accumulator(PUB, LAYOUT.num_plaintexts)
    expected = None
    for cts in CTS:
        acc.add(cts)
        expected = aggregate(PUB, expected, cts)
    assert acc.ciphertexts() == expected


def test_accumulator_incomplete_and_invalid_contributions() -> None:
    acc = Accumulator(PUB, LAYOUT.num_plaintexts)
    acc.add(CTS[0])
    before = acc.ciphertexts()
    data = ciphertexts_to_bytes(PUB, CTS[1])
    part = acc.begin()
    part.feed(data[:-1])
    assert not part.complete and part.pending_bytes == W - 1
    with pytest.raises(InvalidInputError, match="incomplete"):
        acc.add(part)
    longer = acc.begin()
    with pytest.raises(InvalidInputError, match="longer"):
        longer.feed(data + b"\x01")
    bad = acc.begin()
    with pytest.raises(InvalidInputError):
        bad.feed(data[:W] + b"\x00" * W)
    with pytest.raises(InvalidInputError):
        acc.add(CTS[1][:-1])
    assert acc.ciphertexts() == before and acc.contributors == 1


def test_accumulator_limits_and_states() -> None:
    acc = Accumulator(PUB, LAYOUT.num_plaintexts, max_contributions=2)
    with pytest.raises(NotReadyError):
        acc.ciphertexts()
    acc.add(CTS[0])
    acc.add(CTS[1])
    with pytest.raises(InvalidInputError, match="max_contributions"):
        acc.add(CTS[2])
    assert acc.contributors == 2
    seq = Accumulator(PUB, LAYOUT.num_plaintexts)
    seq.feed(ciphertexts_to_bytes(PUB, CTS[0])[:-5])
    with pytest.raises(NotReadyError):
        seq.ciphertexts()
    with pytest.raises(InvalidInputError):
        Accumulator(PUB, 0)


def test_accumulator_sequential_feed_error_drops_partial_vector() -> None:
    acc = Accumulator(PUB, LAYOUT.num_plaintexts)
    acc.feed(ciphertexts_to_bytes(PUB, CTS[0]))
    with pytest.raises(InvalidInputError):
        acc.feed(b"\x00" * W)
    assert acc.contributors == 1
    assert decrypt_vector(PRIV, LAYOUT, acc.ciphertexts(), 1) == HOLDERS[0].tolist()


def test_crt_decryption_equals_phe() -> None:
    rng = np.random.default_rng(3)
    cts = [*CTS[0], *encrypt_packed(PUB, [0, 1, PUB.n - 1])]
    # Arbitrary units mod n^2 too, not only well-formed encryptions.
    cts += [int(rng.integers(1, 2**62)) ** 9 % PUB.nsquare for _ in range(5)]
    assert decrypt_packed(PRIV, cts) == [PRIV.raw_decrypt(c) for c in cts]
    assert raw_decrypt(PRIV, cts[0]) == PRIV.raw_decrypt(cts[0])
    with pytest.raises(InvalidInputError):
        decrypt_packed(PRIV, [0])
    with pytest.raises(InvalidInputError):
        decrypt_vector(PRIV, LAYOUT, CTS[0][:-1], 1)


def test_phe_compatibility() -> None:
    """Our ciphertexts are phe EncryptedNumbers; phe's sums are our aggregates."""
    enc = [[phe.EncryptedNumber(PUB, c) for c in cts] for cts in CTS]
    phe_sum = [sum(col[1:], col[0]) for col in zip(*enc, strict=True)]
    ours = None
    for cts in CTS:
        ours = aggregate(PUB, ours, cts)
    assert [e.ciphertext(be_secure=False) for e in phe_sum] == ours
    packed = [PRIV.raw_decrypt(c) for c in ours]
    # Packed plaintexts stay below phe's max_int, so phe's decrypt returns them as is.
    assert [PRIV.decrypt(e) for e in phe_sum] == packed
    assert decrypt_vector(PRIV, LAYOUT, ours, len(CTS)) == SUMS


def test_phe_only_holder_can_contribute() -> None:
    """A holder using phe alone (encrypt the packed ints) aggregates with ours."""
    from pets.paillier.packing import pack

    acc = Accumulator(PUB, LAYOUT.num_plaintexts)
    acc.add(CTS[0])
    phe_cts = [PUB.encrypt(m).ciphertext() for m in pack(LAYOUT, HOLDERS[1])]
    acc.feed(ciphertexts_to_bytes(PUB, phe_cts))
    expected = (HOLDERS[0] + HOLDERS[1]).tolist()
    assert decrypt_vector(PRIV, LAYOUT, acc.ciphertexts(), 2) == expected
