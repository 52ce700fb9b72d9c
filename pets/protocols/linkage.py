"""Record linkage in the service (issue 16): the protocol behind the registry.

A linked query (``mean(care_cost) from ltc linked to hospitals where
hospitals.diagnosis = E11``) sums the *value side's* per-person vectors over
the people who are also on every other side, joined on per-query
pseudonyms that no server can link to an identifier (docs/LINKAGE.md,
"Service"). The pure core is :mod:`pets.linkage`; this module is the glue the
servers and the holder client call, and it stays pure (no sockets, no store):

* the signed messages: :func:`chunk_message` (a chunk of a holder's blinded
  batch, signed by the holder so the leader cannot inject points),
  :func:`chunk_context` (the DLEQ context of one chunk's proof) and
  :func:`upload_message` (the holder's pseudonyms, bound to its sealed seed
  through the contribution digest, so the leader cannot relay the helper
  other pseudonyms);
* the upload payload (:func:`encode_payload` / :func:`parse_payload`), which
  travels on the ordinary contribution path: a prefix (side, rows, the
  holder's upload signature), the pseudonyms, then the leader's share of the
  rows x width ``uint64`` matrix (``x - PRG(seed)``, the helper's seed sealed
  to it as for the additive protocol);
* the leader's half, :class:`LinkageAggregate`: it keeps each holder's upload
  in memory only (its durable copy, :meth:`LinkageAggregate.to_bytes`, holds
  no pseudonym; a leader restart therefore fails an unfinished linked query),
  joins at finalisation and sums its share over the matched rows;
* the helper's half, :class:`LinkageOpener`: checks and opens the seeds as
  the additive protocol does, then sums the PRG expansions over the rows the
  join matched (the join itself runs in ``server/helper/linkage.py``, which
  hands its :class:`JoinedRows` over in :attr:`HelperQueryContext.linkage`);
* the analyst's half is the additive protocol's: each server's share is a
  ``uint64`` vector of the plan's length, added mod 2^64 and decoded as any
  aggregate (DP noise too).

The two-server design needs exactly one helper (k = k_L·k_H).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from pets import lengthprefix, seal, sharing
from pets.errors import InvalidInputError, PetsError
from pets.linkage import LinkageDomain, proof_context, sum_matched
from pets.linkage.domain import PSEUDONYM_BYTES, query_bytes
from pets.linkage.sides import SideMatch, SideUpload, match_sides
from pets.protocols.additive import AdditiveProtocol, SeedOpener
from pets.protocols.base import (
    HelperQueryContext,
    HolderContribution,
    SeedSealer,
)
from pets.query import QueryPlan
from pets.transport import wire
from pets.v1 import aggregation_pb2 as pb

#: Points per chunk of a blinded batch: the holder's default, and the most allowed.
DEFAULT_CHUNK_POINTS = 4096
MAX_CHUNK_POINTS = 65536
#: The most rows a batch may have when the server cannot tell the side's max_rows.
DEFAULT_MAX_ROWS = 1_000_000
CHUNK_LABEL = b"pets/linkage/v1/holder-batch-chunk"
UPLOAD_LABEL = b"pets/linkage/v1/pseudonym-upload"
#: Tags of the leader's durable copy: before the join (a count, no pseudonym), after it.
UPLOADS_TAG = b"pets/linkage/v1/uploads"
JOINED_TAG = b"pets/linkage/v1/joined-share"
_PREFIX = struct.Struct(">IQH")  # side, rows, signature length
_MAX_SIGNATURE = 128  # ECDSA P-256 DER is at most 72 bytes


# --------------------------------------------------------------------------- messages


def chunk_message(
    domain: str, query_id: str, holder: str, rows: int, index: int, points: bytes
) -> bytes:
    """The bytes a holder signs for chunk ``index`` of its ``rows``-point batch."""
    return lengthprefix.join(
        (
            CHUNK_LABEL,
            domain.encode("ascii"),
            query_bytes(query_id),
            holder.encode("utf-8"),
            rows.to_bytes(8, "big"),
            index.to_bytes(4, "big"),
            hashlib.sha256(points).digest(),
        )
    )


def chunk_context(role: str, domain: str, query_id: str, holder: str, index: int) -> bytes:
    """The DLEQ context of one server's proof for chunk ``index``
    (:func:`pets.linkage.proof_context` with the chunk number appended)."""
    return proof_context(role, LinkageDomain(domain), query_id, holder) + index.to_bytes(4, "big")


def upload_message(
    query_id: str,
    fingerprint: bytes,
    holder: str,
    side: int,
    rows: int,
    pseudonyms: bytes | memoryview,
    contribution_digest: bytes,
) -> bytes:
    """The bytes a holder signs for its pseudonym upload (checked by the helper)."""
    return lengthprefix.join(
        (
            UPLOAD_LABEL,
            query_bytes(query_id),
            bytes(fingerprint),
            holder.encode("utf-8"),
            side.to_bytes(4, "big"),
            rows.to_bytes(8, "big"),
            hashlib.sha256(pseudonyms).digest(),
            bytes(contribution_digest),
        )
    )


# --------------------------------------------------------------------------- the payload


@dataclass
class LinkageRows:
    """One holder's parsed upload on the leader: side, pseudonyms, its share rows."""

    side: int
    rows: int
    signature: bytes
    pseudonyms: bytes = field(repr=False)
    shares: np.ndarray = field(repr=False)  # (rows, width) uint64, the leader's share
    holder: str | None = None  # set by prepare_message (the caller's certificate name)
    certificate: bytes = field(default=b"", repr=False)  # its certificate (PEM), ditto


