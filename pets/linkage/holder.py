"""Holder side of the linkage protocol (issue 16, steps 2 and 4).

1. :func:`prepare_records`: normalise the identifier column as the domain
   declares and keep one row per person by the dataset's rule (filtering is
   the caller's, before this). Unusable identifiers are dropped and counted.
2. :func:`blind`: shuffle (Fisher-Yates driven by :mod:`secrets`), then
   B_i = r_i · H2C(DST_domain, id_i) with RFC 9380 hash-to-curve
   (:func:`pets.zk.hash_to_curve.hash_to_curve`, suite
   secp256k1_XMD:SHA-256_SSWU_RO_) and a fresh uniform non-zero blind r_i per
   point. r_i is uniform on [1, n) and n is prime, so r -> r·P is a bijection
   from [1, n) onto the non-identity points for every non-identity P: B_i is
   uniform on them whatever id_i is, and the servers learn nothing from the
   batch but its size. (Drawing r_i from a fixed-length range such as
   [2^255, n) would break this: B_i would be uniform only on a set of about
   n/2 points that depends on id_i. It would not make the multiplication
   constant time either, see :mod:`pets.linkage.points`.) The products
   r_i·H(id_i) and, in step 3, r_i^-1·W_i use the constant-time
   :func:`pets.linkage.points.multiply_secret`. The batch goes to the helper
   through the leader; the holder keeps :class:`BlindState`.
3. :func:`finish`: with the batch the leader returns, W_i = k_L·k_H·B_i,
   unblind k·H(id_i) = r_i^-1 · W_i (every point is checked first), derive
   the pseudonyms ps_i = H(DST || query || point)[:16]
   (:meth:`pets.linkage.domain.LinkageDomain.pseudonym`), and shuffle again so
   the upload order is unrelated to the batch order. :class:`Upload` says
   which record each pseudonym belongs to; the holder secret-shares those
   records' vectors in that order on the contribution path.

In verified mode the holder first checks both servers' batched DLEQ proofs
(:func:`verify_evaluations`).

The ``rng`` parameters exist for known-answer tests; real use keeps the
default, the operating system's CSPRNG through :mod:`secrets`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import gmpy2
import numpy as np
from coincurve import PublicKey

from pets.errors import InvalidInputError
from pets.linkage.dedup import check_rule, one_row_per_person
from pets.linkage.dleq import verify_batch
from pets.linkage.domain import PSEUDONYM_BYTES, LinkageDomain
from pets.linkage.errors import BatchRejectedError
from pets.linkage.normalise import normalise_ids
from pets.linkage.points import DEFAULT_CHUNK, multiply_batch, multiply_secret
from pets.zk.curve import N
from pets.zk.hash_to_curve import hash_to_curve
from pets.zk.rng import DEFAULT_RNG, RandomSource


@dataclass(frozen=True)
class Records:
    """A holder's linkable records: distinct identifiers and one value row each."""

    ids: list[bytes] = field(repr=False)
    values: np.ndarray | None = field(repr=False)
    dropped: int  # rows whose identifier was missing or empty after normalisation

    def __repr__(self) -> str:
        return f"Records(n={len(self.ids)}, dropped={self.dropped})"


@dataclass(frozen=True)
class BlindState:
    """What the holder keeps between :func:`blind` and :func:`finish`. Secret."""

    order: np.ndarray = field(repr=False)  # record index at each batch position
    blinds: bytes = field(repr=False)  # r_i at each batch position, 32 bytes big-endian each

    def __len__(self) -> int:
        return len(self.blinds) // 32

    def blind(self, i: int) -> int:
        """r_i, the blind of batch position ``i``."""
        return int.from_bytes(self.blinds[32 * i : 32 * i + 32], "big")

    def __repr__(self) -> str:
        return f"BlindState(n={len(self)})"


@dataclass(frozen=True)
class Upload:
    """The pseudonyms to upload (n × 16 bytes) and the record index behind each."""

    pseudonyms: bytes = field(repr=False)
    records: np.ndarray = field(repr=False)

    def __repr__(self) -> str:
        return f"Upload(n={len(self.records)})"


def prepare_records(
    ids: Iterable[object], values: np.ndarray | None, domain: LinkageDomain, rule: str
) -> Records:
    """Normalise (domain) and collapse to one row per person (``rule``); see the module doc."""
    check_rule(rule)
    kept, rows, dropped = normalise_ids(ids, domain.normalisation)
    if values is not None:
        values = np.asarray(values)
        if values.ndim != 2:
            raise InvalidInputError("values must be a 2-D array with one row per identifier")
        if values.shape[0] != len(rows) + dropped:
            raise InvalidInputError("values must have one row per identifier")
        values = values[np.asarray(rows, dtype=np.int64)]
    distinct, collapsed = one_row_per_person(kept, values, rule)
    return Records(distinct, collapsed, dropped)


