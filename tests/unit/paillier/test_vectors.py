"""Known-answer vectors (tests/vectors/paillier), cross-checked against phe.

``packing.json`` was produced by ``tests/vectors/paillier/generate.py`` from a
plain-Python packer and phe's ``raw_encrypt`` / ``raw_decrypt``, not from
pets.paillier. ``reject.json`` lists inputs that must fail, each naming the
step that must reject it and the error class.
"""

from __future__ import annotations

import numpy as np
import pytest

from pets.paillier import (
    Accumulator,
    PackingLayout,
    aggregate,
    ciphertexts_from_bytes,
    ciphertexts_to_bytes,
    decrypt_packed,
    decrypt_vector,
    encrypt_packed,
    pack,
    private_key_from_primes,
    public_key_from_bytes,
    raw_encrypt,
    unpack,
)
from tests.vectors.loader import cases, load, rejected

ACCEPT = load("paillier/packing.json")
REJECT = load("paillier/reject.json")


def _keys(doc: dict) -> dict:
    out = {}
    for k in doc["keys"]:
        pub, priv = private_key_from_primes(int(k["p"]), int(k["q"]), allow_insecure_test_size=True)
        assert pub.n == int(k["n"]) and pub.n.bit_length() == k["bits"]
        out[k["id"]] = (pub, priv)
    return out


KEYS = _keys(ACCEPT)


def _layout(spec: dict) -> PackingLayout:
    layout = PackingLayout(
        spec["lo"],
        spec["hi"],
        spec["max_holders"],
        spec["length"],
        spec["key_bits"],
        spec["margin_bits"],
    )
    for field, value in spec["expected"].items():
        assert getattr(layout, field) == value, field
    return layout


def _ints(xs: list[str]) -> list[int]:
    return [int(x) for x in xs]


@pytest.mark.parametrize("case", cases(ACCEPT.accept))
def test_known_answers(case: dict) -> None:
    pub, priv = KEYS[case["key"]]
    layout = _layout(case["layout"])
    acc = Accumulator(pub, layout.num_plaintexts, max_contributions=layout.max_holders)
    running = None
    for holder in case["holders"]:
        plaintexts = _ints(holder["plaintexts"])
        assert pack(layout, np.array(holder["values"], dtype=np.int64)) == plaintexts
        cts = encrypt_packed(pub, plaintexts, r_values=_ints(holder["r"]))
        assert cts == _ints(holder["ciphertexts"])
        assert [
            raw_encrypt(pub, m, int(r)) for m, r in zip(plaintexts, holder["r"], strict=True)
        ] == cts
        wire = bytes.fromhex(holder["ciphertexts_hex"])
        assert ciphertexts_to_bytes(pub, cts) == wire
        assert ciphertexts_from_bytes(pub, wire) == cts
        contribution = acc.begin()
        for i in range(0, len(wire), 37):  # deliberately misaligned chunks
            contribution.feed(wire[i : i + 37])
        acc.add(contribution)
        running = aggregate(pub, running, cts)
    agg = case["aggregate"]
    assert running == _ints(agg["ciphertexts"]) == acc.ciphertexts()
    assert decrypt_packed(priv, running) == _ints(agg["plaintexts"])
    assert [priv.raw_decrypt(c) for c in running] == _ints(agg["plaintexts"])
    assert decrypt_vector(priv, layout, running, agg["contributors"]) == agg["sums"]
    assert unpack(layout, _ints(agg["plaintexts"]), agg["contributors"]) == agg["sums"]


@pytest.mark.parametrize("vector", cases(REJECT.reject))
def test_rejected(vector: dict) -> None:
    step = vector["step"]
    if step == "ciphertexts_from_bytes":
        pub, _ = KEYS[vector["key"]]
        with rejected(vector):
            ciphertexts_from_bytes(pub, bytes.fromhex(vector["data_hex"]))
        # The streaming path must reject it too (for lengths it can judge at once).
        contribution = Accumulator(pub, 1).begin()
        with rejected(vector):
            contribution.feed(bytes.fromhex(vector["data_hex"]))
            contribution.ciphertexts()
    elif step == "pack":
        with rejected(vector):
            pack(_layout(vector["layout"]), np.array(vector["values"], dtype=np.int64))
    elif step == "unpack":
        with rejected(vector):
            unpack(_layout(vector["layout"]), _ints(vector["plaintexts"]), vector["contributors"])
    elif step == "decrypt_vector":
        _, priv = KEYS[vector["key"]]
        with rejected(vector):
            decrypt_vector(
                priv,
                _layout(vector["layout"]),
                _ints(vector["ciphertexts"]),
                vector["contributors"],
            )
    elif step == "public_key_from_bytes":
        with rejected(vector):
            public_key_from_bytes(bytes.fromhex(vector["data_hex"]), allow_insecure_test_size=True)
    else:
        pytest.fail(f"unknown step {step}")


def test_every_required_rejection_is_covered() -> None:
    steps = {v["step"] for v in REJECT.reject}
    assert {"ciphertexts_from_bytes", "pack", "unpack", "decrypt_vector"} <= steps
    names = {v["name"] for v in REJECT.reject}
    assert {"ciphertext-short", "ciphertext-equals-n-squared", "value-above-hi"} <= names
    assert "slot-overflow" in names
