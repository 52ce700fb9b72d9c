"""Both servers' join over uploaded pseudonyms (issue 16, steps 5 and 6).

Each holder uploads n_h pseudonyms (16 bytes each, concatenated); a pseudonym's
position is its *share index*, the row of that holder's secret-shared vectors.
Each server, on its own copy:

1. :func:`match` computes the matched set, the pseudonyms present in every
   holder's upload, and for each holder the share indices of those rows,
   aligned (row j of every holder is the same person). A pseudonym repeated
   within one upload is refused (``duplicate-pseudonym``): the holder's
   one-row rule makes them distinct, so a repeat is a fault or an attempt to
   weigh one person twice.
2. :func:`matched_set_digest`: SHA-256 over a label, the query id, the
   number of holders, the size and the sorted matched pseudonyms. The
   servers exchange digests and :func:`check_digests` compares them in
   constant time (:func:`hmac.compare_digest`); a mismatch fails the query
   (``digest``), so neither server can have the other sum a forged set.
3. :func:`effective_floor` / :func:`check_floor`: ``min_intersection`` is a
   server-wide floor that a query may raise, never lower (as ``min_holders``);
   below it the query is refused (``floor``) and the refusal says nothing
   about the size.
4. :func:`sum_matched`: the sum of one holder's share vectors over the
   matched rows, in Z_2^64 (numpy ``uint64`` wraps), chunk by chunk so memory
   stays bounded. Each server releases its sum only to the analyst, who adds
   the servers' sums (:func:`pets.sharing.unshard`).

Sorting is numpy's on a 16-byte ``S16`` view: byte strings of one fixed length
compare as big-endian integers, trailing zero bytes included.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pets.errors import InvalidInputError
from pets.linkage.domain import PSEUDONYM_BYTES, as_bytes, query_bytes
from pets.linkage.errors import BatchRejectedError, DigestMismatchError, IntersectionBelowFloorError

DIGEST_LABEL = b"pets/linkage/v1/matched-set"
_SUM_CHUNK = 65536


@dataclass(frozen=True)
class Match:
    """The matched set: sorted pseudonyms (``S16``) and, per holder, aligned share indices.

    Read pseudonyms from ``pseudonyms.tobytes()`` in 16-byte steps: numpy strips
    trailing NUL bytes when it turns one ``S16`` element into a Python value.
    """

    pseudonyms: np.ndarray = field(repr=False)
    indices: tuple[np.ndarray, ...] = field(repr=False)

    @property
    def size(self) -> int:
        return int(self.pseudonyms.shape[0])

    def __repr__(self) -> str:  # the size is sensitive below the floor: not shown
        return f"Match(holders={len(self.indices)})"


def _as_pseudonyms(upload: bytes | np.ndarray, which: int) -> np.ndarray:
    if isinstance(upload, np.ndarray):
        if upload.dtype != np.dtype(f"S{PSEUDONYM_BYTES}") or upload.ndim != 1:
            raise InvalidInputError("pseudonyms must be a 1-D S16 array or bytes")
        upload = upload.tobytes()
    data = as_bytes(upload, f"holder {which}'s pseudonyms")
    if len(data) % PSEUDONYM_BYTES:
        raise BatchRejectedError(
            "batch-length", f"holder {which}: pseudonyms are a whole number of 16-byte values"
        )
    return np.frombuffer(data, dtype=f"S{PSEUDONYM_BYTES}")


def _sorted_unique(ps: np.ndarray, which: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(ps, kind="stable")
    s = ps[order]
    if s.shape[0] > 1 and bool(np.any(s[1:] == s[:-1])):
        raise BatchRejectedError("duplicate-pseudonym", f"holder {which} repeats a pseudonym")
    return s, order


def match(uploads: Sequence[bytes | np.ndarray]) -> Match:
    """Intersect the holders' pseudonyms (at least two holders); see the module docstring."""
    if len(uploads) < 2:
        raise InvalidInputError("a linked query joins at least two holders")
    common, idx0 = _sorted_unique(_as_pseudonyms(uploads[0], 0), 0)
    indices = [idx0]
    for h in range(1, len(uploads)):
        other, order = _sorted_unique(_as_pseudonyms(uploads[h], h), h)
        if other.shape[0] == 0 or common.shape[0] == 0:
            pos = np.zeros(0, dtype=np.int64)
            hit = np.zeros(common.shape[0], dtype=bool)
        else:
            pos = np.searchsorted(other, common)
            pos = np.minimum(pos, other.shape[0] - 1)
            hit = other[pos] == common
        common = common[hit]
        indices = [ix[hit] for ix in indices]
        indices.append(order[pos[hit]] if hit.any() else np.zeros(0, dtype=np.int64))
    return Match(common, tuple(np.asarray(ix, dtype=np.int64) for ix in indices))


def matched_set_digest(query_id: str | bytes, result: Match) -> bytes:
    """32-byte digest of the matched set that the two servers compare."""
    q = query_bytes(query_id)
    h = hashlib.sha256(len(DIGEST_LABEL).to_bytes(2, "big") + DIGEST_LABEL)
    h.update(len(q).to_bytes(2, "big") + q)
    h.update(len(result.indices).to_bytes(4, "big") + result.size.to_bytes(8, "big"))
    h.update(result.pseudonyms.tobytes())
    return h.digest()


def check_digests(local: bytes, remote: bytes) -> None:
    """Constant-time comparison; :class:`~pets.linkage.errors.DigestMismatchError` if different."""
    if not hmac.compare_digest(as_bytes(local, "a digest"), as_bytes(remote, "a digest")):
        raise DigestMismatchError()


def effective_floor(server_floor: int, query_floor: int | None = None) -> int:
    """``min_intersection`` of a query: the server's floor, raised (never lowered) by the query."""
    if isinstance(server_floor, bool) or not isinstance(server_floor, int) or server_floor < 1:
        raise InvalidInputError("the server's min_intersection must be a positive integer")
    if query_floor is None:
        return server_floor
    if isinstance(query_floor, bool) or not isinstance(query_floor, int) or query_floor < 0:
        raise InvalidInputError("a query's min_intersection must be a non-negative integer")
    return max(server_floor, query_floor)


def check_floor(result: Match, floor: int) -> None:
    """Refuse (``floor``) when the matched set is smaller than ``floor``; says nothing more."""
    if result.size < floor:
        raise IntersectionBelowFloorError()


def sum_matched(shares: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Sum over Z_2^64 of ``shares[rows]``: one holder's share vectors on the matched rows.

    ``shares`` is the holder's (n_h, d) ``uint64`` matrix in upload order;
    ``rows`` is that holder's entry of :attr:`Match.indices`.
    """
    shares = np.asarray(shares)
    if shares.dtype != np.uint64 or shares.ndim != 2:
        raise InvalidInputError("shares must be a 2-D uint64 array (one row per pseudonym)")
    rows = np.asarray(rows)
    if rows.ndim != 1 or (rows.size and rows.dtype.kind not in "iu"):
        raise InvalidInputError("rows must be a 1-D integer array")
    if rows.size and (int(rows.min()) < 0 or int(rows.max()) >= shares.shape[0]):
        raise InvalidInputError("a matched row is outside the holder's upload")
    acc = np.zeros(shares.shape[1], dtype=np.uint64)
    for start in range(0, rows.shape[0], _SUM_CHUNK):
        part = shares[rows[start : start + _SUM_CHUNK]]
        acc += part.sum(axis=0, dtype=np.uint64)
    return acc
