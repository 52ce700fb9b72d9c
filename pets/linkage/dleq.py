"""Batched DLEQ proofs: a server shows it applied exactly its announced key share to a batch.

Statement, for a server with public key share Y = k·G, inputs B_1..B_n and
outputs Z_1..Z_n: Z_i = k·B_i for every i, with the same k as in Y.

Batching by a random linear combination, as in RFC 9497 (OPRF), section 2.2.1
(``ComputeComposites``) and Privacy Pass (Davidson et al., PoPETs 2018,
section 3.3): weights d_i are drawn from a hash of *everything* (Y, the
context, n, every B_i and every Z_i), the composites are M = Σ d_i·B_i and
Z = Σ d_i·Z_i, and one Chaum-Pedersen proof (CRYPTO 1992) shows
log_G(Y) = log_M(Z). If some Z_i ≠ k·B_i, then Z - k·M = Σ d_i·(Z_i - k·B_i)
vanishes for at most one value of each d_i, so a cheating server passes with
probability at most 2^-128 per hash evaluation (d_i are 128-bit; the
small-exponent batch test of Bellare, Garay and Rabin, EUROCRYPT 1998).
Unlike RFC 9497, the seed binds all elements up front, and the weights come
from one SHAKE-256 call instead of one hash per element.

The prover computes Z = k·M (one multiplication) instead of Σ d_i·Z_i; the
verifier computes both sums with the bucket method of
:func:`pets.linkage.points.multi_mul`. The sigma proof itself is the ZK kit's
:class:`pets.zk.schnorr.DLEQRelation` (64 bytes: challenge and response) with
the seed as its context.
"""

from __future__ import annotations

import hashlib

import numpy as np
from coincurve import PublicKey

from pets import lengthprefix
from pets.errors import InvalidInputError, InvalidProofError
from pets.linkage.domain import LinkageDomain, as_bytes, query_bytes
from pets.linkage.errors import LinkageProofError
from pets.linkage.keys import KeyShare
from pets.linkage.points import add, batch_count, decode_point, multi_mul, multiply_secret
from pets.zk.group import Group, Point, get_group
from pets.zk.rng import DEFAULT_RNG, RandomSource
from pets.zk.schnorr import DLEQRelation

SEED_LABEL = b"pets/linkage/v1/batched-dleq-seed"
#: Size of a proof: challenge and response, 32 bytes each.
PROOF_BYTES = 64
#: Points decoded and summed at a time for a composite (about 10 MB of point objects).
COMPOSITE_CHUNK = 65536


# 8-byte lengths: a batch of points hashed into the seed may pass 4 GiB.
_LENGTH_BYTES = 8


def proof_context(role: str, domain: LinkageDomain, query_id: str | bytes, holder: str) -> bytes:
    """The context a server's proof is bound to: its role, the domain, the query, the holder.

    Both sides build it from what they know, so a proof made for one holder's
    batch (or one role's step) verifies for no other.
    """
    parts = (
        b"pets/linkage/v1/dleq-context",
        role.encode("utf-8"),
        domain.name.encode("ascii"),
        query_bytes(query_id),
        holder.encode("utf-8"),
    )
    return lengthprefix.join(parts, _LENGTH_BYTES)


def composite_seed(public_key: bytes, context: bytes, inputs: bytes, outputs: bytes) -> bytes:
    """SHA-256 over the label, Y, the context and both batches, each length-prefixed (so n too)."""
    h = hashlib.sha256(lengthprefix.encode(SEED_LABEL, _LENGTH_BYTES))
    for part in (public_key, context, inputs, outputs):
        h.update(lengthprefix.encode(as_bytes(part, "a DLEQ input"), _LENGTH_BYTES))
    return h.digest()