def encode_payload(
    side: int, signature: bytes, pseudonyms: bytes, leader_share: np.ndarray
) -> bytes:
    """What a holder sends on the contribution path (see the module docstring)."""
    rows = len(pseudonyms) // PSEUDONYM_BYTES
    if len(pseudonyms) != rows * PSEUDONYM_BYTES or len(signature) > _MAX_SIGNATURE:
        raise InvalidInputError("pseudonyms are whole 16-byte values; one ECDSA signature")
    share = np.ascontiguousarray(leader_share, dtype=wire.RING_DTYPE)
    return b"".join(
        (_PREFIX.pack(side, rows, len(signature)), signature, pseudonyms, share.tobytes())
    )


def parse_payload(data: bytes, widths: Sequence[int], max_rows: Sequence[int]) -> LinkageRows:
    """A payload checked against the query's sides (``widths[s]`` values per row,
    at most ``max_rows[s]`` rows on side ``s``); InvalidInputError if it is not."""
    if len(data) < _PREFIX.size:
        raise InvalidInputError("a linkage upload starts with its side, rows and signature")
    side, rows, siglen = _PREFIX.unpack_from(data)
    if side >= len(widths):
        raise InvalidInputError(f"this linked query has {len(widths)} sides, not side {side}")
    if rows > max_rows[side] or siglen > _MAX_SIGNATURE:
        raise InvalidInputError(
            f"a linkage upload on side {side} has at most {max_rows[side]} rows"
        )
    width = widths[side]
    at = _PREFIX.size + siglen
    expected = at + rows * (PSEUDONYM_BYTES + 8 * width)
    if len(data) != expected:
        raise InvalidInputError(
            f"a linkage upload of {rows} rows on side {side} has {expected} bytes, got {len(data)}"
        )
    signature = bytes(data[_PREFIX.size : at])
    pseudonyms = bytes(data[at : at + rows * PSEUDONYM_BYTES])
    shares = np.frombuffer(data, dtype=wire.RING_DTYPE, offset=at + rows * PSEUDONYM_BYTES)
    return LinkageRows(side, rows, signature, pseudonyms, shares.reshape(rows, width))


def plan_sides(plan: QueryPlan) -> tuple[list[int], list[int], str]:
    """Per side of a linked plan: values per row, the most rows; and the domain name."""
    linkage = getattr(plan, "linkage", None)
    if linkage is None:
        raise InvalidInputError("a PROTOCOL_LINKAGE query must be linked (`... linked to ...`)")
    widths = [plan.length if i == 0 else 0 for i in range(len(linkage.sides))]
    rows = [int(side.dataset.max_rows or DEFAULT_MAX_ROWS) for side in linkage.sides]
    return widths, rows, str(linkage.domain)


# --------------------------------------------------------------------------- leader


