"""Regenerate the Paillier known-answer vectors (``packing.json``, ``reject.json``).

Run from the repository root: ``.venv/bin/python tests/vectors/paillier/generate.py``.

Deliberately independent of ``pets.paillier``: slots are packed by a plain
Python loop from the layout rules in ``pets/paillier/packing.py``, and
ciphertexts and decryptions come from python-paillier itself
(``PaillierPublicKey.raw_encrypt(m, r_value)`` and
``PaillierPrivateKey.raw_decrypt``). Tests then check that ``pets.paillier``
reproduces every number, so a vector is a cross-check against phe, not a
snapshot of our own output.

Primes and ``r`` values are fixed: each is derived from SHA-256 of a label, and
primes are the next prime above that. These keys are far too small for real use
(``allow_insecure_test_size=True`` only).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import gmpy2
import phe

HERE = Path(__file__).resolve().parent
MARGIN_BITS = 64


PACKING_DESCRIPTION = (
    "Packed Paillier known answers: per key, layout and holder vectors, the packed plaintexts, "
    "ciphertexts and their aggregate, cross-checked against phe "
    "(tests/vectors/paillier/generate.py)."
)
REJECT_DESCRIPTION = (
    "Paillier inputs that must be refused, each naming the step that must fail and the "
    "pets.errors class (tests/vectors/paillier/generate.py)."
)


def derived_int(label: str, bits: int) -> int:
    """A ``bits``-bit integer (top two bits set) from SHA-256 of ``label``."""
    out = b""
    counter = 0
    while len(out) * 8 < bits:
        out += hashlib.sha256(f"{label}/{counter}".encode()).digest()
        counter += 1
    x = int.from_bytes(out, "big") >> (len(out) * 8 - bits)
    return x | (3 << (bits - 2))


def fixed_key(label: str, bits: int) -> dict:
    p = int(gmpy2.next_prime(derived_int(f"{label}/p", bits // 2)))
    q = int(gmpy2.next_prime(derived_int(f"{label}/q", bits // 2)))
    assert p != q and (p * q).bit_length() == bits
    return {"id": label, "bits": bits, "p": str(p), "q": str(q), "n": str(p * q)}


def layout_of(lo: int, hi: int, max_holders: int, length: int, key_bits: int) -> dict:
    span = hi - lo
    slot_bits = max(1, (max_holders * span).bit_length())
    per = min((key_bits - 1 - MARGIN_BITS) // slot_bits, length)
    return {
        "lo": lo,
        "hi": hi,
        "max_holders": max_holders,
        "length": length,
        "key_bits": key_bits,
        "margin_bits": MARGIN_BITS,
        "expected": {
            "slot_bits": slot_bits,
            "slots_per_plaintext": per,
            "num_plaintexts": math.ceil(length / per),
            "packed_bits": per * slot_bits,
        },
    }


def ref_pack(layout: dict, values: list[int]) -> list[int]:
    e = layout["expected"]
    s, k = e["slot_bits"], e["slots_per_plaintext"]
    out = []
    for j in range(e["num_plaintexts"]):
        m = 0
        for i, v in enumerate(values[j * k : (j + 1) * k]):
            m |= (v - layout["lo"]) << (i * s)
        out.append(m)
    return out


def unit(label: str, n: int) -> int:
    r = derived_int(label, n.bit_length() + 64) % n
    while math.gcd(r, n) != 1 or r == 0:
        r += 1
    return r


def width(n: int) -> int:
    return 2 * ((n.bit_length() + 7) // 8)


def case(name: str, key: dict, layout: dict, holders: list[list[int]], description: str) -> dict:
    n, p, q = int(key["n"]), int(key["p"]), int(key["q"])
    pub = phe.PaillierPublicKey(n)
    priv = phe.PaillierPrivateKey(pub, p, q)
    out_holders = []
    agg = None
    for h, values in enumerate(holders):
        pts = ref_pack(layout, values)
        rs = [unit(f"{name}/holder{h}/r{j}", n) for j in range(len(pts))]
        cts = [pub.raw_encrypt(m, r_value=r) for m, r in zip(pts, rs, strict=True)]
        out_holders.append(
            {
                "values": values,
                "r": [str(r) for r in rs],
                "plaintexts": [str(m) for m in pts],
                "ciphertexts": [str(c) for c in cts],
                "ciphertexts_hex": b"".join(c.to_bytes(width(n), "big") for c in cts).hex(),
            }
        )
        agg = cts if agg is None else [a * c % (n * n) for a, c in zip(agg, cts, strict=True)]
    sums = [sum(col) for col in zip(*holders, strict=True)]
    return {
        "name": name,
        "description": description,
        "key": key["id"],
        "layout": layout,
        "holders": out_holders,
        "aggregate": {
            "contributors": len(holders),
            "ciphertexts": [str(c) for c in agg],
            "plaintexts": [str(priv.raw_decrypt(c)) for c in agg],
            "sums": sums,
        },
    }


def main() -> None:
    keys = [fixed_key("pets-paillier-kat-512", 512), fixed_key("pets-paillier-kat-256", 256)]
    k512, k256 = keys
    n512 = int(k512["n"])
    l_small = layout_of(0, 1000, 4, 10, 512)
    l_wide = layout_of(-(2**62), 2**62, 3, 7, 512)
    l_worst = layout_of(-8, 7, 5, 40, 512)
    l_tiny = layout_of(-3, 3, 2, 5, 256)
    cases = [
        case(
            "small-unsigned",
            k512,
            l_small,
            [[0, 1, 2, 3, 500, 999, 1000, 7, 8, 9], [1000] * 10, [5, 4, 3, 2, 1, 0, 0, 1, 2, 3]],
            "three holders, values in [0, 1000], one plaintext",
        ),
        case(
            "negative-lo-wide-slots",
            k512,
            l_wide,
            [
                [-(2**62), 2**62, 0, -1, 1, 12345678901234567, -(2**61)],
                [-(2**62), 2**62, 0, 1, -1, -12345678901234567, 2**61 + 3],
            ],
            "slots wider than 64 bits (65), negative lo, last plaintext partly used",
        ),
        case(
            "worst-case-max",
            k512,
            l_worst,
            [[7] * 40] * 5,
            "max_holders holders all at hi: every slot at max_holders*(hi-lo), no carry",
        ),
        case(
            "worst-case-min",
            k512,
            l_worst,
            [[-8] * 40] * 5,
            "max_holders holders all at lo (negative): every slot zero",
        ),
        case(
            "tiny-key",
            k256,
            l_tiny,
            [[-3, -2, 0, 2, 3], [3, 3, 3, -3, -3]],
            "256-bit key: two slots per plaintext",
        ),
    ]
    (HERE / "packing.json").write_text(
        json.dumps({"description": PACKING_DESCRIPTION, "keys": keys, "accept": cases}, indent=1)
        + "\n",
        encoding="utf-8",
    )

    # Rejections: each names the step that must fail and the error it raises.
    w = width(n512)
    n2 = n512 * n512
    e = l_small["expected"]
    s, packed = e["slot_bits"], e["packed_bits"]
    pub = phe.PaillierPublicKey(n512)
    overflow_pt = 4 * 1000 + 1  # slot 0 above max_holders*span
    reject = [
        {
            "name": "ciphertext-short",
            "step": "ciphertexts_from_bytes",
            "error": "InvalidInputError",
            "key": "pets-paillier-kat-512",
            "data_hex": "01" * (w - 1),
        },
        {
            "name": "ciphertext-long",
            "step": "ciphertexts_from_bytes",
            "error": "InvalidInputError",
            "key": "pets-paillier-kat-512",
            "data_hex": "01" * (w + 1),
        },
        {
            "name": "ciphertext-equals-n-squared",
            "step": "ciphertexts_from_bytes",
            "error": "InvalidInputError",
            "key": "pets-paillier-kat-512",
            "data_hex": n2.to_bytes(w, "big").hex(),
        },
        {
            "name": "ciphertext-above-n-squared",
            "step": "ciphertexts_from_bytes",
            "error": "InvalidInputError",
            "key": "pets-paillier-kat-512",
            "data_hex": (n2 + 12345).to_bytes(w, "big").hex(),
        },
        {
            "name": "ciphertext-max-width",
            "step": "ciphertexts_from_bytes",
            "error": "InvalidInputError",
            "key": "pets-paillier-kat-512",
            "data_hex": "ff" * w,
        },
        {
            "name": "ciphertext-zero",
            "step": "ciphertexts_from_bytes",
            "error": "InvalidInputError",
            "key": "pets-paillier-kat-512",
            "data_hex": "00" * w,
        },
        {
            "name": "ciphertext-not-a-unit",
            "step": "ciphertexts_from_bytes",
            "error": "InvalidInputError",
            "key": "pets-paillier-kat-512",
            "data_hex": (int(k512["p"]) * 3).to_bytes(w, "big").hex(),
        },
        {
            "name": "value-above-hi",
            "step": "pack",
            "error": "InvalidInputError",
            "layout": l_small,
            "values": [0, 1, 2, 3, 4, 5, 6, 7, 8, 1001],
        },
        {
            "name": "value-below-lo",
            "step": "pack",
            "error": "InvalidInputError",
            "layout": l_wide,
            "values": [0, 0, 0, -(2**62) - 1, 0, 0, 0],
        },
        {
            "name": "wrong-length",
            "step": "pack",
            "error": "InvalidInputError",
            "layout": l_small,
            "values": [0] * 9,
        },
        {
            "name": "slot-overflow",
            "step": "unpack",
            "error": "OverflowDetectedError",
            "layout": l_small,
            "contributors": 4,
            "plaintexts": [str(overflow_pt)],
        },
        {
            "name": "slot-overflow-fewer-contributors",
            "step": "unpack",
            "error": "OverflowDetectedError",
            "layout": l_small,
            "contributors": 2,
            "plaintexts": [str(2001 << s)],
        },
        {
            "name": "plaintext-beyond-packed-width",
            "step": "unpack",
            "error": "OverflowDetectedError",
            "layout": l_small,
            "contributors": 1,
            "plaintexts": [str(1 << packed)],
        },
        {
            "name": "unused-slot-not-zero",
            "step": "unpack",
            "error": "OverflowDetectedError",
            "layout": l_wide,
            "contributors": 1,
            "plaintexts": ["0", str(1 << (l_wide["expected"]["slot_bits"] * 2))],
        },
        {
            "name": "contributors-above-max-holders",
            "step": "unpack",
            "error": "InvalidInputError",
            "layout": l_small,
            "contributors": 5,
            "plaintexts": ["0"],
        },
        {
            "name": "decrypt-slot-overflow",
            "step": "decrypt_vector",
            "error": "OverflowDetectedError",
            "key": "pets-paillier-kat-512",
            "layout": l_small,
            "contributors": 4,
            "ciphertexts": [str(pub.raw_encrypt(overflow_pt, r_value=unit("reject/r", n512)))],
        },
        {
            "name": "decrypt-wrapped-plaintext",
            "step": "decrypt_vector",
            "error": "OverflowDetectedError",
            "key": "pets-paillier-kat-512",
            "layout": l_small,
            "contributors": 2,
            "ciphertexts": [str(pub.raw_encrypt(n512 - 5, r_value=unit("reject/r2", n512)))],
        },
        {
            "name": "public-key-leading-zero",
            "step": "public_key_from_bytes",
            "error": "InvalidInputError",
            "data_hex": "00" + n512.to_bytes(64, "big").hex(),
        },
        {
            "name": "public-key-even",
            "step": "public_key_from_bytes",
            "error": "InvalidInputError",
            "data_hex": (n512 + 1).to_bytes(64, "big").hex(),
        },
        {
            "name": "public-key-prime",
            "step": "public_key_from_bytes",
            "error": "InvalidInputError",
            "data_hex": int(k512["p"]).to_bytes(32, "big").hex(),
        },
    ]
    (HERE / "reject.json").write_text(
        json.dumps({"description": REJECT_DESCRIPTION, "keys": keys, "reject": reject}, indent=1)
        + "\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