def composite_weights(seed: bytes, n: int) -> np.ndarray:
    """n 128-bit weights as an (n, 16) uint8 array (big-endian), from SHAKE-256(seed)."""
    stream = hashlib.shake_256(b"pets/linkage/v1/batched-dleq-weights" + seed).digest(16 * n)
    return np.frombuffer(stream, dtype=np.uint8).reshape(n, 16)


def composite(batch: bytes, weights: np.ndarray) -> PublicKey | None:
    """``Σ d_i·P_i`` over a batch, decoded and summed chunk by chunk (bounded memory)."""
    n = len(batch) // 33
    acc: PublicKey | None = None
    for start in range(0, n, COMPOSITE_CHUNK):
        stop = min(n, start + COMPOSITE_CHUNK)
        points = [decode_point(batch[i * 33 : i * 33 + 33], i) for i in range(start, stop)]
        acc = add(acc, multi_mul(points, weights[start:stop]))
    return acc


def _statement(group: Group, y: bytes, m: PublicKey | None, z: PublicKey | None) -> DLEQRelation:
    if m is None or z is None:
        # Probability ~2^-128 for honest inputs: the weights are fixed after the batch.
        raise LinkageProofError("a composite point is the identity")
    return DLEQRelation(
        group.point_from_bytes(y),
        group.generator,
        Point(group, z),
        Point(group, m),
    )


def prove_batch(
    key: KeyShare,
    inputs: bytes,
    outputs: bytes,
    *,
    context: bytes,
    rng: RandomSource = DEFAULT_RNG,
) -> bytes:
    """A 64-byte proof that ``outputs`` is ``key`` applied to ``inputs`` (prover role).

    An empty batch has the empty proof (there is nothing to prove).
    """
    inputs, outputs = as_bytes(inputs, "a batch"), as_bytes(outputs, "a batch")
    n = batch_count(inputs, len(inputs) // 33)
    if len(outputs) != len(inputs):
        raise InvalidInputError("a DLEQ proof needs as many outputs as inputs")
    if n == 0:
        return b""
    group = get_group("coincurve")
    y = key.public_key
    seed = composite_seed(y, context, inputs, outputs)
    m = composite(inputs, composite_weights(seed, n))
    z = None if m is None else PublicKey(multiply_secret(m, key.scalar_bytes))
    relation = _statement(group, y, m, z)
    return relation.prove(key.scalar, context=seed, rng=rng).to_bytes()


def verify_batch(
    public_key: bytes,
    inputs: bytes,
    outputs: bytes,
    proof: bytes,
    *,
    context: bytes,
    max_rows: int,
) -> None:
    """None if ``proof`` shows ``outputs = k·inputs`` for the k of ``public_key``; else raises.

    Malformed batches raise :class:`~pets.linkage.errors.BatchRejectedError`
    (naming the step); a proof that does not verify, or a public key that is
    not a valid point, raises :class:`~pets.linkage.errors.LinkageProofError`.
    """
    inputs, outputs = as_bytes(inputs, "a batch"), as_bytes(outputs, "a batch")
    public_key, proof = as_bytes(public_key, "a public key"), as_bytes(proof, "a proof")
    n = batch_count(inputs, max_rows)
    if len(outputs) != len(inputs):
        raise LinkageProofError("the outputs do not match the inputs")
    if n == 0:
        if proof:
            raise LinkageProofError("an empty batch has the empty proof")
        return
    if len(proof) != PROOF_BYTES:
        raise LinkageProofError("a proof is 64 bytes")
    try:
        if len(public_key) != 33:
            raise InvalidInputError("wrong length")
        decode_point(public_key, 0)
    except InvalidInputError:
        raise LinkageProofError("the public key share is not a point") from None
    group = get_group("coincurve")
    seed = composite_seed(public_key, context, inputs, outputs)
    weights = composite_weights(seed, n)
    m = composite(inputs, weights)
    z = composite(outputs, weights)
    relation = _statement(group, public_key, m, z)
    try:
        relation.verify(proof, context=seed)
    except InvalidProofError:
        raise LinkageProofError() from None