class LinkageAggregate:
    """The leader's uploads of one linked query (memory only) and, once joined, its share.

    :meth:`to_bytes` is what the leader's store keeps: before the join a
    summary that holds no pseudonym (the count of uploads); after
    :meth:`join`, the leader's share over the matched rows, as released.
    """

    def __init__(
        self,
        length: int,
        widths: Sequence[int],
        max_rows: Sequence[int],
        data: bytes | None = None,
        *,
        count: int = 0,
    ) -> None:
        self.length = length
        self.widths = list(widths)
        self.max_rows = list(max_rows)
        self.payload_bytes = length * wire.RING_DTYPE.itemsize  # a size hint (offloading)
        self.uploads: dict[str, LinkageRows] = {}
        self.count = count
        self.result: np.ndarray | None = None
        if data is not None and bytes(data[: len(JOINED_TAG)]) == JOINED_TAG:
            self.result = wire.vector_from_bytes(data[len(JOINED_TAG) :], length).copy()
        # Restored with contributions the store never held: they cannot be joined.
        self.lost = count > 0 and self.result is None

    def validate(self, payload: bytes | bytearray | list[bytes]) -> LinkageRows:
        data = b"".join(payload) if isinstance(payload, list) else bytes(payload)
        return parse_payload(data, self.widths, self.max_rows)

    def add(self, parsed: object) -> None:
        if not isinstance(parsed, LinkageRows) or parsed.holder is None:
            raise InvalidInputError("a linkage upload must come from validate() and Prepare")
        self.uploads[parsed.holder] = parsed
        self.count += 1

    def to_bytes(self) -> bytes | memoryview:
        if self.result is not None:
            return JOINED_TAG + bytes(wire.vector_view(self.result))
        return UPLOADS_TAG + self.count.to_bytes(8, "big")

    def merge(self, other: object) -> None:
        """Linked queries run on one leader replica: its uploads live in its memory."""
        raise InvalidInputError("a linked query's uploads cannot be merged across replicas")

    def side_uploads(self) -> list[SideUpload]:
        return [SideUpload(h, u.side, u.pseudonyms) for h, u in sorted(self.uploads.items())]

    def join(self, query_id: str) -> SideMatch:
        """The matched rows; the leader's share over them becomes :attr:`result`.
        The pseudonyms are dropped (only :meth:`side_uploads`' callers saw them)."""
        if self.lost:
            raise PetsError(
                "the leader restarted while the linked query was open; its uploads are held in "
                "memory only, so it cannot be joined"
            )
        matched = match_sides(query_id, self.side_uploads(), len(self.widths))
        total = np.zeros(self.length, dtype=np.uint64)
        for holder, rows in zip(matched.holders, matched.rows, strict=True):
            total += sum_matched(self.uploads[holder].shares, rows)
        self.result = total
        return matched

    def forget(self) -> None:
        """Drop every upload (pseudonyms and shares) once joined or failed."""
        self.uploads = {}


# --------------------------------------------------------------------------- helper


@dataclass(frozen=True)
class JoinedRows:
    """What the helper's join leaves for its Finalize: per holder, its side, its rows,
    the contribution digest it signed, and (value side) the matched row indices."""

    sides: dict[str, tuple[int, int, bytes]]
    matched: dict[str, np.ndarray] = field(repr=False)
    digest: bytes = field(repr=False)


@dataclass
class LinkageOpener(SeedOpener):
    """The helper's checker: Prepare as for additive; Finalize sums the expansions of
    the value-side holders' seeds over the rows the join matched."""

    linkage: JoinedRows | None = None

    def finalise(
        self,
        items: Sequence[pb.SealedContribution],
        accepted: dict[str, tuple[bytes, bytes]] | None = None,
    ) -> bytes | memoryview:
        joined = self.linkage
        if joined is None:
            raise InvalidInputError(
                f"helper {self.helper} has not joined {self.query_id}: LinkageJoin comes first"
            )
        if sorted(i.holder for i in items) != sorted(joined.sides):
            raise InvalidInputError("the contributor set differs from the joined uploads")
        accepted = accepted or {}
        total = np.zeros(self.vector_length, dtype=np.uint64)
        for item in items:
            known = accepted.get(item.holder)
            seed = known[1] if known is not None else self.open(item)[1]
            side, rows, digest = joined.sides[item.holder]
            if not hmac.compare_digest(seal.contribution_digest(self.query_id, [seed]), digest):
                raise InvalidInputError(
                    f"holder {item.holder}'s pseudonyms are not bound to its sealed seed"
                )
            if side == 0:
                share = sharing.expand_share(seed, rows * self.vector_length)
                total += sum_matched(
                    share.reshape(rows, self.vector_length), joined.matched[item.holder]
                )
        return wire.vector_view(total)


