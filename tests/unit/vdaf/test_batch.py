"""Batched verification (pets.vdaf.batch): same results as one report at a time.

A bad report in a batch comes back as its VdafError, and the other reports
still verify. This holds in-process and across two worker processes.
"""

from __future__ import annotations

import pytest

from pets.vdaf import VdafDecodeError, VdafVerifyError, prio3_histogram
from pets.vdaf.batch import (
    BatchVerifier,
    verifier_shares_to_message_batch,
    verify_init_batch,
    verify_next_batch,
)

CTX = b"batch"
KEY = bytes(range(32))


@pytest.mark.parametrize("workers", [1, 2])
def test_batch_matches_single_and_isolates_bad_reports(workers: int) -> None:
    vdaf = prio3_histogram(2, 6, 3)
    nonces = [bytes([i]) * 16 for i in range(12)]
    reports = [vdaf.shard(CTX, i % 6, n) for i, n in enumerate(nonces)]
    publics = [r[0] for r in reports]
    leader = [r[1][0] for r in reports]
    helper = [r[1][1] for r in reports]
    leader[3] = leader[3][:-1]  # does not decode
    helper[5] = bytes([helper[5][0] ^ 1]) + helper[5][1:]  # fails the proof check

    with BatchVerifier(vdaf, workers) as bv:
        r0 = bv.verify_init(KEY, CTX, 0, nonces, publics, leader)
        r1 = bv.verify_init(KEY, CTX, 1, nonces, publics, helper)
        assert isinstance(r0[3], VdafDecodeError)
        pairs = [
            [a[1], b[1]]
            for a, b in zip(r0, r1, strict=True)
            if not isinstance(a, Exception) and not isinstance(b, Exception)
        ]
        msgs = bv.verifier_shares_to_message(CTX, pairs)

    single = verify_init_batch(vdaf, KEY, CTX, 1, nonces, publics, helper)
    for a, b in zip(r1, single, strict=True):
        assert not isinstance(a, Exception) and not isinstance(b, Exception)
        assert a[1] == b[1]
    bad = [i for i, m in enumerate(msgs) if isinstance(m, VdafVerifyError)]
    assert bad == [4]  # report 5 is the 5th surviving report (report 3 dropped)
    good = [i for i in range(12) if i not in (3, 5)]
    states = [r0[i][0] for i in good]  # type: ignore[index]
    ok_msgs = [m for m in msgs if isinstance(m, bytes)]
    outs = verify_next_batch(vdaf, CTX, states, ok_msgs)
    assert all(isinstance(o, list) for o in outs)


def test_verifier_shares_batch_reports_errors() -> None:
    vdaf = prio3_histogram(2, 4, 2)
    out = verifier_shares_to_message_batch(vdaf, CTX, [[b"", b""]])
    assert isinstance(out[0], VdafDecodeError)
    assert out[0].step == "verifier_shares_to_message"


def test_verify_state_crosses_processes_as_its_encoding() -> None:
    """A Histogram state pickles as its encoded output share (the measurement share's
    own bytes, no re-encoding) and unpickles equal, with the same verify_next result."""
    import pickle

    vdaf = prio3_histogram(2, 6, 3)
    nonce = bytes(16)
    public, shares = vdaf.shard(CTX, 2, nonce)
    for agg_id in (0, 1):
        state, _ = vdaf.verify_init(KEY, CTX, agg_id, nonce, public, shares[agg_id])
        data = pickle.dumps(state)
        assert vdaf.field.encode_vec(state.out_share) in data
        copy = pickle.loads(data)
        assert copy == state and copy.out_share == state.out_share
        assert vdaf.encode_verify_state(copy) == vdaf.encode_verify_state(state)
        assert repr(copy) == "VerifyState(<secret>)"
