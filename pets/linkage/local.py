"""The whole linkage core in one process: the reference flow the service distributes.

:func:`link_in_process` runs, for each holder, blind -> helper -> leader ->
finish, then the join, with the exact calls the service makes on each side
(the service adds transport, signatures, certificates, replay checks and the
secret sharing of values). Tests compare it with a plaintext join, and
``pets.devtools.bench_linkage`` times it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pets.linkage.dleq import proof_context
from pets.linkage.domain import LinkageDomain
from pets.linkage.holder import Upload, blind, finish, verify_evaluations
from pets.linkage.join import Match, match
from pets.linkage.keys import KeyShare
from pets.linkage.server import evaluate
from pets.zk.rng import DEFAULT_RNG, RandomSource


@dataclass(frozen=True)
class LocalRun:
    """Every holder's upload and the servers' matched set."""

    uploads: tuple[Upload, ...]
    matched: Match


def link_in_process(
    holder_ids: Sequence[Sequence[bytes]],
    domain: LinkageDomain,
    query_id: str,
    *,
    leader: KeyShare,
    helper: KeyShare,
    max_rows: int,
    verified: bool = False,
    workers: int = 1,
    rng: RandomSource = DEFAULT_RNG,
) -> LocalRun:
    """Link the holders' (already normalised, one-per-person) identifiers in memory."""
    uploads = []
    for h, ids in enumerate(holder_ids):
        holder = f"holder-{h}"
        batch, state = blind(ids, domain, rng=rng, workers=workers)
        ctx_h = proof_context("helper", domain, query_id, holder)
        ctx_l = proof_context("leader", domain, query_id, holder)
        mid = evaluate(
            batch, helper, max_rows=max_rows, prove=verified, context=ctx_h, workers=workers
        )
        out = evaluate(
            mid.outputs, leader, max_rows=max_rows, prove=verified, context=ctx_l, workers=workers
        )
        if verified:
            assert mid.proof is not None and out.proof is not None
            verify_evaluations(
                batch,
                mid.outputs,
                out.outputs,
                helper_public_key=helper.public_key,
                helper_proof=mid.proof,
                helper_context=ctx_h,
                leader_public_key=leader.public_key,
                leader_proof=out.proof,
                leader_context=ctx_l,
            )
        uploads.append(finish(out.outputs, state, domain, query_id, rng=rng, workers=workers))
    matched = match([u.pseudonyms for u in uploads])
    return LocalRun(tuple(uploads), matched)