# --------------------------------------------------------------------------- the protocol


class LinkageProtocol(AdditiveProtocol):
    """Additive sharing of per-person vectors, summed over a private join."""

    name: ClassVar[str] = "linkage"
    wire_id: ClassVar[pb.Protocol] = pb.PROTOCOL_LINKAGE
    helper_count: ClassVar[int | None] = 1  # k = k_L·k_H: one leader, one helper
    sealed_what: ClassVar[str] = "seed"
    joins: ClassVar[bool] = True  # the leader joins before the helpers finalise

    def __init__(self) -> None:
        # A helper's joins awaiting its Finalize, by (helper, query): row indices
        # and contribution digests only, no pseudonym (server/helper/linkage.py).
        self._joined: dict[tuple[str, str], JoinedRows] = {}

    def remember_join(self, helper: str, query_id: str, joined: JoinedRows) -> None:
        """Keep a helper's join of one query for its Finalize (replacing an earlier one)."""
        self._joined[(helper, query_id)] = joined

    def forget_join(self, helper: str, query_id: str) -> None:
        self._joined.pop((helper, query_id), None)

    def joined_queries(self, helper: str) -> list[str]:
        """The queries whose join ``helper`` still keeps."""
        return [q for h, q in self._joined if h == helper]

    # -- holder: the node answers linked queries with pets.client.linkage
    async def contribute(
        self,
        ann: pb.QueryAnnouncement,
        plan: QueryPlan,
        vector: np.ndarray,
        *,
        holder: str,
        seed_key: bytes | None,
        sealer: SeedSealer,
    ) -> HolderContribution:
        raise InvalidInputError(
            "a linked query takes per-person rows and pseudonyms, not one vector "
            "(pets.client.linkage answers it)"
        )

    # -- leader
    def admit(self, spec: pb.QuerySpec, plan: QueryPlan, min_holders: int) -> int:
        plan_sides(plan)  # refuses an unlinked plan
        return super().admit(spec, plan, min_holders)

    def contribution_bytes(self, header: pb.ContributionHeader, aggregate: Any) -> int:
        """Uploads vary in size (rows); parse_payload checks the exact layout."""
        if not isinstance(aggregate, LinkageAggregate):
            raise InvalidInputError("not a linked query")
        most = max(
            _PREFIX.size + _MAX_SIGNATURE + r * (PSEUDONYM_BYTES + 8 * w)
            for w, r in zip(aggregate.widths, aggregate.max_rows, strict=True)
        )
        if header.payload_bytes > most:
            raise InvalidInputError(
                f"a linkage upload for this query has at most {most} bytes, "
                f"got {header.payload_bytes}"
            )
        return int(header.payload_bytes)

    def running_aggregate(  # type: ignore[override]  # a RunningAggregate, not additive's
        self,
        spec: pb.QuerySpec,
        length: int,
        plan: QueryPlan,
        data: bytes | None = None,
        *,
        count: int = 0,
    ) -> LinkageAggregate:
        widths, rows, _ = plan_sides(plan)
        return LinkageAggregate(length, widths, rows, data, count=count)

    def prepare_message(
        self,
        holder: str,
        certificate: bytes,
        seeds: Sequence[pb.SealedSeed],
        parsed: object,
        *,
        context: Any = None,
    ) -> pb.SealedContribution:
        """The sealed seed only (what the leader stores: no pseudonym); the parsed
        upload learns whose it is."""
        if isinstance(parsed, LinkageRows):
            parsed.holder = holder
            parsed.certificate = bytes(certificate)
        return pb.SealedContribution(holder=holder, certificate=certificate, seeds=seeds)

    def release_share(self, share: bytes | memoryview) -> bytes | memoryview | None:
        """The leader's share over the matched rows, untagged; the helper's as it is."""
        if bytes(share[: len(JOINED_TAG)]) == JOINED_TAG:
            return share[len(JOINED_TAG) :]
        if bytes(share[: len(UPLOADS_TAG)]) == UPLOADS_TAG:
            raise PetsError("a linked query is released only after its join")
        return None

    # -- helper
    def helper_checker(self, context: HelperQueryContext) -> LinkageOpener:
        opener = LinkageOpener.for_query(context)
        opener.linkage = self._joined.get((context.helper, context.query_id))
        return opener
