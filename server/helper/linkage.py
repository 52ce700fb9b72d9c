"""The helper's half of record linkage (issue 16; docs/LINKAGE.md, "Service").

* :meth:`HelperLinkage.evaluate` serves ``Helper.LinkageEvaluate`` (called by
  the leader, which relays a holder's batch). Before it evaluates a point the
  helper checks, itself, what stops the leader from using it as an oracle:
  the holder's certificate (project CA, role holder, the name the leader
  relays), the holder's signature over every chunk
  (:func:`pets.protocols.linkage.chunk_message`), ``rows`` within the sides'
  ``max_rows``, chunks in order and of the announced size, and that this is
  the holder's *first* batch for the query, recorded durably in the store
  (a setting naming the query and the holder; never a point) so a restart
  does not forget it. It then applies k_H chunk by chunk (with a batched DLEQ
  proof per chunk in verified mode, and its signed public key share first).
* :meth:`HelperLinkage.join` serves ``Helper.LinkageJoin`` at finalisation:
  every contributor's pseudonyms, each checked against the holder's
  signature (:func:`pets.protocols.linkage.upload_message`, which also binds
  them to the holder's sealed seed), joined (union within a side,
  intersection across sides, :func:`pets.linkage.sides.match_sides`); the
  digest is compared with the leader's in constant time, then the floor. Only
  the matched row indices are kept (no pseudonym) for Finalize, where
  :class:`pets.protocols.linkage.LinkageOpener` sums the seeds' expansions
  over them.

The key share k_H comes from the helper's long-term linkage secret (made on
first use, kept in the store's settings like the seal key); nothing secret
and no batch, point or pseudonym is logged.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from cryptography.exceptions import InvalidSignature

from pets import seal
from pets.errors import InvalidInputError, NotReadyError
from pets.identity.certificates import Role
from pets.linkage import BatchRejectedError, LinkageDomain, derive_key_share, evaluate
from pets.linkage.errors import DigestMismatchError
from pets.linkage.sides import SideUpload, check_records_floor, match_sides
from pets.protocols.linkage import (
    DEFAULT_MAX_ROWS,
    MAX_CHUNK_POINTS,
    JoinedRows,
    LinkageProtocol,
    chunk_context,
    chunk_message,
    upload_message,
)
from pets.query import Query, Schema
from pets.query import compile as compile_query
from pets.server.helper.queries import HelperQueries, HelperQuery
from pets.server.linkage_keys import load_secret, server_floor, signed_key
from pets.server.query_state import OPEN
from pets.server.rpc import opened_with_header
from pets.v1 import aggregation_pb2 as pb

log = logging.getLogger("pets.server.helper")

_ECDSA = seal._ECDSA  # ECDSA P-256 with SHA-256, as every holder signature


def admission_setting(query_id: str, holder: str) -> str:
    """The store setting that records a holder's batch for a query (names only)."""
    return f"linkage-batch/{query_id}/{holder}"


