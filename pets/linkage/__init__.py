"""Private record linkage: statistics over the join of holders' records (issue 16).

Pure core (no network, no files, no logging of identifiers). Every identifier
becomes a per-query pseudonym under a key k = k_L·k_H split between the two
servers and never assembled, by an oblivious PRF over secp256k1
(2HashDH, Jarecki, Kiayias and Krawczyk, ASIACRYPT 2014; the blinding of
RFC 9497), with RFC 9380 hash-to-curve. The protocol and what it leaks are
in ``docs/LINKAGE.md``. Module by role:

* :mod:`pets.linkage.domain`: identifier domains, DSTs, pseudonyms;
* :mod:`pets.linkage.keys`: per-query key shares (HKDF) and their announcements;
* :mod:`pets.linkage.normalise`, :mod:`pets.linkage.dedup`: schema-declared
  identifier normalisation and one-row-per-person rules;
* :mod:`pets.linkage.holder`: prepare, blind, unblind, pseudonymise, shuffle;
* :mod:`pets.linkage.server`: apply a key share to a batch (with checks and an
  optional batched DLEQ proof, :mod:`pets.linkage.dleq`);
* :mod:`pets.linkage.admission`: the holder's batch signature message and
  first-batch-only bookkeeping;
* :mod:`pets.linkage.join`: match, matched-set digest, floor, sums of shares;
* :mod:`pets.linkage.points`: the batch format and the libsecp256k1 hot paths;
* :mod:`pets.linkage.local`: the whole flow in one process (tests, benchmarks).
"""

from pets.linkage.admission import BatchAdmission, batch_message
from pets.linkage.dleq import proof_context, prove_batch, verify_batch
from pets.linkage.domain import PSEUDONYM_BYTES, LinkageDomain
from pets.linkage.errors import (
    BatchRejectedError,
    DigestMismatchError,
    IntersectionBelowFloorError,
    LinkageProofError,
)
from pets.linkage.holder import (
    BlindState,
    Records,
    Upload,
    blind,
    finish,
    prepare_records,
    verify_evaluations,
)
from pets.linkage.join import (
    Match,
    check_digests,
    check_floor,
    effective_floor,
    match,
    matched_set_digest,
    sum_matched,
)
from pets.linkage.keys import KeyShare, announcement_message, derive_key_share
from pets.linkage.server import Evaluation, evaluate

__all__ = [
    "PSEUDONYM_BYTES",
    "BatchAdmission",
    "BatchRejectedError",
    "BlindState",
    "DigestMismatchError",
    "Evaluation",
    "IntersectionBelowFloorError",
    "KeyShare",
    "LinkageDomain",
    "LinkageProofError",
    "Match",
    "Records",
    "Upload",
    "announcement_message",
    "batch_message",
    "blind",
    "check_digests",
    "check_floor",
    "derive_key_share",
    "effective_floor",
    "evaluate",
    "finish",
    "match",
    "matched_set_digest",
    "prepare_records",
    "proof_context",
    "prove_batch",
    "sum_matched",
    "verify_batch",
    "verify_evaluations",
]
