"""Hypothesis properties of pets.vdaf's Prio3 (draft-irtf-cfrg-vdaf-20 §7).

- Completeness: an honest measurement always verifies and the unsharded
  aggregate equals the plaintext sum, for random variants, parameters, share
  counts, keys, nonces and contexts.
- Soundness against tampering: changing any one field element of the Leader's
  input share, or any byte of a Helper seed, a blind or a joint-randomness part,
  makes verification fail with a VdafVerifyError naming its step.
- Strict decoding: arbitrary bytes in any inbound message either decode or
  raise a VdafError naming the step; never IndexError/ValueError from numpy.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pets.vdaf import (
    Field64,
    Field128,
    Prio3,
    VdafDecodeError,
    VdafError,
    VdafParameterError,
    VdafVerifyError,
    prio3_bounded_vec,
    prio3_count,
    prio3_histogram,
    prio3_multihot_count_vec,
    prio3_sum,
    prio3_sum_vec,
    prio3_sum_vec_with_multiproof,
)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def instances(draw: st.DrawFn) -> tuple[Prio3, Any, list[Any]]:
    """(vdaf, measurement strategy draw, expected-sum function inputs)."""
    shares = draw(st.integers(2, 4))
    kind = draw(
        st.sampled_from(
            ["count", "sum", "sumvec", "histogram", "multihot", "bounded", "multiproof"]
        )
    )
    n = draw(st.integers(1, 4))
    meas: list[Any]
    if kind == "count":
        vdaf = prio3_count(shares)
        meas = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    elif kind == "sum":
        mx = draw(st.integers(1, 2**40))
        vdaf = prio3_sum(shares, mx)
        meas = draw(st.lists(st.integers(0, mx), min_size=n, max_size=n))
    elif kind in ("sumvec", "multiproof"):
        length = draw(st.integers(1, 6))
        mx = draw(st.integers(1, 1000))
        chunk = draw(st.integers(1, 7))
        if kind == "sumvec":
            vdaf = prio3_sum_vec(shares, length, mx, chunk)
        else:
            vdaf = prio3_sum_vec_with_multiproof(
                shares, draw(st.sampled_from([Field64, Field128])), 3, length, mx, chunk
            )
        meas = draw(
            st.lists(
                st.lists(st.integers(0, mx), min_size=length, max_size=length),
                min_size=n,
                max_size=n,
            )
        )
    elif kind == "histogram":
        length = draw(st.integers(1, 12))
        vdaf = prio3_histogram(shares, length, draw(st.integers(1, 5)))
        meas = draw(st.lists(st.integers(0, length - 1), min_size=n, max_size=n))
    elif kind == "multihot":
        length = draw(st.integers(1, 8))
        mw = draw(st.integers(1, length))
        vdaf = prio3_multihot_count_vec(shares, length, mw, draw(st.integers(1, 5)))
        meas = []
        for _ in range(n):
            ones = draw(st.sets(st.integers(0, length - 1), max_size=mw))
            meas.append([i in ones for i in range(length)])
    else:
        bounds = draw(st.lists(st.integers(1, 2**33), min_size=1, max_size=5))
        field = draw(st.sampled_from([Field64, Field128]))
        vdaf = prio3_bounded_vec(shares, bounds, draw(st.integers(1, 6)), field)
        meas = [[draw(st.integers(0, b)) for b in bounds] for _ in range(n)]
    return vdaf, kind, meas


def expected(kind: str, vdaf: Prio3, meas: list[Any]) -> Any:
    if kind in ("count", "sum"):
        return sum(meas)
    if kind == "histogram":
        return [sum(1 for m in meas if m == i) for i in range(vdaf.flp.OUTPUT_LEN)]
    return [sum(int(m[i]) for m in meas) for i in range(vdaf.flp.OUTPUT_LEN)]


def run_report(
    vdaf: Prio3, key: bytes, ctx: bytes, nonce: bytes, public: bytes, inputs: list[bytes]
) -> list[list[int]]:
    states, vshares = [], []
    for j in range(vdaf.SHARES):
        s, v = vdaf.verify_init(key, ctx, j, nonce, public, inputs[j])
        states.append(s)
        vshares.append(v)
    msg = vdaf.verifier_shares_to_message(ctx, vshares)
    return [vdaf.verify_next(ctx, s, msg) for s in states]


@SETTINGS
@given(inst=instances(), key=st.binary(min_size=32, max_size=32), ctx=st.binary(max_size=20))
def test_honest_reports_verify_and_aggregate(
    inst: tuple[Prio3, str, list[Any]], key: bytes, ctx: bytes
) -> None:
    vdaf, kind, meas = inst
    outs: list[list[list[int]]] = [[] for _ in range(vdaf.SHARES)]
    for i, m in enumerate(meas):
        nonce = bytes([i]) * 16
        public, inputs = vdaf.shard(ctx, m, nonce)
        for j, o in enumerate(run_report(vdaf, key, ctx, nonce, public, inputs)):
            outs[j].append(o)
    agg = [vdaf.encode_agg_share(vdaf.aggregate(o)) for o in outs]
    assert vdaf.unshard(agg, len(meas)) == expected(kind, vdaf, meas)


@SETTINGS
@given(inst=instances(), data=st.data())
def test_any_tampering_is_rejected(inst: tuple[Prio3, str, list[Any]], data: st.DataObject) -> None:
    vdaf, _kind, meas = inst
    key, ctx, nonce = bytes(range(32)), b"pets", bytes(16)
    public, inputs = vdaf.shard(ctx, meas[0], nonce)
    targets = ["leader_element", "helper_seed"]
    if vdaf.uses_joint_rand:
        targets += ["leader_blind", "helper_blind", "public_share"]
    target = data.draw(st.sampled_from(targets))
    s = vdaf.SEED_SIZE
    if target == "leader_element":
        f = vdaf.field
        body_len = vdaf.flp.MEAS_LEN + vdaf.flp.PROOF_LEN * vdaf.PROOFS
        idx = data.draw(st.integers(0, body_len - 1))
        delta = data.draw(st.integers(1, f.MODULUS - 1))
        raw = bytearray(inputs[0])
        sl = slice(idx * f.ENCODED_SIZE, (idx + 1) * f.ENCODED_SIZE)
        old = int.from_bytes(raw[sl], "little")
        raw[sl] = ((old + delta) % f.MODULUS).to_bytes(f.ENCODED_SIZE, "little")
        inputs[0] = bytes(raw)
    else:
        pos = data.draw(st.integers(0, s - 1))
        bit = 1 << data.draw(st.integers(0, 7))
        if target == "public_share":
            agg = data.draw(st.integers(0, vdaf.SHARES - 1))
            raw = bytearray(public)
            raw[agg * s + pos] ^= bit
            public = bytes(raw)
        else:
            agg = 0 if target == "leader_blind" else data.draw(st.integers(1, vdaf.SHARES - 1))
            raw = bytearray(inputs[agg])
            offset = len(raw) - s if target.endswith("blind") else 0
            raw[offset + pos] ^= bit
            inputs[agg] = bytes(raw)
    with pytest.raises(VdafVerifyError) as err:
        run_report(vdaf, key, ctx, nonce, public, inputs)
    assert err.value.step in ("verifier_shares_to_message", "verify_next")


@SETTINGS
@given(
    which=st.sampled_from(["public", "input0", "input1", "vshare", "message", "agg"]),
    blob=st.binary(max_size=200),
    jr=st.booleans(),
)
def test_arbitrary_bytes_raise_only_vdaf_errors(which: str, blob: bytes, jr: bool) -> None:
    vdaf = prio3_histogram(2, 3, 2) if jr else prio3_sum(2, 7)
    key, ctx, nonce = bytes(32), b"", bytes(16)
    public, inputs = vdaf.shard(ctx, 1, nonce)
    try:
        if which == "public":
            vdaf.verify_init(key, ctx, 0, nonce, blob, inputs[0])
        elif which.startswith("input"):
            agg = int(which[-1])
            vdaf.verify_init(key, ctx, agg, nonce, public, blob)
        elif which == "vshare":
            _, good = vdaf.verify_init(key, ctx, 0, nonce, public, inputs[0])
            vdaf.verifier_shares_to_message(ctx, [good, blob])
        elif which == "message":
            state, _ = vdaf.verify_init(key, ctx, 0, nonce, public, inputs[0])
            vdaf.verify_next(ctx, state, blob)
        else:
            vdaf.unshard([blob, blob], 1)
    except VdafError as exc:
        assert exc.step in (
            "verify_init",
            "verifier_shares_to_message",
            "verify_next",
            "unshard",
        )


def test_decoding_names_the_step_and_checks_canonical_elements() -> None:
    vdaf = prio3_sum(2, 255)
    key, ctx, nonce = bytes(32), b"c", bytes(16)
    public, inputs = vdaf.shard(ctx, 200, nonce)
    with pytest.raises(VdafDecodeError, match=r"^verify_init: input share has the wrong length"):
        vdaf.verify_init(key, ctx, 0, nonce, public, inputs[0] + b"\x00")
    bad = Field64.MODULUS.to_bytes(8, "little") + inputs[0][8:]
    with pytest.raises(VdafDecodeError, match="non-canonical"):
        vdaf.verify_init(key, ctx, 0, nonce, public, bad)
    with pytest.raises(VdafDecodeError, match="public share must be empty"):
        vdaf.verify_init(key, ctx, 1, nonce, b"x", inputs[1])
    with pytest.raises(VdafDecodeError, match="nonce"):
        vdaf.verify_init(key, ctx, 1, nonce[:-1], public, inputs[1])
    with pytest.raises(VdafParameterError, match="aggregator id"):
        vdaf.verify_init(key, ctx, 2, nonce, public, inputs[1])
    s0, v0 = vdaf.verify_init(key, ctx, 0, nonce, public, inputs[0])
    _, v1 = vdaf.verify_init(key, ctx, 1, nonce, public, inputs[1])
    with pytest.raises(VdafDecodeError, match="wrong number of verifier shares"):
        vdaf.verifier_shares_to_message(ctx, [v0])
    with pytest.raises(VdafDecodeError, match="non-canonical"):
        vdaf.verifier_shares_to_message(ctx, [v0, b"\xff" * len(v1)])
    msg = vdaf.verifier_shares_to_message(ctx, [v0, v1])
    assert msg == b""
    with pytest.raises(VdafDecodeError, match=r"^verify_next"):
        vdaf.verify_next(ctx, s0, b"\x00")
    with pytest.raises(VdafDecodeError, match=r"^unshard"):
        vdaf.unshard([b"\x00" * 7, b"\x00" * 8], 1)


def test_client_side_measurement_checks() -> None:
    with pytest.raises(VdafParameterError, match=r"^shard"):
        prio3_sum(2, 10).shard(b"", 11, bytes(16))
    with pytest.raises(VdafParameterError, match=r"^shard"):
        prio3_histogram(2, 4).shard(b"", 4, bytes(16))
    with pytest.raises(VdafParameterError, match=r"^shard"):
        prio3_bounded_vec(2, [3, 9]).shard(b"", [4, 0], bytes(16))
    with pytest.raises(VdafParameterError, match=r"^shard"):
        prio3_count().shard(b"", 1, bytes(15))
    with pytest.raises(VdafParameterError):
        prio3_count(256)
    with pytest.raises(VdafParameterError):
        prio3_bounded_vec(2, [0, 3])


def test_255_shares() -> None:
    vdaf = prio3_count(255)
    public, inputs = vdaf.shard(b"", 1, bytes(16))
    outs = run_report(vdaf, bytes(32), b"", bytes(16), public, inputs)
    agg = [vdaf.encode_agg_share(o) for o in outs]
    assert vdaf.unshard(agg, 1) == 1


@pytest.mark.parametrize("jr", [False, True])
def test_verify_state_round_trips(jr: bool) -> None:
    vdaf = prio3_histogram(2, 5, 2) if jr else prio3_sum(2, 100)
    key, ctx, nonce = bytes(32), b"s", bytes(16)
    public, inputs = vdaf.shard(ctx, 3, nonce)
    s0, v0 = vdaf.verify_init(key, ctx, 0, nonce, public, inputs[0])
    _, v1 = vdaf.verify_init(key, ctx, 1, nonce, public, inputs[1])
    msg = vdaf.verifier_shares_to_message(ctx, [v0, v1])
    restored = vdaf.decode_verify_state(vdaf.encode_verify_state(s0))
    assert vdaf.verify_next(ctx, restored, msg) == vdaf.verify_next(ctx, s0, msg)
    with pytest.raises(VdafDecodeError, match=r"^verify_next"):
        vdaf.decode_verify_state(vdaf.encode_verify_state(s0)[:-1])
