"""Where the helper runs Prepare's checks: on its event loop in short slices, or in a thread.

A Prepare batch of the additive protocol (and record linkage, which checks
the same way) costs about 110 µs of signature verification and HPKE opening
per contribution, in OpenSSL calls that keep Python's interpreter lock. In a
worker thread that buys no parallelism (the lock is held either way) and
costs the helper an extra lock hand-off whenever gRPC's threads wake while a
check runs: measured in the throughput benchmark (``contributions_per_s``,
200 holders, 2 cores, loaded), about 15 µs of helper CPU per contribution
beyond the check itself, none of it when the check runs on the event loop.
So these checks run on the loop, :data:`SLICE` contributions at a time (a few
milliseconds), yielding to the loop between slices so other calls are not held
up. Checking a slice is the same as checking the batch: each contribution is
checked on its own (:meth:`pets.protocols.additive.SeedOpener.check`).

A verifying protocol (Prio3, draft-irtf-cfrg-vdaf-13 section 7) checks in a
worker thread as before: its verification is pure-Python field arithmetic that
can take a large part of a second per batch, and its checker collects the
batch's verifier shares as it goes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pets.protocols.base import HelperChecker
from pets.v1 import aggregation_pb2 as pb

SLICE = 16
"""Contributions checked on the event loop before it gets control back (~2 ms)."""

Accepted = dict[str, tuple[bytes, bytes]]


async def check(
    checker: HelperChecker,
    items: Sequence[pb.SealedContribution],
    known: Accepted,
    *,
    in_thread: bool,
) -> tuple[Accepted, list[tuple[str, str]]]:
    """``checker.check(items, known)``: in a worker thread if ``in_thread``, else on the
    event loop, :data:`SLICE` contributions at a time."""
    if in_thread:
        return await asyncio.to_thread(checker.check, items, known)
    accepted: Accepted = {}
    refused: list[tuple[str, str]] = []
    for start in range(0, len(items), SLICE):
        if start:
            await asyncio.sleep(0)  # let the loop serve what arrived meanwhile
        opened, failed = checker.check(items[start : start + SLICE], known)
        accepted.update(opened)
        refused.extend(failed)
    return accepted, refused
