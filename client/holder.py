"""A data holder's side of the protocols: shard (or encrypt) and deliver.

Additive protocol (DESIGN.md):

1. derive one seed per helper (from the node's long-term key, the query, the
   helper slot and the vector itself; or fresh from ``os.urandom``);
2. hand each helper its seed, which answers with a signed receipt once the
   seed is durable, while the leader's share ``x - sum(PRG(seed))`` is
   computed off the event loop;
3. stream the masked vector to the leader in ~1 MB chunks with the SHA-256
   of the payload in the header and the receipts in the header (small
   payloads) or in the last message (large ones, so the helpers'
   acknowledgements overlap the upload).

A retry after a transient failure re-sends the *same* payload and receipts,
which the servers treat as idempotent; with derived seeds even a restarted
node re-shards the same vector into the same shares.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import grpc
import numpy as np

from pets import encoding, prg, sharing, wire
from pets.client.connect import Connector
from pets.errors import InvalidInputError, NotFoundError, PetsError
from pets.offload import offload
from pets.query import QueryPlan
from pets.status import error_for
from pets.v1 import aggregation_pb2 as pb
from pets.v1 import aggregation_pb2_grpc as pb_grpc

log = logging.getLogger("pets.client.holder")

RETRY_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class HolderClient:
    """RPCs a holder makes: seeds to helpers, payloads to the leader."""

    def __init__(self, connector: Connector, *, seed_key: bytes | None = None) -> None:
        """``seed_key``: a long-term 32-byte secret from which the holder derives its
        seeds per (query, helper); without it seeds are fresh from ``os.urandom``."""
        self.connector = connector
        self._seed_key = seed_key
        self._leader_channel = connector.leader_channel()
        self.leader = pb_grpc.LeaderStub(self._leader_channel)
        self._helpers: dict[str, tuple[grpc.aio.Channel, pb_grpc.HelperStub]] = {}

    async def close(self) -> None:
        await self._leader_channel.close()
        for channel, _ in self._helpers.values():
            await channel.close()

    def helper(self, name: str) -> pb_grpc.HelperStub:
        if name not in self._helpers:
            channel = self.connector.helper_channel(name)
            self._helpers[name] = (channel, pb_grpc.HelperStub(channel))
        return self._helpers[name][1]

    async def _retrying(self, what: str, deadline: float, call: object) -> object:
        delay = 0.2
        while True:
            try:
                return await call()  # type: ignore[operator]
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in RETRY_CODES or time.time() + delay > deadline:
                    raise error_for(exc, what) from None
                log.warning("retrying", extra={"call": what, "code": exc.code().name})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def announcement(self, query_id: str) -> pb.QueryAnnouncement:
        """The leader's announcement of one open query (what a watching node gets)."""
        call = self.leader.WatchQueries(
            pb.WatchQueriesRequest(include_open=True), metadata=self.connector.metadata
        )
        try:
            async for ann in call:
                if ann.query_id == query_id:
                    return ann
        except grpc.aio.AioRpcError as exc:
            raise error_for(exc, "watch queries") from None
        finally:
            call.cancel()
        raise NotFoundError(f"query {query_id} was not announced (closed, or unknown)")

    async def submit_seeds(
        self, ann: pb.QueryAnnouncement, seeds: Sequence[bytes]
    ) -> list[pb.SeedReceipt]:
        if len(seeds) != len(ann.helpers):
            raise InvalidInputError("one seed per helper")
        md = self.connector.metadata

        async def one(name: str, seed: bytes) -> pb.SeedReceipt:
            stub = self.helper(name)
            req = pb.SeedSubmission(query_id=ann.query_id, seed=seed)
            return await self._retrying(  # type: ignore[return-value]
                f"seed to helper {name}",
                ann.deadline_unix,
                lambda: stub.SubmitSeed(req, metadata=md, timeout=30),
            )

        return list(
            await asyncio.gather(*(one(n, s) for n, s in zip(ann.helpers, seeds, strict=True)))
        )

    async def send_payload(
        self,
        query_id: str,
        payload: bytes | memoryview,
        receipts: Sequence[pb.SeedReceipt] | asyncio.Future,
        *,
        deadline: float,
    ) -> pb.ContributionAck:
        """Stream ``payload`` to the leader with the helpers' ``receipts``.

        ``receipts`` may still be on their way (a future): a payload of more
        than one chunk is then streamed at once and the receipts follow in the
        last message, so the helpers' acknowledgements overlap the upload. A
        small payload waits for them and goes as a single message.
        """
        payload = memoryview(payload).cast("B")
        digest = wire.digest(payload)
        if isinstance(receipts, asyncio.Future) and len(payload) <= wire.CHUNK_BYTES:
            receipts = await receipts

        def header(with_receipts: Sequence[pb.SeedReceipt]) -> pb.ContributionHeader:
            return pb.ContributionHeader(
                query_id=query_id,
                payload_bytes=len(payload),
                receipts=list(with_receipts),
                payload_digest=digest,
            )

        def data(first: pb.ContributionHeader) -> Iterator[pb.ContributionChunk]:
            # Chunks are made one at a time, as gRPC sends them.
            for i, chunk in enumerate(wire.chunks(payload)):
                yield pb.ContributionChunk(header=first if i == 0 else None, data=bytes(chunk))

        async def data_then_receipts(
            pending: asyncio.Future,
        ) -> AsyncIterator[pb.ContributionChunk]:
            for message in data(header(())):
                yield message
            yield pb.ContributionChunk(receipts=list(await pending))

        attempts = 0

        async def call() -> Any:
            nonlocal attempts
            attempts += 1
            pending = isinstance(receipts, asyncio.Future) and not receipts.done()
            if pending and attempts > 1:
                # Overlap only once: a retry waits for the helpers rather than
                # uploading the whole vector again while they are slow or down.
                await receipts
                pending = False
            if pending:
                stream: Any = data_then_receipts(receipts)  # type: ignore[arg-type]
            else:
                known = receipts.result() if isinstance(receipts, asyncio.Future) else receipts
                stream = data(header(known))
            return await self.leader.Contribute(
                stream, metadata=self.connector.metadata, timeout=max(30.0, len(payload) / 20e6)
            )

        return await self._retrying(f"contribution to {query_id}", deadline, call)  # type: ignore[return-value]

    async def contribute_additive(
        self, ann: pb.QueryAnnouncement, ring_vector: np.ndarray
    ) -> pb.ContributionAck:
        """Shard ``ring_vector`` (uint64) and deliver it to every server."""
        if ring_vector.shape != (ann.vector_length,):
            raise InvalidInputError(
                f"query {ann.query_id} takes {ann.vector_length} values, got {ring_vector.shape}"
            )
        if len(set(ann.helpers)) != len(ann.helpers) or not ann.helpers:
            raise InvalidInputError("the announcement must name distinct helpers")
        if self._seed_key is not None:
            # Bound to everything that identifies this sharing, including the vector:
            # re-sharding the same vector gives the same shares (an idempotent re-send),
            # while any other query, helper slot or vector gets independent masks.
            x_digest = await offload(ring_vector.nbytes, wire.digest, wire.vector_view(ring_vector))
            seeds = [
                prg.derive_seed(
                    self._seed_key,
                    ann.query_id.encode(),
                    bytes(ann.fingerprint),
                    i.to_bytes(4, "big"),
                    name.encode(),
                    x_digest,
                )
                for i, name in enumerate(ann.helpers)
            ]
        else:
            seeds = [prg.new_seed() for _ in ann.helpers]
        # The helpers need only their seeds: hand them over while the leader's
        # share is computed (off the event loop), then send it with the receipts.
        receipts = asyncio.ensure_future(self.submit_seeds(ann, seeds))
        try:
            shares = await offload(
                ring_vector.nbytes, sharing.shard, ring_vector, 1 + len(ann.helpers), seeds=seeds
            )
            payload = wire.vector_view(shares.leader)
            try:
                return await self.send_payload(
                    ann.query_id, payload, receipts, deadline=ann.deadline_unix
                )
            except PetsError:
                if receipts.done() and not receipts.cancelled() and receipts.exception():
                    raise receipts.exception() from None  # the real cause: a helper refused
                raise
        finally:
            if not receipts.done():
                receipts.cancel()

    async def contribute(
        self, ann: pb.QueryAnnouncement, plan: QueryPlan, vector: np.ndarray
    ) -> pb.ContributionAck:
        """Deliver the holder's evaluated int64 ``vector`` by the query's protocol."""
        if ann.spec.protocol == pb.PROTOCOL_PAILLIER:
            from pets.client.paillier_holder import encrypt_contribution

            payload = await asyncio.to_thread(encrypt_contribution, ann, plan, vector)
            return await self.send_payload(ann.query_id, payload, [], deadline=ann.deadline_unix)
        return await self.contribute_additive(ann, encoding.to_ring(vector))
