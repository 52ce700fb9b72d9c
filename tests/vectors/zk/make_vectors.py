"""Regenerate the zero-knowledge known-answer vectors in this directory.

Run from the repository root: ``.venv/bin/python tests/vectors/zk/make_vectors.py``.
Proofs use :class:`pets.zk.rng.DeterministicRng` seeds, so both backends
reproduce them byte for byte; the unit tests check exactly that. The RFC 9380
files (hash_to_curve_*, expand_message_xmd_*) are transcribed from the RFC
and are not generated here.
"""

from __future__ import annotations

import json
from pathlib import Path

from pets.zk.curve import B, N, P, sqrt_mod_p
from pets.zk.group import get_group
from pets.zk.membership import MembershipRelation
from pets.zk.pedersen import EqualityRelation, LinearRelation, OpeningRelation, PedersenParams
from pets.zk.range_proof import RangeRelation
from pets.zk.rng import DeterministicRng
from pets.zk.schnorr import DLEQRelation, DLogRelation

HERE = Path(__file__).parent


def _flip(data: bytes, index: int) -> str:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out).hex()


def point_vectors() -> dict:
    g = get_group()
    not_on_curve = next(x for x in range(1, 100) if sqrt_mod_p((x**3 + B) % P) is None)
    on_curve = next(x for x in range(1, 100) if sqrt_mod_p((x**3 + B) % P) is not None)
    gen = g.generator.to_bytes()
    listed = {
        "point": [
            {"hex": gen.hex(), "valid": True, "note": "standard generator G"},
            {"hex": "00", "valid": True, "note": "identity"},
            {"hex": "02" + f"{on_curve:064x}", "valid": True, "note": "small x on the curve"},
            {"hex": "03" + f"{on_curve:064x}", "valid": True, "note": "same x, odd y"},
            {"hex": "", "valid": False, "step": "length", "note": "empty"},
            {"hex": gen[:32].hex(), "valid": False, "step": "length", "note": "32 bytes"},
            {"hex": gen.hex() + "00", "valid": False, "step": "length", "note": "34 bytes"},
            {
                "hex": "0000",
                "valid": False,
                "step": "length",
                "note": "identity with trailing byte",
            },
            {
                "hex": "04" + gen[1:].hex(),
                "valid": False,
                "step": "prefix",
                "note": "bad prefix 04",
            },
            {
                "hex": "05" + gen[1:].hex(),
                "valid": False,
                "step": "prefix",
                "note": "bad prefix 05",
            },
            {
                "hex": "00" + gen[1:].hex(),
                "valid": False,
                "step": "prefix",
                "note": "00 then 32 bytes",
            },
            {
                "hex": "04"
                + f"{0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798:064x}"
                + f"{0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8:064x}",
                "valid": False,
                "step": "length",
                "note": "uncompressed G refused",
            },
            {"hex": "02" + f"{P:064x}", "valid": False, "step": "canonical", "note": "x = p"},
            {
                "hex": "02" + f"{P + on_curve:064x}",
                "valid": False,
                "step": "canonical",
                "note": "x = p + small valid x (non-canonical alias)",
            },
            {"hex": "02" + "ff" * 32, "valid": False, "step": "canonical", "note": "x = 2^256-1"},
            {
                "hex": "02" + f"{not_on_curve:064x}",
                "valid": False,
                "step": "on-curve",
                "note": "x with no curve point",
            },
        ],
        "scalar": [
            {"hex": "00" * 32, "valid": True, "note": "zero"},
            {"hex": f"{N - 1:064x}", "valid": True, "note": "n - 1"},
            {"hex": f"{N:064x}", "valid": False, "step": "canonical", "note": "n"},
            {"hex": "ff" * 32, "valid": False, "step": "canonical", "note": "2^256 - 1"},
            {"hex": "00" * 31, "valid": False, "step": "length", "note": "31 bytes"},
            {"hex": "00" * 33, "valid": False, "step": "length", "note": "33 bytes"},
        ],
    }
    # The shared schema (tests/vectors/README.md): "operation" is point or scalar
    # decoding, a reject's "step" the check that refuses it.
    return {
        "description": "SEC1 point and scalar decoding (pets.zk.group); identity is 0x00. "
        "'operation' is point or scalar decoding (make_vectors.py)",
        "accept": [
            {"name": f"{op}: {v['note']}", "operation": op, "hex": v["hex"]}
            for op, items in listed.items()
            for v in items
            if v["valid"]
        ],
        "reject": [
            {
                "name": f"{op}: {v['note']}",
                "operation": op,
                "step": v["step"],
                "error": "InvalidInputError",
                "hex": v["hex"],
            }
            for op, items in listed.items()
            for v in items
            if not v["valid"]
        ],
    }


