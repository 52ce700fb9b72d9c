"""The leader's half of record linkage (issue 16; docs/LINKAGE.md, "Service").

* :meth:`LeaderLinkage.evaluate` serves ``Leader.LinkageEvaluate``: a
  holder's signed blinded batch arrives in chunks; the leader checks the
  header (query open and linked, the query's domain, rows within the sides'
  ``max_rows``, chunk size, first batch of this holder), relays every chunk to
  the helper (``Helper.LinkageEvaluate``, which checks the holder's
  certificate and signatures and applies k_H), applies its own share k_L to
  each evaluated chunk as it comes back, and streams k·B to the holder. In
  verified mode both servers prove each chunk (batched DLEQ) and the first
  answer carries both signed public key shares. The relay is a pipeline: at
  most a few chunks are in flight, so memory stays bounded for 10^6 points.
* :meth:`LeaderLinkage.join` runs at finalisation, before the helper sums:
  the leader joins the uploads it holds in memory
  (:class:`pets.protocols.linkage.LinkageAggregate`), refuses below the
  floor, streams every upload's signed pseudonyms and its digest to the
  helper (``Helper.LinkageJoin``) and compares the helper's digest in
  constant time. Any refusal fails the query; nothing is released.

The per-query key share k_L is derived from the leader's long-term linkage
secret (32 random bytes made on first use and kept in the store's settings,
like the helper's seal key); neither it nor any batch, pseudonym or point is
ever logged.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator, Iterator

import grpc

from pets.errors import (
    InvalidInputError,
    NotReadyError,
    PetsError,
    ThresholdNotMetError,
)
from pets.identity.certificates import Peer
from pets.linkage import (
    BatchRejectedError,
    LinkageDomain,
    derive_key_share,
    evaluate,
)
from pets.linkage.errors import DigestMismatchError
from pets.linkage.sides import check_records_floor
from pets.protocols.linkage import (
    MAX_CHUNK_POINTS,
    LinkageAggregate,
    chunk_context,
    plan_sides,
)
from pets.runtime.offload import offload
from pets.server.leader.state import LeaderState, QueryRuntime, log
from pets.server.linkage_keys import load_secret, query_floor, server_floor, signed_key
from pets.server.query_state import OPEN
from pets.server.rpc import opened_with_header
from pets.transport.status import error_for
from pets.v1 import aggregation_pb2 as pb

#: Pseudonyms per LinkageJoin part.
JOIN_PART = 65536
MISMATCH = ("linkage_digest_mismatch", "the servers' matched sets differ; nothing released")


class LeaderLinkage:
    """The OPRF relay and the join, for every linked query on this leader."""

    def __init__(self, state: LeaderState) -> None:
        self.state = state
        self._secret: bytes | None = None
        self._lock = asyncio.Lock()
        # (query, holder) pairs that sent a batch (the helper keeps the durable record).
        self._admitted: set[tuple[str, str]] = set()
        self._joined: set[str] = set()  # queries whose join both servers agreed on

    async def secret(self) -> bytes:
        async with self._lock:
            if self._secret is None:
                self._secret = await load_secret(self.state.store)
            return self._secret

    # -- the OPRF relay ------------------------------------------------------------
    async def evaluate(
        self,
        peer: Peer,
        certificate: bytes,
        requests: AsyncIterator[pb.LinkageBatchChunk],
    ) -> AsyncIterator[pb.LinkageEvaluation]:
        first, stream = await opened_with_header(requests, "a linkage batch")
        header = first.header
        rt = self.state.runtime(header.query_id)
        if not getattr(rt.protocol, "joins", False):
            raise InvalidInputError(f"query {header.query_id} is not a linked query")
        if rt.record.state != OPEN or rt.plan is None:
            raise NotReadyError(f"query {header.query_id} is no longer accepting contributions")
        _, max_rows, domain = plan_sides(rt.plan)
        if header.domain != domain:
            raise InvalidInputError(f"query {header.query_id} links domain {domain!r}")
        if header.rows > max(max_rows):
            raise BatchRejectedError(
                "oversized-batch", f"a batch for this query has at most {max(max_rows)} points"
            )
        if not 1 <= header.chunk_points <= MAX_CHUNK_POINTS:
            raise InvalidInputError(f"chunk_points must lie in [1, {MAX_CHUNK_POINTS}]")
        if len(self.state.helpers) != 1:
            raise InvalidInputError("record linkage runs with exactly one helper")
        admitted = (rt.record.id, peer.name)
        if admitted in self._admitted or peer.name in rt.holders:
            raise BatchRejectedError(
                "repeated-batch", "this holder already sent its batch for this query"
            )
        self._admitted.add(admitted)
        key = derive_key_share(await self.secret(), "leader", LinkageDomain(domain), rt.record.id)
        relay = pb.LinkageBatchHeader()
        relay.CopyFrom(header)
        relay.holder = peer.name
        relay.certificate = certificate

        async def outgoing() -> AsyncIterator[pb.LinkageBatchChunk]:
            yield pb.LinkageBatchChunk(
                header=relay, index=first.index, points=first.points, signature=first.signature
            )
            async for msg in stream:
                if msg.HasField("header"):
                    raise InvalidInputError("only the first message may carry a header")
                yield msg

        helper = self.state.helpers[0]
        call = helper.linkage_evaluate(outgoing())  # type: ignore[attr-defined]
        mine = None
        if header.prove:
            mine = signed_key(self.state.config, "leader", domain, rt.record.id, key)
        index = 0
        try:
            async for ev in call:
                if ev.index != index or len(ev.points) > 33 * header.chunk_points:
                    raise PetsError("the helper answered out of order")
                context = chunk_context("leader", domain, rt.record.id, peer.name, index)
                out = await offload(
                    len(ev.points) * 1000,
                    lambda p=ev.points, c=context: evaluate(
                        p, key, max_rows=header.chunk_points, prove=header.prove, context=c
                    ),
                )
                answer = pb.LinkageEvaluation(index=index, points=out.outputs)
                if header.prove:
                    answer.proof = out.proof or b""
                    answer.helper_points = ev.points
                    answer.helper_proof = ev.proof
                    if index == 0:
                        answer.keys.extend([*ev.keys, mine])
                index += 1
                yield answer
        except grpc.aio.AioRpcError as exc:  # the helper's refusal, with its status
            raise error_for(exc, f"helper {helper.name}") from None
        finally:
            call.cancel()
        log.info(
            "linkage batch evaluated",
            extra={"query_id": rt.record.id, "holder": peer.name, "chunks": index},
        )

    # -- the join --------------------------------------------------------------------
    async def join(self, rt: QueryRuntime) -> tuple[str, str] | None:
        """Join, floor, digest exchange; None when the helper may sum, else
        ``(failure, detail)`` for a FAILED query (nothing released)."""
        aggregate = rt.aggregate
        if not isinstance(aggregate, LinkageAggregate):
            return "linkage_refused", "the query holds no linkage uploads; nothing released"
        if aggregate.result is not None and rt.record.id in self._joined:
            return None  # joined and agreed before a retried finalisation
        floor = max(server_floor(self.state.config), query_floor(rt.spec, rt.plan))
        uploads = aggregate.side_uploads()
        try:
            matched = await offload(
                sum(len(u.pseudonyms) for u in uploads), aggregate.join, rt.record.id
            )
            check_records_floor(matched, floor)
        except ThresholdNotMetError:
            aggregate.forget()
            return (
                "below_min_intersection",
                f"the matched set is below min_intersection {floor}; nothing released",
            )
        except PetsError as exc:
            aggregate.forget()
            return "linkage_refused", f"{exc}; nothing released"
        helper = self.state.helpers[0]
        digests = {h: rt.holders.get(h, b"") for h in aggregate.uploads}
        try:
            response = await helper.linkage_join(  # type: ignore[attr-defined]
                self._join_messages(rt, aggregate, matched.digest, digests),
                timeout=self.state.config.limits.finalize_timeout_seconds,
            )
        except DigestMismatchError:
            return MISMATCH
        except ThresholdNotMetError:
            return (
                "below_min_intersection",
                f"the matched set is below min_intersection {floor}; nothing released",
            )
        except PetsError as exc:
            if "linkage digest" in str(exc):  # the helper's DigestMismatchError, relayed
                return MISMATCH
            return (
                "linkage_refused",
                f"helper {helper.name} refused the join: {exc}; nothing released",
            )
        finally:
            aggregate.forget()  # the pseudonyms and share rows: not needed any more
        if not hmac.compare_digest(bytes(response.digest), matched.digest):
            return MISMATCH
        # The leader's share over the matched rows becomes its durable aggregate (what
        # the release reads), replacing the upload count.
        await self.state.store.commit_contributions([], {rt.record.id: aggregate.to_bytes()})
        self._joined.add(rt.record.id)
        log.info("linkage joined", extra={"query_id": rt.record.id, "holders": len(digests)})
        return None

    def _join_messages(
        self,
        rt: QueryRuntime,
        aggregate: LinkageAggregate,
        digest: bytes,
        contribution_digests: dict[str, bytes],
    ) -> Iterator[pb.LinkageJoinMessage]:
        holders = sorted(aggregate.uploads)
        yield pb.LinkageJoinMessage(
            header=pb.LinkageJoinHeader(
                query_id=rt.record.id, contributors=len(holders), digest=digest
            )
        )
        for holder in holders:
            up = aggregate.uploads[holder]
            step = JOIN_PART * 16
            parts = range(0, max(1, len(up.pseudonyms)), step)
            for at in parts:
                yield pb.LinkageJoinMessage(
                    part=pb.LinkagePseudonyms(
                        holder=holder,
                        certificate=up.certificate,
                        upload=pb.LinkageUpload(side=up.side, rows=up.rows, signature=up.signature),
                        contribution_digest=contribution_digests[holder],
                        pseudonyms=up.pseudonyms[at : at + step],
                        last=at + step >= len(up.pseudonyms),
                    )
                )
