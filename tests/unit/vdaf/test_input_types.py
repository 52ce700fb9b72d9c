"""Untrusted inputs of the wrong Python type are refused with VDAF errors naming the step.

Messages (shares, verifier shares and messages, aggregate shares, verify
states), the nonce, the context and keys may come off the wire or out of a
store; ``None`` or ``str`` there is bad input (:class:`VdafError`, an
:class:`~pets.errors.InvalidInputError`), not a ``TypeError``. ``unshard``
refuses a measurement count below 1.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from pets.vdaf import VdafError, prio3_count, prio3_histogram
from pets.vdaf.prio3 import Prio3

VDAFS = [prio3_count(2), prio3_histogram(2, 4, 2)]  # without and with joint randomness
BAD = [None, "x" * 16, 7]


def _calls(vd: Prio3, bad: Any) -> dict[str, tuple[str, Callable[[], object]]]:
    ctx, nonce = b"ctx", os.urandom(16)
    key = os.urandom(vd.VERIFY_KEY_SIZE)
    pub, shares = vd.shard(ctx, 1, nonce, os.urandom(vd.RAND_SIZE))
    state, _ = vd.verify_init(key, ctx, 0, nonce, pub, shares[0])
    agg = vd.encode_agg_share(vd.agg_init())
    return {
        "shard ctx": ("shard", lambda: vd.shard(bad, 1, nonce)),
        "shard nonce": ("shard", lambda: vd.shard(ctx, 1, bad)),
        "shard rand": ("shard", lambda: vd.shard(ctx, 1, nonce, bad)),
        "verify key": ("verify_init", lambda: vd.verify_init(bad, ctx, 0, nonce, pub, shares[0])),
        "verify ctx": ("verify_init", lambda: vd.verify_init(key, bad, 0, nonce, pub, shares[0])),
        "verify id": ("verify_init", lambda: vd.verify_init(key, ctx, bad, nonce, pub, shares[0])),
        "nonce": ("verify_init", lambda: vd.verify_init(key, ctx, 0, bad, pub, shares[0])),
        "public": ("verify_init", lambda: vd.verify_init(key, ctx, 0, nonce, bad, shares[0])),
        "leader": ("verify_init", lambda: vd.verify_init(key, ctx, 0, nonce, pub, bad)),
        "helper": ("verify_init", lambda: vd.verify_init(key, ctx, 1, nonce, pub, bad)),
        "shares list": (
            "verifier_shares_to_message",
            lambda: vd.verifier_shares_to_message(ctx, bad),
        ),
        "verifier shares": (
            "verifier_shares_to_message",
            lambda: vd.verifier_shares_to_message(ctx, [bad, bad]),
        ),
        "message": ("verify_next", lambda: vd.verify_next(ctx, state, bad)),
        "state": ("verify_next", lambda: vd.decode_verify_state(bad)),
        "agg list": ("unshard", lambda: vd.unshard(bad, 1)),
        "agg shares": ("unshard", lambda: vd.unshard([bad, bad], 1)),
        "count": ("unshard", lambda: vd.unshard([agg, agg], bad)),
    }


@pytest.mark.parametrize("vd", VDAFS, ids=["count", "histogram"])
@pytest.mark.parametrize("bad", BAD, ids=["None", "str", "int"])
def test_wrong_types_are_vdaf_errors(vd: Prio3, bad: Any) -> None:
    for name, (step, call) in _calls(vd, bad).items():
        if (name in ("verify id", "count") and isinstance(bad, int)) or (
            name == "shard rand" and bad is None
        ):
            continue  # valid there: an aggregator id out of range is checked below, 7
            # measurements is a count, and rand=None draws from os.urandom
        with pytest.raises(VdafError) as info:
            call()
        assert info.value.step == step, name
    with pytest.raises(VdafError, match="aggregator id out of range"):
        _calls(vd, 7)["verify id"][1]()


@pytest.mark.parametrize("vd", VDAFS, ids=["count", "histogram"])
@pytest.mark.parametrize("count", [0, -1, True])
def test_unshard_needs_a_positive_measurement_count(vd: Prio3, count: int) -> None:
    agg = vd.encode_agg_share(vd.agg_init())
    with pytest.raises(VdafError, match=r"unshard: .*number of measurements"):
        vd.unshard([agg, agg], count)


def test_bytearray_and_memoryview_are_bytes(vd: Prio3 = VDAFS[1]) -> None:
    ctx, nonce = b"ctx", os.urandom(16)
    key = os.urandom(vd.VERIFY_KEY_SIZE)
    pub, shares = vd.shard(ctx, 1, nonce)
    a = vd.verify_init(
        key,
        bytearray(ctx),  # type: ignore[arg-type]
        0,
        nonce,
        memoryview(pub),  # type: ignore[arg-type]
        bytearray(shares[0]),  # type: ignore[arg-type]
    )
    b = vd.verify_init(key, ctx, 0, nonce, pub, shares[0])
    assert a == b
