"""Server side of the linkage OPRF: apply a key share to a holder's batch (issue 16, step 3).

The helper receives the holder's blinded batch (relayed by the leader) and
returns k_H·B_i; the leader applies k_L to the helper's output. Both run
:func:`evaluate`, which checks what the pure core can check:

* the batch is whole 33-byte points and n <= ``max_rows`` (before any parsing);
* every point decodes strictly and is not the identity
  (:mod:`pets.linkage.points`);

and, in verified mode, returns a batched DLEQ proof (:mod:`pets.linkage.dleq`)
against the server's announced ``k_X·G``. What needs state is the service's
job: the holder's certificate and signature over the batch, and that this is
the first batch of this holder for this query (see ``docs/LINKAGE.md``).

The key share is secret, so every k_X·B_i is the constant-time
:func:`~pets.linkage.points.multiply_secret` (``ecmult_const``), never
coincurve's variable-time ``multiply``: applying one key to a whole batch
would otherwise let a holder time it on chosen points as often as it likes.

The output has the input's order; a point's index names it in any error.
Work is chunked (:data:`~pets.linkage.points.DEFAULT_CHUNK` points at a time), so a
service can stream a 10^6-point batch chunk by chunk: k·B is computed point
by point, so evaluating chunks separately gives the same bytes; only the
DLEQ proof covers a whole batch (prove over the concatenation, or per chunk
with the chunk number in ``context``).
"""

from __future__ import annotations

from dataclasses import dataclass

from pets.linkage.dleq import prove_batch
from pets.linkage.domain import as_bytes
from pets.linkage.keys import KeyShare
from pets.linkage.points import DEFAULT_CHUNK, multiply_batch
from pets.zk.rng import DEFAULT_RNG, RandomSource


@dataclass(frozen=True)
class Evaluation:
    """The evaluated batch and, in verified mode, the 64-byte DLEQ proof."""

    outputs: bytes
    proof: bytes | None = None

    def __repr__(self) -> str:
        proof = "none" if self.proof is None else f"{len(self.proof)} bytes"
        return f"Evaluation(points={len(self.outputs) // 33}, proof={proof})"


def evaluate(
    batch: bytes,
    key: KeyShare,
    *,
    max_rows: int,
    prove: bool = False,
    context: bytes = b"",
    chunk: int = DEFAULT_CHUNK,
    workers: int = 1,
    rng: RandomSource = DEFAULT_RNG,
) -> Evaluation:
    """``k_X · B_i`` for every point of ``batch``, checked; with a DLEQ proof if ``prove``.

    Raises :class:`~pets.linkage.errors.BatchRejectedError` (steps
    ``batch-length``, ``oversized-batch``, ``bad-point``, ``identity-point``).
    ``context`` binds the proof to the query, the holder and the role; the
    verifier must pass the same bytes.
    """
    batch = as_bytes(batch, "a batch")
    outputs = multiply_batch(batch, key.scalar, max_rows=max_rows, chunk=chunk, workers=workers)
    if not prove:
        return Evaluation(outputs)
    return Evaluation(outputs, prove_batch(key, batch, outputs, context=context, rng=rng))