class HelperLinkage:
    """The OPRF step and the join, for every linked query on this helper."""

    def __init__(self, queries: HelperQueries) -> None:
        self.queries = queries
        self.config = queries.config
        self.store = queries.store
        self._secret: bytes | None = None
        self._lock = asyncio.Lock()
        self._ca_pem = None if self.config.tls is None else self.config.tls.ca.read_bytes()

    async def secret(self) -> bytes:
        async with self._lock:
            if self._secret is None:
                self._secret = await load_secret(self.store)
            return self._secret

    async def _linked(self, query_id: str) -> tuple[HelperQuery, LinkageProtocol, Query]:
        q: Any = self.queries.get(query_id)
        if inspect.isawaitable(q):  # helper replicas read a query through from the store
            q = await q
        protocol = q.protocol
        if not isinstance(protocol, LinkageProtocol):
            raise InvalidInputError(f"query {query_id} is not a linked query")
        spec = pb.QuerySpec.FromString(q.record.spec)
        return q, protocol, Query.from_json(spec.query_json)

    def _max_rows(self, query: Query) -> int:
        """The most points one batch may hold: the largest side's max_rows when this
        helper has the schema, else :data:`DEFAULT_MAX_ROWS`."""
        schema_path = self.config.schema
        if schema_path is None:
            return DEFAULT_MAX_ROWS
        plan = compile_query(query, Schema.from_toml(schema_path.read_text()))
        sides = getattr(plan, "linkage", None)
        if sides is None:
            raise InvalidInputError("the query is not linked under this helper's schema")
        return max(int(s.dataset.max_rows or DEFAULT_MAX_ROWS) for s in sides.sides)

    def _holder_key(self, holder: str, certificate: bytes) -> Any:
        """The holder's signature key, its certificate checked (None in --insecure mode)."""
        if self._ca_pem is None:
            return None
        seal.check_party(certificate, self._ca_pem, Role.HOLDER, holder)
        return seal.certificate_key(certificate)

    # -- the OPRF step --------------------------------------------------------------
    async def evaluate(
        self, requests: AsyncIterator[pb.LinkageBatchChunk]
    ) -> AsyncIterator[pb.LinkageEvaluation]:
        first, stream = await opened_with_header(requests, "a linkage batch")
        header = first.header
        q, _, query = await self._linked(header.query_id)
        if q.closing or q.record.state != OPEN:
            raise NotReadyError(f"query {q.record.id} is no longer accepting contributions")
        holder = header.holder
        if not holder:
            raise InvalidInputError("the relayed batch must name its holder")
        public = self._holder_key(holder, bytes(header.certificate))
        most = self._max_rows(query)
        if header.rows > most:
            raise BatchRejectedError("oversized-batch", f"a batch has at most {most} points")
        size = header.chunk_points
        if not 1 <= size <= MAX_CHUNK_POINTS:
            raise InvalidInputError(f"chunk_points must lie in [1, {MAX_CHUNK_POINTS}]")
        domain = header.domain
        LinkageDomain(domain)  # a well-formed name, else SchemaError (INVALID_ARGUMENT)
        setting = admission_setting(q.record.id, holder)
        # First batch only, durably (a restart does not forget) and across helper
        # replicas: the one insert that stores this call's random marker wins.
        marker = os.urandom(16)
        async with self._lock:
            stored = await self.store.put_setting_if_absent(setting, marker)
        if not hmac.compare_digest(stored, marker):
            raise BatchRejectedError(
                "repeated-batch", "this holder already sent its batch for this query"
            )
        if self._secret is None:
            await self.secret()
        assert self._secret is not None
        key = derive_key_share(self._secret, "helper", LinkageDomain(domain), q.record.id)
        chunks = -(-header.rows // size) if header.rows else 0
        seen = 0
        index = 0
        msg: pb.LinkageBatchChunk | None = first
        while msg is not None:
            if index > 0 and msg.HasField("header"):
                raise InvalidInputError("only the first message may carry a header")
            points = bytes(msg.points)
            expected = min(size, header.rows - seen)
            if msg.index != index or index >= chunks or len(points) != 33 * expected:
                raise BatchRejectedError(
                    "batch-length", f"chunk {index} of {chunks} must hold {expected} points"
                )
            if public is not None:
                message = chunk_message(domain, q.record.id, holder, header.rows, index, points)
                try:
                    public.verify(bytes(msg.signature), message, _ECDSA)
                except (InvalidSignature, ValueError):
                    raise BatchRejectedError(
                        "signature", f"chunk {index} of the batch is not signed by holder {holder}"
                    ) from None
            context = chunk_context("helper", domain, q.record.id, holder, index)
            out = await asyncio.to_thread(
                evaluate, points, key, max_rows=size, prove=header.prove, context=context
            )
            answer = pb.LinkageEvaluation(index=index, points=out.outputs, proof=out.proof or b"")
            if header.prove and index == 0:
                answer.keys.append(signed_key(self.config, "helper", domain, q.record.id, key))
            seen += expected
            index += 1
            yield answer
            msg = await anext(stream, None)
        if seen != header.rows:
            raise BatchRejectedError("batch-length", f"the batch ended after {seen} points")
        log.info("linkage batch evaluated", extra={"query_id": q.record.id, "holder": holder})

    # -- the join --------------------------------------------------------------------
    async def join(self, requests: AsyncIterator[pb.LinkageJoinMessage]) -> pb.LinkageJoinResponse:
        first, stream = await opened_with_header(requests, "a linkage join")
        header = first.header
        q, protocol, query = await self._linked(header.query_id)
        rec = q.record
        if rec.state != OPEN:
            raise NotReadyError(f"query {rec.id} was already finalised or aborted")
        uploads: list[SideUpload] = []
        signed: dict[str, tuple[int, int, bytes]] = {}
        parts: dict[str, bytearray] = {}
        async for msg in stream:
            part = msg.part
            if part.holder in signed:
                raise InvalidInputError(f"holder {part.holder} appears twice")
            parts.setdefault(part.holder, bytearray()).extend(part.pseudonyms)
            if not part.last:
                continue
            pseudonyms = bytes(parts.pop(part.holder))
            up = part.upload
            if len(pseudonyms) != 16 * up.rows:
                raise InvalidInputError(f"holder {part.holder}'s upload does not have its rows")
            public = self._holder_key(part.holder, bytes(part.certificate))
            if public is not None:
                message = upload_message(
                    rec.id,
                    rec.fingerprint,
                    part.holder,
                    up.side,
                    up.rows,
                    pseudonyms,
                    bytes(part.contribution_digest),
                )
                try:
                    public.verify(bytes(up.signature), message, _ECDSA)
                except (InvalidSignature, ValueError):
                    raise BatchRejectedError(
                        "signature",
                        f"the pseudonyms of holder {part.holder} are not signed by that holder",
                    ) from None
            signed[part.holder] = (up.side, up.rows, bytes(part.contribution_digest))
            uploads.append(SideUpload(part.holder, up.side, pseudonyms))
        if parts or len(signed) != header.contributors:
            raise InvalidInputError("the join did not carry every contributor's pseudonyms whole")
        sides = 1 + len(getattr(query, "linked_to", ()) or ())
        matched = await asyncio.to_thread(match_sides, rec.id, uploads, sides)
        del uploads
        if not hmac.compare_digest(matched.digest, bytes(header.digest)):
            log.warning("linkage digests differ; nothing summed", extra={"query_id": rec.id})
            raise DigestMismatchError()
        spec = pb.QuerySpec.FromString(rec.spec)
        floor = max(
            server_floor(self.config),
            int(getattr(query, "min_intersection", None) or 0),
            int(spec.min_intersection),
        )
        check_records_floor(matched, floor)
        rows = dict(zip(matched.holders, matched.rows, strict=True))
        joined = JoinedRows(
            sides=signed,
            matched={h: rows.get(h, np.zeros(0, dtype=np.int64)) for h in signed},
            digest=matched.digest,
        )
        # Joins of queries that have ended (finalised or aborted) are not needed any more.
        for ended in protocol.joined_queries(self.config.name):
            known = self.queries.queries.get(ended)
            if known is None or known.record.state != OPEN:
                protocol.forget_join(self.config.name, ended)
        protocol.remember_join(self.config.name, rec.id, joined)
        log.info("linkage joined", extra={"query_id": rec.id, "holders": len(signed)})
        return pb.LinkageJoinResponse(query_id=rec.id, digest=matched.digest)
