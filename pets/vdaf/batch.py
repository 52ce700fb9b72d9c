"""Batched Prio3 verification: many reports per call, optionally across processes.

An Aggregator verifies reports in batches (DAP's aggregation jobs). The batch
functions here run the draft's ``verify_init`` / ``verifier_shares_to_message``
/ ``verify_next`` over a list of reports and return, per report, either the
result or the :class:`~pets.vdaf.errors.VdafError` that rejected it, so one bad
report never fails its batch.

Per report the work is already vectorised where it pays (numpy decoding of
shares and XOF output, one-reduction dot products, NTT stages as strided
slices); what is shared across a batch is the precomputation (domain
separation tags, Lagrange/twiddle/extension tables, cached per instance).
Field128 arithmetic has no fast numpy form (a 128-bit product needs 16-bit
limbs: 64 limb products per element, slower than one CPython big-int
product; measured, see docs/PRIO3.md), so the remaining lever is cores:
:class:`BatchVerifier` splits a batch over worker processes.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

from pets.vdaf.errors import VdafError
from pets.vdaf.pool import start_time, watch_owner
from pets.vdaf.prio3 import Prio3, VerifyState

InitResult = tuple[VerifyState, bytes] | VdafError


def verify_init_batch(
    vdaf: Prio3,
    verify_key: bytes,
    ctx: bytes,
    agg_id: int,
    nonces: list[bytes],
    public_shares: list[bytes],
    input_shares: list[bytes],
) -> list[InitResult]:
    """``verify_init`` for each report of one Aggregator; errors are returned, not raised."""
    out: list[InitResult] = []
    for nonce, public, share in zip(nonces, public_shares, input_shares, strict=True):
        try:
            out.append(vdaf.verify_init(verify_key, ctx, agg_id, nonce, public, share))
        except VdafError as exc:
            out.append(exc)
    return out


def verifier_shares_to_message_batch(
    vdaf: Prio3, ctx: bytes, verifier_shares: list[list[bytes]]
) -> list[bytes | VdafError]:
    """``verifier_shares_to_message`` per report (``verifier_shares[i]``: all Aggregators')."""
    out: list[bytes | VdafError] = []
    for shares in verifier_shares:
        try:
            out.append(vdaf.verifier_shares_to_message(ctx, shares))
        except VdafError as exc:
            out.append(exc)
    return out


def verify_next_batch(
    vdaf: Prio3, ctx: bytes, states: list[VerifyState], messages: list[bytes]
) -> list[list[int] | VdafError]:
    out: list[list[int] | VdafError] = []
    for state, msg in zip(states, messages, strict=True):
        try:
            out.append(vdaf.verify_next(ctx, state, msg))
        except VdafError as exc:
            out.append(exc)
    return out


def _init_chunk(args: tuple[Any, ...]) -> list[InitResult]:
    return verify_init_batch(*args)


def _msg_chunk(args: tuple[Any, ...]) -> list[bytes | VdafError]:
    return verifier_shares_to_message_batch(*args)


def _split(n: int, parts: int) -> list[slice]:
    step = -(-n // parts) if n else 1
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


class BatchVerifier:
    """Batch verification over ``workers`` processes (``workers=1``: in-process).

    Use as a context manager; the pool (``forkserver`` start method, safe in a
    threaded server) is created once and reused across batches.
    """

    def __init__(self, vdaf: Prio3, workers: int = 1) -> None:
        self.vdaf = vdaf
        self.workers = max(1, workers)
        self._pool: Executor | None = None
        if self.workers > 1:
            ctx = multiprocessing.get_context("forkserver")
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=ctx,
                initializer=watch_owner,  # workers exit if this process dies unclosed
                initargs=(os.getpid(), start_time(os.getpid())),
            )

    def __enter__(self) -> BatchVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def verify_init(
        self,
        verify_key: bytes,
        ctx: bytes,
        agg_id: int,
        nonces: list[bytes],
        public_shares: list[bytes],
        input_shares: list[bytes],
    ) -> list[InitResult]:
        if self._pool is None or len(nonces) < 2 * self.workers:
            return verify_init_batch(
                self.vdaf, verify_key, ctx, agg_id, nonces, public_shares, input_shares
            )
        jobs = [
            (self.vdaf, verify_key, ctx, agg_id, nonces[s], public_shares[s], input_shares[s])
            for s in _split(len(nonces), self.workers)
        ]
        out: list[InitResult] = []
        for part in self._pool.map(_init_chunk, jobs):
            out += part
        return out

    def verifier_shares_to_message(
        self, ctx: bytes, verifier_shares: list[list[bytes]]
    ) -> list[bytes | VdafError]:
        if self._pool is None or len(verifier_shares) < 2 * self.workers:
            return verifier_shares_to_message_batch(self.vdaf, ctx, verifier_shares)
        jobs = [
            (self.vdaf, ctx, verifier_shares[s]) for s in _split(len(verifier_shares), self.workers)
        ]
        out: list[bytes | VdafError] = []
        for part in self._pool.map(_msg_chunk, jobs):
            out += part
        return out
