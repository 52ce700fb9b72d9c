"""Runner for the draft's JSON test vectors (draft-irtf-cfrg-vdaf-20 Appendix C).

:func:`check_vector` executes a vector's ``operations`` in order against the
variant named by the file (``Prio3Histogram_1.json`` -> ``Prio3Histogram``),
comparing every output byte for byte, and for an operation marked
``"success": false`` requiring a :class:`~pets.vdaf.errors.VdafError` whose
``step`` is that operation. It takes parsed JSON, never a path, so the core
does no I/O; tests and the independent checker load the files.
"""

from __future__ import annotations

import re
from typing import Any

from pets.vdaf.errors import VdafError
from pets.vdaf.prio3 import Prio3, VerifyState
from pets.vdaf.variants import from_params


class VectorMismatch(AssertionError):
    """A vector's expected value differs from what pets.vdaf computed."""


_NAME = re.compile(r"^(Prio3[A-Za-z0-9]+?)_(?:bad_[a-z0-9_]+|\d+)$")


def variant_of(filename: str) -> str:
    """``Prio3SumVec_0.json`` -> ``Prio3SumVec``; ``Prio3Count_bad_x.json`` -> ``Prio3Count``."""
    stem = filename.rsplit("/", 1)[-1].removesuffix(".json")
    m = _NAME.match(stem)
    if not m:
        raise ValueError(f"not a Prio3 vector name: {filename}")
    return m.group(1)


def instance_for(variant: str, doc: dict[str, Any]) -> Prio3:
    params = {k: v for k, v in doc.items() if k not in _NON_PARAMS}
    return from_params(variant, params)


_NON_PARAMS = {
    "agg_param",
    "agg_result",
    "agg_shares",
    "ctx",
    "operations",
    "reports",
    "verify_key",
}


def _eq(what: str, got: bytes, want_hex: str) -> None:
    if got.hex() != want_hex:
        raise VectorMismatch(f"{what}: got {got.hex()[:64]}..., want {want_hex[:64]}...")


def check_vector(variant: str, doc: dict[str, Any]) -> list[str]:
    """Run every operation of one vector; return a log line per operation."""
    vdaf = instance_for(variant, doc)
    ctx = bytes.fromhex(doc["ctx"])
    verify_key = bytes.fromhex(doc["verify_key"])
    reports = doc["reports"]
    states: dict[tuple[int, int], VerifyState] = {}
    out_shares: dict[tuple[int, int], list[int]] = {}
    agg_shares: dict[int, bytes] = {}
    log: list[str] = []

    for op in doc["operations"]:
        name = op["operation"]
        success = op["success"]
        try:
            _run_op(vdaf, doc, op, ctx, verify_key, reports, states, out_shares, agg_shares)
        except VdafError as exc:
            if success:
                raise VectorMismatch(f"{name} failed unexpectedly: {exc}") from exc
            if exc.step != name:
                raise VectorMismatch(f"expected failure at {name}, got it at {exc.step}") from exc
            log.append(f"{name}: rejected as expected ({exc.reason})")
            return log
        else:
            if not success:
                raise VectorMismatch(f"{name} succeeded but the vector says it must fail")
            log.append(f"{name}: ok")
    return log


def _run_op(
    vdaf: Prio3,
    doc: dict[str, Any],
    op: dict[str, Any],
    ctx: bytes,
    verify_key: bytes,
    reports: list[dict[str, Any]],
    states: dict[tuple[int, int], VerifyState],
    out_shares: dict[tuple[int, int], list[int]],
    agg_shares: dict[int, bytes],
) -> None:
    name = op["operation"]
    if name in ("aggregate", "unshard"):
        if name == "aggregate":
            agg_id = op["aggregator_id"]
            shares = [out_shares[(i, agg_id)] for i in range(len(reports))]
            got = vdaf.encode_agg_share(vdaf.aggregate(shares))
            _eq(f"agg_share[{agg_id}]", got, doc["agg_shares"][agg_id])
            agg_shares[agg_id] = got
        else:
            result = vdaf.unshard([bytes.fromhex(h) for h in doc["agg_shares"]], len(reports))
            if result != doc["agg_result"]:
                raise VectorMismatch(f"agg_result: got {result}, want {doc['agg_result']}")
        return

    idx = op["report_index"]
    rep = reports[idx]
    nonce = bytes.fromhex(rep["nonce"])
    if name == "shard":
        public, inputs = vdaf.shard(ctx, rep["measurement"], nonce, bytes.fromhex(rep["rand"]))
        _eq("public_share", public, rep["public_share"])
        for j, share in enumerate(inputs):
            _eq(f"input_share[{j}]", share, rep["input_shares"][j])
    elif name == "verify_init":
        agg_id = op["aggregator_id"]
        state, vshare = vdaf.verify_init(
            verify_key,
            ctx,
            agg_id,
            nonce,
            bytes.fromhex(rep["public_share"]),
            bytes.fromhex(rep["input_shares"][agg_id]),
        )
        _eq(f"verifier_share[{agg_id}]", vshare, rep["verifier_shares"][0][agg_id])
        states[(idx, agg_id)] = state
    elif name == "verifier_shares_to_message":
        rnd = op.get("round", 0)
        vshares = [bytes.fromhex(h) for h in rep["verifier_shares"][rnd]]
        msg = vdaf.verifier_shares_to_message(ctx, vshares)
        _eq("verifier_message", msg, rep["verifier_messages"][rnd])
    elif name == "verify_next":
        agg_id = op["aggregator_id"]
        rnd = op.get("round", 1)
        msg = bytes.fromhex(rep["verifier_messages"][rnd - 1])
        out = vdaf.verify_next(ctx, states[(idx, agg_id)], msg)
        _eq(f"out_share[{agg_id}]", vdaf.encode_out_share(out), rep["out_shares"][agg_id])
        out_shares[(idx, agg_id)] = out
    else:
        raise VectorMismatch(f"unknown operation {name!r}")