def shuffle(n: int, rng: RandomSource = DEFAULT_RNG) -> np.ndarray:
    """A uniform permutation of range(n) (Fisher-Yates, Knuth vol. 2 3.4.2, algorithm P)."""
    perm = list(range(n))
    for i in range(n - 1, 0, -1):
        j = rng.randbelow(i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    return np.asarray(perm, dtype=np.int64)


def hash_to_point(ident: bytes, dst: bytes) -> PublicKey:
    """H(id): RFC 9380 hash_to_curve under the domain's DST, as a libsecp256k1 point."""
    affine = hash_to_curve(ident, dst)
    if affine is None:  # probability ~2^-256
        raise InvalidInputError("hash_to_curve produced the identity")
    return PublicKey.from_point(*affine)


def blind(
    ids: Sequence[bytes],
    domain: LinkageDomain,
    *,
    rng: RandomSource = DEFAULT_RNG,
    chunk: int = DEFAULT_CHUNK,
    workers: int = 1,
) -> tuple[bytes, BlindState]:
    """Shuffle and blind: the batch B (n × 33 bytes) and the state to unblind it."""
    n = len(ids)
    if not all(isinstance(ident, bytes) for ident in ids):
        raise InvalidInputError("identifiers must be bytes (see prepare_records)")
    if len(set(ids)) != n:  # repeats would surface as repeated pseudonyms, refused by the join
        raise InvalidInputError(
            "identifiers must be distinct: one row per person (prepare_records)"
        )
    order = shuffle(n, rng)
    blinds = b"".join((1 + rng.randbelow(N - 1)).to_bytes(32, "big") for _ in range(n))
    dst = domain.dst
    order_list = order.tolist()

    def hashed(start: int, stop: int) -> list[PublicKey]:
        return [hash_to_point(ids[order_list[i]], dst) for i in range(start, stop)]

    def multiplied(start: int, points: list[PublicKey]) -> bytes:
        return b"".join(
            multiply_secret(p, blinds[32 * (start + j) : 32 * (start + j) + 32])
            for j, p in enumerate(points)
        )

    starts = range(0, n, max(1, chunk))
    if workers <= 1:
        batch = b"".join(multiplied(s, hashed(s, min(s + chunk, n))) for s in starts)
    else:
        # Hashing is Python (holds the GIL); multiplying is libsecp256k1 (releases it):
        # hash chunk i + 1 here while a worker multiplies chunk i.
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(multiplied, s, hashed(s, min(s + chunk, n))) for s in starts]
            batch = b"".join(f.result() for f in futures)
    return batch, BlindState(order, blinds)


def unblind(
    evaluated: bytes, state: BlindState, *, chunk: int = DEFAULT_CHUNK, workers: int = 1
) -> bytes:
    """k·H(id_i) = r_i^-1 · W_i for each point of the returned batch, checked first."""
    if len(evaluated) != 33 * len(state):
        raise BatchRejectedError("batch-length", "the returned batch does not match the one sent")

    def inverse(i: int) -> bytes:
        # gmpy2: 2 µs against 25 µs for pow(r, -1, N) (measured); like every Python-level
        # scalar operation here it is not constant time, and runs on the holder's machine only.
        return int(gmpy2.invert(state.blind(i), N)).to_bytes(32, "big")

    return multiply_batch(evaluated, inverse, max_rows=len(state), chunk=chunk, workers=workers)


def pseudonymise(points: bytes, domain: LinkageDomain, query_id: str | bytes) -> bytes:
    """The pseudonym of each point of a batch, concatenated (n × 16 bytes)."""
    prefix = domain.pseudonym_prefix(query_id)
    out = []
    for i in range(0, len(points), 33):
        h = prefix.copy()
        h.update(points[i : i + 33])
        out.append(h.digest()[:PSEUDONYM_BYTES])
    return b"".join(out)


def finish(
    evaluated: bytes,
    state: BlindState,
    domain: LinkageDomain,
    query_id: str | bytes,
    *,
    rng: RandomSource = DEFAULT_RNG,
    chunk: int = DEFAULT_CHUNK,
    workers: int = 1,
) -> Upload:
    """Unblind, pseudonymise and shuffle again: what the holder uploads."""
    points = unblind(evaluated, state, chunk=chunk, workers=workers)
    pseudonyms = pseudonymise(points, domain, query_id)
    again = shuffle(len(state), rng)
    ps = np.frombuffer(pseudonyms, dtype=np.uint8).reshape(-1, PSEUDONYM_BYTES)[again]
    return Upload(ps.tobytes(), state.order[again])


def verify_evaluations(
    blinded: bytes,
    intermediate: bytes,
    evaluated: bytes,
    *,
    helper_public_key: bytes,
    helper_proof: bytes,
    helper_context: bytes,
    leader_public_key: bytes,
    leader_proof: bytes,
    leader_context: bytes,
) -> None:
    """Verified mode: the helper applied its announced k_H, then the leader its k_L.

    ``intermediate`` is the helper's output, which the leader forwards with its
    own. Raises :class:`~pets.linkage.errors.LinkageProofError` or
    :class:`~pets.linkage.errors.BatchRejectedError`.
    """
    n = len(blinded) // 33
    verify_batch(
        helper_public_key, blinded, intermediate, helper_proof, context=helper_context, max_rows=n
    )
    verify_batch(
        leader_public_key, intermediate, evaluated, leader_proof, context=leader_context, max_rows=n
    )