def proof_vectors() -> dict:
    g = get_group()
    params = PedersenParams(g, 2)
    rng = DeterministicRng(b"statement-inputs")
    x = g.random_scalar(rng)
    h = g.derive_generator("vectors/dleq-base")
    c1, o1 = params.commit(42, rng=rng)
    c2, o2 = params.commit(42, rng=rng)
    c3, o3 = params.commit(7, rng=rng)
    cv, ov = params.commit_vector([5, 9], rng=rng)
    ctx = b"pets test vector"
    vectors = []

    def add(name, relation, prove, inputs, kind="sigma"):
        data = prove(relation, DeterministicRng(name.encode())).to_bytes()
        first = 0 if kind == "sigma" else 1 + 33 * 8  # range: first byte of the sigma part
        rejects = [
            {"proof": _flip(data, first), "step": "challenge", "note": "flip a challenge bit"},
            {
                "proof": _flip(data, len(data) - 1),
                "step": "challenge",
                "note": "flip the last response bit",
            },
            {"proof": data[:-1].hex(), "step": "length", "note": "truncated by one byte"},
            {
                "proof": (data[:-32] + N.to_bytes(32, "big")).hex(),
                "step": "decode",
                "note": "last scalar replaced by n (non-canonical)",
            },
        ]
        if kind == "range":
            rejects.append(
                {
                    "proof": _flip(data, 5),
                    "step": "decode-or-bit-sum",
                    "note": "flip a bit of the first bit commitment",
                }
            )
        vectors.append(
            {
                "name": name,
                "kind": kind,
                "context": ctx.hex(),
                "seed": name,
                "inputs": inputs,
                "proof": data.hex(),
                "rejects": rejects,
            }
        )

    def hexp(point):
        return point.to_bytes().hex()

    add(
        "schnorr",
        DLogRelation(g.mul_base(x)),
        lambda r, rng: r.prove(x, context=ctx, rng=rng),
        {"public": hexp(g.mul_base(x))},
    )
    add(
        "dleq",
        DLEQRelation(g.mul_base(x), g.generator, x * h, h),
        lambda r, rng: r.prove(x, context=ctx, rng=rng),
        {
            "public1": hexp(g.mul_base(x)),
            "public2": hexp(x * h),
            "base2_label": "vectors/dleq-base",
        },
    )
    add(
        "opening",
        OpeningRelation(params, c1),
        lambda r, rng: r.prove(o1, context=ctx, rng=rng),
        {"commitment": hexp(c1)},
    )
    add(
        "vector-opening",
        OpeningRelation(params, cv, 2),
        lambda r, rng: r.prove(ov, context=ctx, rng=rng),
        {"commitment": hexp(cv)},
    )
    add(
        "equality",
        EqualityRelation(params, c1, c2),
        lambda r, rng: r.prove(o1, o2, context=ctx, rng=rng),
        {"c1": hexp(c1), "c2": hexp(c2)},
    )
    add(
        "linear",
        LinearRelation(params, [c1, c3], [2, 3], 105),
        lambda r, rng: r.prove([o1, o3], context=ctx, rng=rng),
        {"c1": hexp(c1), "c2": hexp(c3), "coefficients": [2, 3], "constant": 105},
    )
    add(
        "membership",
        MembershipRelation(params, c1, [7, 42, 1000]),
        lambda r, rng: r.prove(o1, context=ctx, rng=rng),
        {"commitment": hexp(c1), "set": [7, 42, 1000]},
    )
    add(
        "range-18-149",
        RangeRelation(params, c1, 18, 149),
        lambda r, rng: r.prove(o1, context=ctx, rng=rng),
        {"commitment": hexp(c1), "lo": 18, "hi": 149},
        kind="range",
    )
    return {
        "description": "Proof known-answer vectors: statement inputs are regenerated from "
        "DeterministicRng(b'statement-inputs') in the order of make_vectors.py; each proof "
        "uses DeterministicRng(seed). 'rejects' must fail at the named step.",
        "context": ctx.hex(),
        "vectors": vectors,
    }


def issuance_request_vectors() -> dict:
    """Credential issuance requests (holder key + proof of possession bound to the schema)."""
    from pets.zk.credential import create_issuance_request
    from pets.zk.serialization import request_to_dict

    g = get_group()
    vectors = []
    for name, schema in (("request-researcher", "researcher/v1"), ("request-unicode", "Ärzte/v1")):
        secret = g.random_scalar(DeterministicRng(f"{name}/key".encode()))
        request = create_issuance_request(
            secret, schema_id=schema, rng=DeterministicRng(f"{name}/proof".encode())
        )
        doc = request_to_dict(request)
        other = g.mul_base(secret + 1).to_bytes().hex()
        proof = bytes.fromhex(doc["proof"])
        vectors.append(
            {
                "name": name,
                "key_seed": f"{name}/key",
                "proof_seed": f"{name}/proof",
                "holder_secret_key": f"{secret:064x}",
                "request": doc,
                "rejects": [
                    {"issuer_schema": schema + "x", "step": "schema", "note": "another schema"},
                    {
                        "holder_public_key": other,
                        "step": "possession",
                        "note": "someone else's public key with this proof",
                    },
                    {
                        "proof": _flip(proof, 0),
                        "step": "possession",
                        "note": "flip a challenge bit",
                    },
                    {
                        "proof": _flip(proof, len(proof) - 1),
                        "step": "possession",
                        "note": "flip the last response bit",
                    },
                    {"proof": proof[:-1].hex(), "step": "possession", "note": "truncated"},
                ],
            }
        )
    return {
        "description": "Issuance requests (pets.zk.credential.create_issuance_request): the "
        "holder secret is DeterministicRng(key_seed)'s random_scalar, the proof uses "
        "DeterministicRng(proof_seed). The issuer accepts 'request' for its own schema_id; "
        "each entry of 'rejects' replaces one field (or the issuer's schema) and must fail "
        "at the named step.",
        "vectors": vectors,
    }


if __name__ == "__main__":
    (HERE / "point_encodings.json").write_text(json.dumps(point_vectors(), indent=1) + "\n")
    (HERE / "proofs.json").write_text(json.dumps(proof_vectors(), indent=1) + "\n")
    (HERE / "issuance_requests.json").write_text(
        json.dumps(issuance_request_vectors(), indent=1, ensure_ascii=False) + "\n"
    )
    print("wrote point_encodings.json, proofs.json and issuance_requests.json")
