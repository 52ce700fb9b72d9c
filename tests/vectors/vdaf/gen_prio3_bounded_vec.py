"""Generate the known-answer vectors of pets' per-slot-bounds circuit (Prio3BoundedVec).

Run from the repository root: ``.venv/bin/python tests/vectors/vdaf/gen_prio3_bounded_vec.py``.
The JSON follows the draft's test-vector schema (draft-irtf-cfrg-vdaf-20
Appendix C) with the variant's parameters (``bounds``, ``chunk_length``,
``field``, ``proofs``, ``shares``), so the same loader as the draft's vectors
runs them. Negative vectors (``_bad_<check>``) each break one check, and their
``operations`` end at the step that must refuse them:

- ``bad_bit_value`` / ``bad_over_bound``: an encoded slot element that is not a
  bit (the range check; a value above the slot's bound cannot be encoded with
  bits only) -> ``verifier_shares_to_message``;
- ``bad_meas_share``, ``bad_wire_seed``, ``bad_gadget_poly``: one field element
  of the Leader's measurement share or proof share changed (circuit output,
  wire check, gadget check) -> ``verifier_shares_to_message``;
- ``bad_helper_seed``, ``bad_helper_blind``, ``bad_public_share``: one byte of a
  Helper seed, of a blind, or of a joint-randomness part -> ``verifier_shares_to_message``;
- ``bad_verifier_message``: a joint-randomness seed that is not the one the
  Aggregators derive -> ``verify_next``;
- ``bad_input_share_length``, ``bad_noncanonical_element``: messages that do not
  decode -> ``verify_init``.

Randomness is fixed (``rand = 00 01 02 ...``) so the files are reproducible.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from pets.vdaf.errors import VdafError
from pets.vdaf.prio3 import Prio3
from pets.vdaf.variants import from_params

OUT = Path(__file__).resolve().parent
CTX = b"pets bounded vector"
VERIFY_KEY = bytes(range(32))
NONCE = bytes(range(16))


def _rand(vdaf: Prio3, salt: int) -> bytes:
    return bytes((i + salt) % 256 for i in range(vdaf.RAND_SIZE))


def positive(params: dict[str, Any], measurements: list[list[int]]) -> dict[str, Any]:
    vdaf = from_params("Prio3BoundedVec", params)
    reports = []
    ops: list[dict[str, Any]] = []
    out_by_agg: list[list[list[int]]] = [[] for _ in range(vdaf.SHARES)]
    for idx, meas in enumerate(measurements):
        nonce = bytes((b + idx) % 256 for b in NONCE)
        rand = _rand(vdaf, idx)
        public, inputs = vdaf.shard(CTX, meas, nonce, rand)
        states, vshares = [], []
        for j in range(vdaf.SHARES):
            st, vs = vdaf.verify_init(VERIFY_KEY, CTX, j, nonce, public, inputs[j])
            states.append(st)
            vshares.append(vs)
        msg = vdaf.verifier_shares_to_message(CTX, vshares)
        outs = [vdaf.verify_next(CTX, st, msg) for st in states]
        for j, o in enumerate(outs):
            out_by_agg[j].append(o)
        reports.append(
            {
                "measurement": meas,
                "nonce": nonce.hex(),
                "rand": rand.hex(),
                "public_share": public.hex(),
                "input_shares": [s.hex() for s in inputs],
                "verifier_shares": [[v.hex() for v in vshares]],
                "verifier_messages": [msg.hex()],
                "out_shares": [vdaf.encode_out_share(o).hex() for o in outs],
            }
        )
        ops.append({"operation": "shard", "report_index": idx, "success": True})
        ops += [
            {"aggregator_id": j, "operation": "verify_init", "report_index": idx, "success": True}
            for j in range(vdaf.SHARES)
        ]
        ops.append(
            {
                "operation": "verifier_shares_to_message",
                "report_index": idx,
                "round": 0,
                "success": True,
            }
        )
        ops += [
            {
                "aggregator_id": j,
                "operation": "verify_next",
                "report_index": idx,
                "round": 1,
                "success": True,
            }
            for j in range(vdaf.SHARES)
        ]
    agg_shares = [vdaf.encode_agg_share(vdaf.aggregate(o)) for o in out_by_agg]
    ops += [
        {"aggregator_id": j, "operation": "aggregate", "success": True} for j in range(vdaf.SHARES)
    ]
    ops.append({"operation": "unshard", "success": True})
    result = vdaf.unshard(agg_shares, len(measurements))
    return {
        **params,
        "agg_param": "",
        "agg_result": result,
        "agg_shares": [a.hex() for a in agg_shares],
        "ctx": CTX.hex(),
        "operations": ops,
        "reports": reports,
        "verify_key": VERIFY_KEY.hex(),
    }


def _flip(data: bytes, pos: int) -> bytes:
    b = bytearray(data)
    b[pos] ^= 1
    return bytes(b)


def negative(params: dict[str, Any], check: str) -> dict[str, Any]:
    vdaf = from_params("Prio3BoundedVec", params)
    f = vdaf.field.ENCODED_SIZE
    valid = vdaf.flp.valid
    meas = [b // 2 for b in params["bounds"]]
    encoded = valid.encode(meas)
    if check == "bad_bit_value":
        encoded[0] = 2
    elif check == "bad_over_bound":
        # Slot 1 at bound + 1: all ones but the last weight counted twice.
        off = valid.offsets[1]  # type: ignore[attr-defined]
        nb = valid.bits[1]  # type: ignore[attr-defined]
        encoded[off : off + nb] = [1] * (nb - 1) + [2]
    rand = _rand(vdaf, 7)
    public, inputs = vdaf.shard_encoded(CTX, encoded, NONCE, rand)
    leader = bytearray(inputs[0])
    meas_bytes = vdaf.flp.MEAS_LEN * f
    fail_at = "verifier_shares_to_message"
    if check == "bad_meas_share":
        leader[0] ^= 1
    elif check == "bad_wire_seed":
        leader[meas_bytes] ^= 1  # first element of the proof: a wire seed
    elif check == "bad_gadget_poly":
        arity = valid.GADGETS[0].ARITY
        leader[meas_bytes + arity * f] ^= 1  # first gadget-polynomial value
    elif check == "bad_helper_seed":
        inputs[1] = _flip(inputs[1], 0)
    elif check == "bad_helper_blind":
        inputs[1] = _flip(inputs[1], vdaf.SEED_SIZE)
    elif check == "bad_public_share":
        public = _flip(public, vdaf.SEED_SIZE)  # Helper 1's joint-randomness part
    elif check == "bad_verifier_message":
        fail_at = "verify_next"
    elif check == "bad_input_share_length":
        leader = leader[:-1]
        fail_at = "verify_init"
    elif check == "bad_noncanonical_element":
        # Replace the first element by MODULUS itself (== 0 mod p, not canonical).
        leader[0:f] = vdaf.field.MODULUS.to_bytes(f, "little")
        fail_at = "verify_init"
    inputs[0] = bytes(leader)

    ops: list[dict[str, Any]] = []
    vshares: list[bytes] = []
    states = []
    for j in range(vdaf.SHARES):
        try:
            st, vs = vdaf.verify_init(VERIFY_KEY, CTX, j, NONCE, public, inputs[j])
            ok = True
            vshares.append(vs)
            states.append(st)
        except VdafError as exc:
            assert exc.step == fail_at == "verify_init", (check, exc)
            ok = False
        ops.append(
            {"aggregator_id": j, "operation": "verify_init", "report_index": 0, "success": ok}
        )
        if not ok:
            break
    messages: list[str] = []
    if fail_at == "verifier_shares_to_message":
        try:
            vdaf.verifier_shares_to_message(CTX, vshares)
            raise AssertionError(f"{check} was accepted")
        except VdafError as exc:
            assert exc.step == fail_at, (check, exc)
        ops.append(
            {
                "operation": "verifier_shares_to_message",
                "report_index": 0,
                "round": 0,
                "success": False,
            }
        )
    elif fail_at == "verify_next":
        good = vdaf.verifier_shares_to_message(CTX, vshares)
        bad = _flip(good, 0)
        messages = [bad.hex()]
        try:
            vdaf.verify_next(CTX, states[0], bad)
            raise AssertionError(f"{check} was accepted")
        except VdafError as exc:
            assert exc.step == fail_at, (check, exc)
        ops.append(
            {
                "aggregator_id": 0,
                "operation": "verify_next",
                "report_index": 0,
                "round": 1,
                "success": False,
            }
        )
    return {
        **params,
        "agg_param": "",
        "agg_result": None,
        "agg_shares": [],
        "ctx": CTX.hex(),
        "operations": ops,
        "reports": [
            {
                "input_shares": [s.hex() for s in inputs],
                "measurement": None,
                "nonce": NONCE.hex(),
                "out_shares": [],
                "public_share": public.hex(),
                "rand": rand.hex(),
                "verifier_messages": messages,
                "verifier_shares": [[v.hex() for v in vshares]],
            }
        ],
        "verify_key": VERIFY_KEY.hex(),
    }


CHECKS = [
    "bad_bit_value",
    "bad_over_bound",
    "bad_meas_share",
    "bad_wire_seed",
    "bad_gadget_poly",
    "bad_helper_seed",
    "bad_helper_blind",
    "bad_public_share",
    "bad_verifier_message",
    "bad_input_share_length",
    "bad_noncanonical_element",
]

# [count, sum, sum of squares] of one group: max_rows = 1000, values in [0, 255].
PARAMS_0 = {
    "shares": 2,
    "bounds": [1000, 255_000, 65_025_000],
    "chunk_length": 8,
    "field": "Field128",
    "proofs": 1,
}
PARAMS_1 = {
    "shares": 3,
    "bounds": [1, 5, 7, 100, 2**20 - 3],
    "chunk_length": 4,
    "field": "Field64",
    "proofs": 3,
}


def main() -> None:
    files = {
        "Prio3BoundedVec_0.json": positive(
            PARAMS_0, [[1000, 255_000, 65_025_000], [0, 0, 0], [17, 2_345, 398_765]]
        ),
        "Prio3BoundedVec_1.json": positive(
            PARAMS_1, [[1, 5, 7, 100, 2**20 - 3], [0, 3, 4, 51, 12345], [1, 0, 0, 0, 0]]
        ),
    }
    for check in CHECKS:
        files[f"Prio3BoundedVec_{check}.json"] = negative(PARAMS_0, check)
    for name, doc in files.items():
        (OUT / name).write_text(json.dumps(doc, indent=4, sort_keys=True) + "\n")
        print("wrote", name)


if __name__ == "__main__":
    main()
