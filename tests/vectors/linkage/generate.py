"""Regenerate the linkage known-answer vectors in this directory.

Run from the repository root: ``.venv/bin/python tests/vectors/linkage/generate.py``.

The arithmetic here is deliberately independent of ``pets.linkage``'s fast
paths: keys come from an HKDF written out from RFC 5869 with :mod:`hmac`, points
from the ZK kit's pure-Python ``py_ecc`` backend (``pets.zk.group``) and the
RFC 9380 ``hash_to_curve`` that ``tests/vectors/zk`` pins, shuffles from a
plain Fisher-Yates over :class:`pets.zk.rng.DeterministicRng`, joins from
Python sets, sums from Python integers mod 2^64. The unit tests check that
``pets.linkage`` (coincurve) reproduces every byte.

One value is a regression pin of pets' own output rather than an independent
cross-check: the DLEQ proofs (the ZK kit's DLEQ is pinned by
``tests/vectors/zk/proofs.json``; its composite points M and Z are computed
here independently).

Files: ``oprf.json`` (keys, blinding, both servers, unblinding, pseudonyms,
upload order, DLEQ), ``join.json`` (matched set, digest, floor, sums),
``normalise.json`` (identifier normalisation and one-row rules), ``reject.json``
(inputs every party must refuse, naming the failing step).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import unicodedata
from pathlib import Path

from pets.linkage.dleq import composite_seed, composite_weights, proof_context, prove_batch
from pets.linkage.domain import LinkageDomain
from pets.linkage.keys import KeyShare
from pets.zk.curve import B, N, P, sqrt_mod_p
from pets.zk.group import Point, get_group
from pets.zk.hash_to_curve import hash_to_curve
from pets.zk.rng import DeterministicRng

HERE = Path(__file__).resolve().parent
REF = get_group("py_ecc")

DOMAIN = "jp-resident-id"
DST = b"PETS-V01-LINKAGE-" + DOMAIN.encode() + b"-secp256k1_XMD:SHA-256_SSWU_RO_"
QUERY = "query-0001"
LEADER_SECRET = hashlib.sha256(b"pets linkage vector leader secret").digest()
HELPER_SECRET = hashlib.sha256(b"pets linkage vector helper secret").digest()
RNG_SEED = b"pets linkage vector holder rng"
DLEQ_SEED = b"pets linkage vector dleq nonce"
HOLDER = "hospital-a"
IDS = ["1001", "1002", "1003", "1004", "1005", "2001"]


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 section 2.2 and 2.3, written out."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def key_share(secret: bytes, role: str) -> int:
    q = QUERY.encode()
    info = (
        bytes([len(role)])
        + role.encode()
        + bytes([len(DOMAIN)])
        + DOMAIN.encode()
        + len(q).to_bytes(2, "big")
        + q
    )
    okm = hkdf_sha256(secret, b"pets/linkage/v1/key-share", info, 48)
    return int.from_bytes(okm, "big") % (N - 1) + 1


def h(ident: bytes) -> Point:
    x, y = hash_to_curve(ident, DST)  # type: ignore[misc]
    return REF.point_from_affine(x, y)


def fisher_yates(n: int, rng: DeterministicRng) -> list[int]:
    perm = list(range(n))
    for i in range(n - 1, 0, -1):
        j = rng.randbelow(i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def pseudonym(point: bytes) -> bytes:
    q = QUERY.encode()
    data = (
        b"pets/linkage/v1/pseudonym"
        + bytes([len(DST)])
        + DST
        + len(q).to_bytes(2, "big")
        + q
        + point
    )
    return hashlib.sha256(data).digest()[:16]


def cat(points: list[Point]) -> bytes:
    return b"".join(p.to_bytes() for p in points)


def naive_composite(points: list[Point], weights: list[int]) -> Point:
    acc = REF.identity
    for w, p in zip(weights, points, strict=True):
        acc = acc + w * p
    return acc


def oprf_vectors() -> dict:
    k_l = key_share(LEADER_SECRET, "leader")
    k_h = key_share(HELPER_SECRET, "helper")
    ids = [s.encode() for s in IDS]
    rng = DeterministicRng(RNG_SEED)
    order = fisher_yates(len(ids), rng)
    blinds = [1 + rng.randbelow(N - 1) for _ in ids]
    hashed = [h(ids[j]) for j in order]
    batch = [r * p for r, p in zip(blinds, hashed, strict=True)]
    mid = [k_h * b for b in batch]
    out = [k_l * m for m in mid]
    unblinded = [pow(r, -1, N) * w for r, w in zip(blinds, out, strict=True)]
    k = k_l * k_h % N
    assert all(u == k * p for u, p in zip(unblinded, hashed, strict=True))
    pseudonyms = [pseudonym(u.to_bytes()) for u in unblinded]
    again = fisher_yates(len(ids), rng)
    domain = LinkageDomain(DOMAIN)
    dleq = []
    for role, key, inputs, outputs in (
        ("helper", k_h, batch, mid),
        ("leader", k_l, mid, out),
    ):
        context = proof_context(role, domain, QUERY, HOLDER)
        public = (key * REF.generator).to_bytes()
        seed = composite_seed(public, context, cat(inputs), cat(outputs))
        weights = [int.from_bytes(w.tobytes(), "big") for w in composite_weights(seed, len(ids))]
        proof = prove_batch(
            KeyShare(role, key),
            cat(inputs),
            cat(outputs),
            context=context,
            rng=DeterministicRng(DLEQ_SEED),
        )
        dleq.append(
            {
                "name": f"dleq-{role}",
                "step": "dleq",
                "role": role,
                "context": context.hex(),
                "seed": seed.hex(),
                "composite_m": naive_composite(inputs, weights).to_bytes().hex(),
                "composite_z": naive_composite(outputs, weights).to_bytes().hex(),
                "proof": proof.hex(),
                "nonce_rng_seed": DLEQ_SEED.decode(),
            }
        )
    return {
        "description": "Linkage OPRF known answers: keys, blind, helper, leader, unblind, "
        "pseudonyms, second shuffle, batched DLEQ (generate.py)",
        "domain": DOMAIN,
        "dst": DST.decode(),
        "query_id": QUERY,
        "holder": HOLDER,
        "leader_secret": LEADER_SECRET.hex(),
        "helper_secret": HELPER_SECRET.hex(),
        "k_leader": f"{k_l:064x}",
        "k_helper": f"{k_h:064x}",
        "leader_public_key": (k_l * REF.generator).to_bytes().hex(),
        "helper_public_key": (k_h * REF.generator).to_bytes().hex(),
        "ids": IDS,
        "rng_seed": RNG_SEED.decode(),
        "rng_draws": "Fisher-Yates (n-1 draws), then n blinds 1 + randbelow(n_order - 1), "
        "then the second Fisher-Yates",
        "order": order,
        "blinds": [f"{r:064x}" for r in blinds],
        "hashed": [p.to_bytes().hex() for p in hashed],
        "batch": cat(batch).hex(),
        "helper_output": cat(mid).hex(),
        "leader_output": cat(out).hex(),
        "unblinded": cat(unblinded).hex(),
        "pseudonyms": b"".join(pseudonyms).hex(),
        "upload_shuffle": again,
        "upload_pseudonyms": b"".join(pseudonyms[j] for j in again).hex(),
        "upload_records": [order[j] for j in again],
        "accept": dleq,
    }


def join_vectors() -> dict:
    def ps(label: str) -> bytes:
        return hashlib.sha256(label.encode()).digest()[:16]

    tail_zero = ps("t")[:15] + b"\x00"
    a = [ps("p1"), ps("p2"), ps("p3"), tail_zero, ps("p5"), ps("p6")]
    b = [ps("p6"), ps("p9"), tail_zero, ps("p1"), ps("p8")]
    c = [ps("p1"), tail_zero, ps("p6"), ps("p7")]
    cases = []
    for name, uploads in (("two-holders", [a, b]), ("three-holders", [a, b, c])):
        common = set(uploads[0])
        for u in uploads[1:]:
            common &= set(u)
        matched = sorted(common)
        indices = [[u.index(p) for p in matched] for u in uploads]
        q = QUERY.encode()
        label = b"pets/linkage/v1/matched-set"
        digest = hashlib.sha256(
            len(label).to_bytes(2, "big")
            + label
            + len(q).to_bytes(2, "big")
            + q
            + len(uploads).to_bytes(4, "big")
            + len(matched).to_bytes(8, "big")
            + b"".join(matched)
        ).digest()
        shares = []
        sums = []
        for hi, u in enumerate(uploads):
            rows = [
                [
                    int.from_bytes(
                        hashlib.sha256(f"{name}/{hi}/{r}/{c}".encode()).digest()[:8], "big"
                    )
                    for c in range(3)
                ]
                for r in range(len(u))
            ]
            shares.append([[str(v) for v in row] for row in rows])
            total = [sum(rows[r][c] for r in indices[hi]) % 2**64 for c in range(3)]
            sums.append([str(v) for v in total])
        cases.append(
            {
                "name": name,
                "query_id": QUERY,
                "uploads": [b"".join(u).hex() for u in uploads],
                "matched": b"".join(matched).hex(),
                "indices": indices,
                "digest": digest.hex(),
                "shares": shares,
                "sums": sums,
            }
        )
    return {
        "description": "Linkage join known answers: matched set (sorted), aligned share "
        "indices, matched-set digest, sums of share rows mod 2^64 (generate.py)",
        "accept": cases,
    }


def normalise_vectors() -> dict:
    def apply(value: str, steps: list[str]) -> str:
        for step in steps:
            if step == "nfkc":
                value = unicodedata.normalize("NFKC", value)
            elif step == "casefold":
                value = value.casefold()
            elif step == "strip":
                value = value.strip()
            elif step == "collapse_whitespace":
                value = " ".join(value.split())
            elif step == "remove_whitespace":
                value = "".join(value.split())
            elif step == "digits_only":
                value = "".join(ch for ch in value if ch in "0123456789")
            elif step == "alnum_only":
                value = "".join(ch for ch in value if ch.isalnum())
        return value

    cases = [
        ("  Ｔａｎａｋａ  Hanako ", ["nfkc", "strip", "casefold"]),
        ("  Ｔａｎａｋａ  Hanako ", ["nfkc", "collapse_whitespace", "casefold"]),
        ("１２３-４５６７-８９", ["nfkc", "digits_only"]),
        ("１２３-４５６７-８９", ["digits_only"]),
        ("STRASSE", ["casefold"]),
        ("Straße", ["casefold"]),
        ("AB 12 cd", ["remove_whitespace", "casefold"]),
        ("a-b_c.d 9", ["alnum_only"]),
        ("---", ["digits_only"]),
    ]
    rules = []
    ids = ["x", "y", "x", "z", "x", "y"]
    values = [[1, 10], [2, 20], [3, -30], [4, 40], [5, 50], [6, 5]]
    for rule in ("first", "last", "sum", "min", "max"):
        distinct: list[str] = []
        rows: dict[str, list[list[int]]] = {}
        for ident, row in zip(ids, values, strict=True):
            if ident not in rows:
                distinct.append(ident)
                rows[ident] = []
            rows[ident].append(row)
        out = []
        for ident in distinct:
            rs = rows[ident]
            if rule == "first":
                out.append(rs[0])
            elif rule == "last":
                out.append(rs[-1])
            elif rule == "sum":
                out.append([sum(c) for c in zip(*rs, strict=True)])
            elif rule == "min":
                out.append([min(c) for c in zip(*rs, strict=True)])
            else:
                out.append([max(c) for c in zip(*rs, strict=True)])
        rules.append({"rule": rule, "ids": distinct, "values": out})
    return {
        "description": "Identifier normalisation (expected UTF-8 text, null = dropped) and "
        "one-row-per-person rules over int64 values (generate.py)",
        "one_row_ids": ids,
        "one_row_values": values,
        "accept": [
            {
                "name": f"normalise-{i:02d} {'-'.join(s)}",
                "step": "normalise",
                "input": v,
                "steps": s,
                "expected": apply(v, s) or None,
            }
            for i, (v, s) in enumerate(cases)
        ]
        + [{"name": f"one-row {r['rule']}", "step": "one-row", **r} for r in rules],
    }


#: The pets.errors class each operation's refusal is (its pets.linkage.errors subclass
#: carries the step): BatchRejectedError, LinkageProofError, DigestMismatchError,
#: IntersectionBelowFloorError.
REJECT_ERRORS = {
    "evaluate": "InvalidInputError",
    "verify": "InvalidProofError",
    "join": "InvalidInputError",
    "digest": "ConflictError",
    "floor": "ThresholdNotMetError",
}


def reject_vectors(oprf: dict) -> dict:
    batch = bytes.fromhex(oprf["batch"])
    first = batch[:33]
    not_on_curve = next(x for x in range(1, 100) if sqrt_mod_p((x**3 + B) % P) is None)
    k_h = int(oprf["k_helper"], 16)
    mid = bytes.fromhex(oprf["helper_output"])
    helper_dleq = oprf["accept"][0]
    wrong_key = (k_h + 1) % N
    wrong_out = b"".join(
        (wrong_key * REF.point_from_bytes(batch[i : i + 33])).to_bytes()
        for i in range(0, len(batch), 33)
    )
    random_point = (12345 * REF.generator).to_bytes()
    one_swapped = mid[:33] + random_point + mid[66:]
    evaluate_cases = [
        ("prefix 04 (uncompressed marker)", b"\x04" + first[1:] + batch[33:], "bad-point"),
        ("x = p", b"\x02" + P.to_bytes(32, "big") + batch[33:], "bad-point"),
        (
            "x not on the curve",
            b"\x02" + not_on_curve.to_bytes(32, "big") + batch[33:],
            "bad-point",
        ),
        ("identity slot", batch[:33] + bytes(33) + batch[66:], "identity-point"),
        ("34-byte tail", batch + b"\x02", "batch-length"),
        ("one point too many", batch, "oversized-batch"),
    ]
    n = len(batch) // 33
    groups = {
        "evaluate": [
            {
                "name": name,
                "batch": data.hex(),
                "max_rows": n - 1 if step == "oversized-batch" else n,
                "step": step,
            }
            for name, data, step in evaluate_cases
        ],
        "verify": [
            {
                "name": "helper applied a different key",
                "outputs": wrong_out.hex(),
                "proof": helper_dleq["proof"],
                "step": "dleq",
            },
            {
                "name": "one output replaced by a random point",
                "outputs": one_swapped.hex(),
                "proof": helper_dleq["proof"],
                "step": "dleq",
            },
            {
                "name": "proof for another holder's context",
                "outputs": mid.hex(),
                "proof": helper_dleq["proof"],
                "context": proof_context("helper", LinkageDomain(DOMAIN), QUERY, "other").hex(),
                "step": "dleq",
            },
            {
                "name": "proof with a flipped response bit",
                "outputs": mid.hex(),
                "proof": bytes.fromhex(helper_dleq["proof"])[:63].hex()
                + f"{bytes.fromhex(helper_dleq['proof'])[63] ^ 1:02x}",
                "step": "dleq",
            },
        ],
        "join": [
            {
                "name": "a holder repeats a pseudonym",
                "uploads": [(b"A" * 16 + b"B" * 16 + b"A" * 16).hex(), (b"A" * 16).hex()],
                "step": "duplicate-pseudonym",
            },
            {
                "name": "a 17-byte upload",
                "uploads": [(b"A" * 17).hex(), (b"A" * 16).hex()],
                "step": "batch-length",
            },
        ],
        "digest": [
            {
                "name": "the other server saw one pseudonym fewer",
                "local": hashlib.sha256(b"set-1").hexdigest(),
                "remote": hashlib.sha256(b"set-2").hexdigest(),
                "step": "digest",
            }
        ],
        "floor": [
            {
                "name": "floor minus one",
                "size": 9,
                "server_floor": 10,
                "query_floor": 3,
                "step": "floor",
            },
            {
                "name": "query raises the floor",
                "size": 10,
                "server_floor": 5,
                "query_floor": 11,
                "step": "floor",
            },
        ],
    }
    return {
        "description": "Inputs every party must refuse (generate.py): 'operation' is the call, "
        "'step' the step its error names (err.step), 'error' the pets.errors class it is; "
        "max_rows is the batch size unless stated",
        "reject": [
            {"operation": operation, "error": REJECT_ERRORS[operation], **case}
            for operation, cases in groups.items()
            for case in cases
        ],
    }


def main() -> None:
    oprf = oprf_vectors()
    files = {
        "oprf.json": oprf,
        "join.json": join_vectors(),
        "normalise.json": normalise_vectors(),
        "reject.json": reject_vectors(oprf),
    }
    for name, content in files.items():
        (HERE / name).write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
