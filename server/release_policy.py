"""The release rule: no holder is isolated by differencing releases (issue 15, item 1).

Two releases of one query over contributor sets that differ by one holder
give away that holder's exact answer: subtract them. The red-team pass did
it with ``--close-after 10`` then ``--close-after 9``. Forbidding only a
difference of one holder is not enough: releases over sets whose indicator
vectors span a unit vector isolate a holder by linear algebra (with
``X``, ``Y``, ``Z`` disjoint groups of any size, the releases over
``X+{h}``, ``X+Y``, ``Y+Z`` and ``Z`` give ``h`` as ``1 - 2 + 3 - 4``,
though every pair of those sets differs by many holders).

**The rule.** Within ``[limits] release_window_seconds`` (default 7 days),
every release of one query fingerprint (the query and its dataset schema,
:meth:`pets.query.QueryPlan.fingerprint`), whoever the analyst, must be over
*the same contributor set*. A server refuses to release a query when it
recorded a release of the same fingerprint in the window over another set;
it then releases nothing for it (the leader fails the query with
``release_refused``; a helper refuses to finalise). The span of the
releases' indicator vectors is then one-dimensional, ``c * 1_S``, which
holds no unit vector as long as ``|S| >= 2`` (``min_holders``), so no
combination of releases of a fingerprint isolates a holder, whoever
refused or went offline (a holder that declined by its own policy changes
the set and so blocks the release; it is not singled out).

A release counts from the moment a server starts finalising it (the leader
before it asks the helpers, each helper before it sums), so two queries of
one fingerprint closing together cannot both pass; a release that then
fails still binds the window (conservative). Each server keeps its own
record (:meth:`pets.server.store.base.Store.record_release`: checked and
recorded in one transaction, older entries forgotten) and enforces the rule
by itself: a helper protects the holders even from a leader that does not.
Only a SHA-256 digest of the sorted names is kept, not the names.

At submission the leader also refuses a ``close_after`` that can only end in
another set: one that differs from the contributor count of a recorded
release of the fingerprint (:func:`check_close_after`), so the red-team
repro is refused before any holder answers. ``close_after`` must also lie in
``[min_holders, max_holders]`` (:mod:`pets.server.leader.admission`).

Not covered (documented in docs/ARCHITECTURE.md, "Releases"): two queries
with different fingerprints that compute the same number (say, a filter
that keeps every row), releases further apart than the window, and what the
results themselves reveal; node-side answer limits and differential privacy
(docs/DP.md) address those.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from pets import lengthprefix
from pets.errors import ThresholdNotMetError
from pets.server.store import Store
from pets.server.store.base import ReleaseRecord

_DOMAIN = b"pets/v1/contributor-set"


def contributor_set_digest(contributors: Sequence[str]) -> bytes:
    """SHA-256 of the sorted, length-prefixed names: equal sets, equal digests."""
    names = sorted(set(contributors))
    return hashlib.sha256(_DOMAIN + lengthprefix.join(n.encode() for n in names)).digest()


def check_release(release: ReleaseRecord, others: Sequence[ReleaseRecord]) -> None:
    """Raise ThresholdNotMetError if a recorded release of the same fingerprint had
    another contributor set (the rule above); the message names no holder."""
    for other in others:
        if other.contributor_set != release.contributor_set:
            raise ThresholdNotMetError(
                "a release of the same query within the release window had another "
                "contributor set; releasing this one could isolate a holder by differencing"
            )


def check_close_after(close_after: int, recent: Sequence[ReleaseRecord]) -> None:
    """Raise ThresholdNotMetError if ``close_after`` can only end in a contributor set
    of another size than a recent release of the fingerprint."""
    sizes = sorted({r.contributors for r in recent})
    if close_after and sizes and close_after not in sizes:
        raise ThresholdNotMetError(
            f"close_after {close_after} differs from the {sizes[0]} contributors of a recent "
            "release of the same query; a release over another contributor set would isolate "
            "holders by differencing, so it is refused within the release window"
        )


class ReleaseGuard:
    """One server's enforcement of the rule, over its store and clock."""

    def __init__(self, store: Store, window_seconds: float, clock: Callable[[], float]) -> None:
        self.store = store
        self.window = window_seconds
        self.clock = clock

    async def check_close_after(self, fingerprint: bytes, close_after: int) -> None:
        """At submission: refuse a ``close_after`` that cannot match a recent release."""
        if close_after:
            recent = await self.store.releases(fingerprint, self.clock() - self.window)
            check_close_after(close_after, recent)

    async def claim(self, fingerprint: bytes, query_id: str, contributors: Sequence[str]) -> None:
        """Record the release of ``query_id`` over ``contributors``, or raise
        ThresholdNotMetError (and record nothing) if the rule forbids it. Claiming a
        query again over the same set (a retry, a restart) is allowed."""
        now = self.clock()
        release = ReleaseRecord(
            fingerprint=fingerprint,
            query_id=query_id,
            contributor_set=contributor_set_digest(contributors),
            contributors=len(set(contributors)),
            released=now,
        )

        def check(others: list[ReleaseRecord]) -> None:
            check_release(release, others)

        await self.store.record_release(release, now - self.window, check)
