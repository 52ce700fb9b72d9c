"""Verification on the worker pool (pets.vdaf.pool): the same bytes as in-process.

The service's leader runs ``verify_init`` there and its helper the whole
verification; every result must equal what :class:`~pets.vdaf.prio3.Prio3`
computes one report at a time, a bad report must come back as its VdafError
naming the step (the others still verify), and the answer must not depend on
whether real worker processes or the calling thread did the work.
"""

from __future__ import annotations

import os

import pytest

from pets.vdaf import VdafDecodeError, VdafVerifyError, pool, prio3_bounded_vec

CTX = b"pool"
KEY = bytes(range(32))
BOUNDS = (3, 1000, 7)


def _ref() -> pool.VdafRef:
    return (_make, (BOUNDS,))


def _make(bounds: tuple[int, ...]) -> object:
    return prio3_bounded_vec(2, list(bounds))


def _reports(n: int) -> tuple[list[bytes], list[bytes], list[bytes], list[bytes]]:
    vdaf = prio3_bounded_vec(2, list(BOUNDS))
    nonces = [bytes([i]) * 16 for i in range(n)]
    shards = [vdaf.shard(CTX, [i % 4, 17 * i, i % 8], nonce) for i, nonce in enumerate(nonces)]
    return nonces, [s[0] for s in shards], [s[1][0] for s in shards], [s[1][1] for s in shards]


@pytest.mark.parametrize("workers", ["0", "2"])
def test_pool_matches_in_process_and_isolates_bad_reports(
    workers: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PETS_VDAF_WORKERS", workers)
    monkeypatch.setattr(pool, "_pool", None)
    monkeypatch.setattr(pool, "_pool_failed", False)
    monkeypatch.setattr(pool, "POOL_MIN_ITEMS", 1)  # these small batches use the workers too
    vdaf = prio3_bounded_vec(2, list(BOUNDS))
    nonces, publics, leader, helper = _reports(7)
    leader[2] = leader[2][:-1]  # does not decode (at verify_init)
    helper[4] = bytes([helper[4][0] ^ 1]) + helper[4][1:]  # fails the proof check
    try:
        init = pool.run_split(
            pool.verify_init_encoded,
            _ref(),
            KEY,
            CTX,
            0,
            list(zip(nonces, publics, leader, strict=True)),
        )
        assert isinstance(init[2], VdafDecodeError) and init[2].step == "verify_init"
        keep = [i for i in range(7) if i != 2]
        full = pool.run_split(
            pool.verify_encoded,
            _ref(),
            KEY,
            CTX,
            1,
            [(nonces[i], publics[i], helper[i], [init[i][0]], b"") for i in keep],  # type: ignore[index]
        )
    finally:
        if pool._pool is not None:
            pool._pool.shutdown()
    for i, result in zip(keep, full, strict=True):
        state, own = vdaf.verify_init(KEY, CTX, 1, nonces[i], publics[i], helper[i])
        if i == 4:
            assert isinstance(result, VdafVerifyError)
            assert result.step == "verifier_shares_to_message"
            continue
        leader_state, leader_vs = vdaf.verify_init(KEY, CTX, 0, nonces[i], publics[i], leader[i])
        assert init[i] == (leader_vs, vdaf.encode_verify_state(leader_state))
        message = vdaf.verifier_shares_to_message(CTX, [leader_vs, own])
        assert result == (vdaf.encode_out_share(vdaf.verify_next(CTX, state, message)), own)


def test_a_different_verifier_message_fails_the_joint_randomness_check() -> None:
    nonces, publics, leader, helper = _reports(1)
    (init,) = pool.verify_init_encoded(_ref(), KEY, CTX, 0, [(nonces[0], publics[0], leader[0])])
    assert not isinstance(init, Exception)
    (result,) = pool.verify_encoded(
        _ref(), KEY, CTX, 1, [(nonces[0], publics[0], helper[0], [init[0]], bytes(32))]
    )
    assert isinstance(result, VdafVerifyError)
    assert str(result) == "verify_next: joint randomness check failed"


def test_messages_match_in_process() -> None:
    vdaf = prio3_bounded_vec(2, list(BOUNDS))
    nonces, publics, leader, helper = _reports(3)
    pairs = []
    for i in range(3):
        shares = [leader[i], helper[i]]
        pairs.append(
            [vdaf.verify_init(KEY, CTX, j, nonces[i], publics[i], shares[j])[1] for j in (0, 1)]
        )
    pairs[1][0] = pairs[1][0][:-1]
    out = pool.run_split(pool.messages_encoded, _ref(), b"", CTX, 0, pairs)
    assert out[0] == vdaf.verifier_shares_to_message(CTX, pairs[0])
    assert isinstance(out[1], VdafDecodeError) and out[1].step == "verifier_shares_to_message"
    assert out[2] == vdaf.verifier_shares_to_message(CTX, pairs[2])


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="the owner check reads /proc")
def test_workers_exit_when_their_owner_is_killed() -> None:
    """SIGKILL of the process that owns the pool (no shutdown, no atexit) must not
    leave its verification workers running."""
    import signal
    import subprocess
    import sys
    import time

    script = (
        "import os, sys\n"
        "from pets.vdaf import pool\n"
        "if __name__ == '__main__':\n"
        "    p = pool.shared_pool()\n"
        "    pool.warm()\n"
        "    p.submit(pool._noop).result()\n"
        "    print(' '.join(str(pid) for pid in p._processes), flush=True)\n"
        "    sys.stdin.read()\n"
    )
    env = dict(os.environ, PETS_VDAF_WORKERS="2")
    owner = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # its resource tracker reports the killed semaphores
        env=env,
    )
    assert owner.stdout is not None
    workers = [int(pid) for pid in owner.stdout.readline().split()]
    assert len(workers) == 2
    owner.send_signal(signal.SIGKILL)
    owner.wait()

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        with open(f"/proc/{pid}/stat") as f:  # a zombie waiting for its reaper is gone too
            return f.read().rpartition(")")[2].split()[0] != "Z"

    deadline = time.monotonic() + 15
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in workers)


def test_a_trickle_does_not_start_the_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Below POOL_MIN_ITEMS reports, and while no pool runs, verification stays in the
    calling thread: a server that never sees a burst never starts worker processes."""
    monkeypatch.setattr(pool, "_pool", None)
    monkeypatch.setattr(pool, "_pool_failed", False)
    nonces, publics, leader, _ = _reports(3)
    items = list(zip(nonces, publics, leader, strict=True))
    out = pool.run_split(pool.verify_init_encoded, _ref(), KEY, CTX, 0, items)
    assert len(out) == 3 and not any(isinstance(r, Exception) for r in out)
    assert pool._pool is None and pool.pool_for(pool.POOL_MIN_ITEMS - 1) is None
