"""The service's join: union within a side, intersection across sides (issue 16, step 5).

A linked query has sides: side 0 is the query's own dataset (the *value*
side, whose holders upload secret-shared per-person vectors) and sides 1..
are the datasets it is linked to (their holders upload pseudonyms only).
Several holders may hold one side (hospitals A and B). The matched set, as
the plaintext reference (``pets.devtools.linkjoin``) defines it, is:

* a side's person set is the UNION of its holders' pseudonyms;
* a value-side *record* (holder, person) matches when its person is in the
  person set of EVERY other side; a person kept by two value-side holders
  counts once per holder (each holder's vector is added).

:func:`match_sides` computes, per value-side upload, the indices of its
matched rows (what :func:`pets.linkage.sum_matched` sums), and the number of
matched records, which the floor applies to. :func:`sides_digest` is what the
two servers compare: SHA-256 over a label, the query, and per value-side
holder (in the order both servers use: sorted by holder name) its name, its
matched count and its matched pseudonyms in sorted order. Equal digests mean
both servers sum the same rows of the same uploads. A pseudonym repeated
within one upload is refused (``duplicate-pseudonym``), as in
:func:`pets.linkage.match`. Pseudonyms are compared as numpy ``S16``; the
pseudonyms themselves are dropped after the join (only row indices are kept).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pets.errors import InvalidInputError
from pets.linkage.domain import PSEUDONYM_BYTES, query_bytes
from pets.linkage.errors import BatchRejectedError, IntersectionBelowFloorError

SIDES_DIGEST_LABEL = b"pets/linkage/v1/matched-sides"
_S16 = np.dtype(f"S{PSEUDONYM_BYTES}")


@dataclass(frozen=True)
class SideUpload:
    """One holder's pseudonyms (16 bytes each, upload order) on one side."""

    holder: str
    side: int
    pseudonyms: bytes = field(repr=False)

    @property
    def rows(self) -> int:
        return len(self.pseudonyms) // PSEUDONYM_BYTES


@dataclass(frozen=True)
class SideMatch:
    """Per value-side holder (sorted by name): its matched row indices; the digest."""

    holders: tuple[str, ...]
    rows: tuple[np.ndarray, ...] = field(repr=False)
    digest: bytes = field(repr=False)

    @property
    def records(self) -> int:
        """Matched (holder, person) records: what ``min_intersection`` applies to."""
        return int(sum(r.shape[0] for r in self.rows))

    def __repr__(self) -> str:  # the size is sensitive below the floor: not shown
        return f"SideMatch(value_holders={len(self.holders)})"


def _pseudonyms(upload: SideUpload) -> np.ndarray:
    data = upload.pseudonyms
    if len(data) % PSEUDONYM_BYTES:
        raise BatchRejectedError(
            "batch-length", f"holder {upload.holder}: pseudonyms are whole 16-byte values"
        )
    ps = np.frombuffer(data, dtype=_S16)
    if ps.shape[0] > 1 and np.unique(ps).shape[0] != ps.shape[0]:
        raise BatchRejectedError(
            "duplicate-pseudonym", f"holder {upload.holder} repeats a pseudonym"
        )
    return ps


def match_sides(query_id: str | bytes, uploads: Sequence[SideUpload], sides: int) -> SideMatch:
    """Join ``uploads`` of a query with ``sides`` sides (>= 2); see the module docstring.

    Every side must have at least one upload (else nothing can match: the
    matched set is empty, and the floor refuses it).
    """
    if sides < 2:
        raise InvalidInputError("a linked query has at least two sides")
    names = [u.holder for u in uploads]
    if len(set(names)) != len(names):
        raise InvalidInputError("one upload per holder")
    for u in uploads:
        if not 0 <= u.side < sides:
            raise InvalidInputError(f"holder {u.holder} names side {u.side} of {sides}")
    parsed = {u.holder: _pseudonyms(u) for u in uploads}
    common: np.ndarray | None = None
    for side in range(1, sides):
        members = [parsed[u.holder] for u in uploads if u.side == side]
        union = np.unique(np.concatenate(members)) if members else np.zeros(0, dtype=_S16)
        common = union if common is None else np.intersect1d(common, union, assume_unique=True)
    assert common is not None
    value = sorted((u for u in uploads if u.side == 0), key=lambda u: u.holder)
    q = query_bytes(query_id)
    h = hashlib.sha256(len(SIDES_DIGEST_LABEL).to_bytes(2, "big") + SIDES_DIGEST_LABEL)
    h.update(len(q).to_bytes(2, "big") + q + len(value).to_bytes(4, "big"))
    rows: list[np.ndarray] = []
    for u in value:
        ps = parsed[u.holder]
        hit = np.isin(ps, common, assume_unique=True) if common.size else np.zeros(ps.shape, bool)
        idx = np.flatnonzero(hit).astype(np.int64)
        rows.append(idx)
        name = u.holder.encode("utf-8")
        h.update(len(name).to_bytes(2, "big") + name + idx.shape[0].to_bytes(8, "big"))
        h.update(np.sort(ps[idx]).tobytes())
    return SideMatch(tuple(u.holder for u in value), tuple(rows), h.digest())


def check_records_floor(result: SideMatch, floor: int) -> None:
    """Refuse (``floor``) fewer matched records than ``floor``; the error says nothing more."""
    if result.records < floor:
        raise IntersectionBelowFloorError()
