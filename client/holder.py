"""A data holder's side of the protocols: make a contribution, deliver it.

The query's protocol (:func:`pets.protocols.lookup`) makes the contribution
from the plan and the holder's vector; this client supplies what needs the
holder's identity and the network. For additive queries (the sealed-seed
relay of :mod:`pets.seal`, docs/ARCHITECTURE.md):

1. the protocol derives one seed per helper (from the node's long-term key,
   the query, the helper slot and the vector itself; or fresh from
   ``os.urandom``) and computes the leader's share ``x - sum(PRG(seed))``;
2. :meth:`HolderClient.seal_seeds` seals each seed to its helper's seal key
   (announced by the leader, signed by the helper, checked here against the
   project CA) and signs each sealed seed with the holder's certificate key;
3. the masked vector goes to the leader, the sealed seeds and the
   contribution digest in the header, no connection to any helper: a
   contribution that fits one message (~1 MB) as one message on the
   holder's persistent ``ContributeStream``
   (:mod:`pets.client.contribution_stream`; ``ContributeOne`` when the
   leader lacks it), a larger one streamed in ~1 MB chunks on one
   ``Contribute`` call.

A retry after a transient failure re-sends the *same* messages, which the
leader treats as idempotent; with derived seeds even a restarted node
re-shards the same vector into the same shares and the same digest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

import grpc
import numpy as np
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from pets import seal
from pets.client.connect import Connector
from pets.client.contribution_stream import ContributionStream, MessageError, falls_back
from pets.errors import InvalidInputError, InvalidProofError, NotFoundError
from pets.protocols import HolderContribution, lookup
from pets.protocols.additive import AdditiveProtocol
from pets.query import QueryPlan
from pets.runtime.backoff import Backoff
from pets.transport import wire
from pets.transport.status import error_for
from pets.v1 import aggregation_pb2 as pb
from pets.v1 import aggregation_pb2_grpc as pb_grpc

log = logging.getLogger("pets.client.holder")

RETRY_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
MESSAGE_TIMEOUT = 30.0  # seconds for one one-message contribution's acknowledgement
STATEMENTS_CACHED = 64  # checked helper-key statements a holder remembers


class HolderClient:
    """RPCs a holder makes: everything goes to the leader."""

    def __init__(
        self, connector: Connector, *, seed_key: bytes | None = None, stream: bool = True
    ) -> None:
        """``seed_key``: a long-term 32-byte secret from which the holder derives its
        seeds per (query, helper); without it seeds are fresh from ``os.urandom``.
        ``stream`` (also :attr:`use_stream`, changeable at any time): send
        one-message contributions on the persistent ``ContributeStream``, else
        each as one ``ContributeOne`` call."""
        self.connector = connector
        self._seed_key = seed_key
        self._leader_channel = connector.leader_channel()
        self.leader = pb_grpc.LeaderStub(self._leader_channel)
        # Contribute with messages encoded by pets.transport.wire (one copy of each chunk
        # instead of protobuf's three); same method, same wire format.
        self._contribute_encoded = self._leader_channel.stream_unary(
            "/pets.v1.Leader/Contribute",
            request_serializer=None,
            response_deserializer=pb.ContributionAck.FromString,
        )
        self._stream = ContributionStream(self._leader_channel, connector.metadata)
        self.use_stream = stream
        tls = connector.endpoints.tls
        self._ca_pem: bytes | None = None
        self._signing_key: ec.EllipticCurvePrivateKey | None = None
        if tls is not None:
            self._ca_pem = tls.ca.read_bytes()
            key = load_pem_private_key(tls.key.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise InvalidInputError("the holder's key must be an ECDSA key from `pets certs`")
            self._signing_key = key
        # Helper seal keys already checked, by the announced statement's bytes.
        self._checked_keys: dict[bytes, x25519.X25519PublicKey] = {}

    @property
    def name(self) -> str:
        return self.connector.endpoints.name

    @property
    def signing_key(self) -> ec.EllipticCurvePrivateKey | None:
        """The holder's certificate key (None in ``--insecure`` mode), loaded once."""
        return self._signing_key

    @property
    def streaming(self) -> bool:
        """Whether one-message contributions go on the stream now: :attr:`use_stream`,
        unless the leader answered UNIMPLEMENTED lately."""
        return self.use_stream and self._stream.available

    async def close(self) -> None:
        await self._stream.close()
        await self._leader_channel.close()

    async def _retrying(self, what: str, deadline: float, call: object) -> object:
        backoff = Backoff(0.2, 5.0, deadline=deadline, clock=time.time)
        while True:
            try:
                return await call()  # type: ignore[operator]
            except (grpc.aio.AioRpcError, MessageError) as exc:
                if exc.code() not in RETRY_CODES or backoff.exhausted():
                    raise error_for(exc, what) from None
                log.warning("retrying", extra={"call": what, "code": exc.code().name})
                await backoff.sleep()

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

    def helper_keys(self, ann: pb.QueryAnnouncement) -> list[x25519.X25519PublicKey]:
        """The announced helpers' seal keys, each checked to come from that helper.

        With TLS every key must be signed by the certificate of the helper it
        is announced for, from this holder's project CA: the leader relays the
        keys and must not be able to slip in one of its own. In ``--insecure``
        mode nothing is authenticated and unsigned keys are taken as they come.
        A statement past its signed ``not_after_unix`` is refused (issue 15, item 15).

        A helper signs one statement for many queries (it re-signs every 12 h), so
        each is checked once, then remembered by its exact bytes (helper, key,
        certificate, signature and ``not_after``; at most
        :data:`STATEMENTS_CACHED`): a statement that differs in any byte, such as
        a rotated key or one the leader substituted, is checked afresh, and a
        remembered one is refused once its ``not_after`` has passed.
        """
        if [k.helper for k in ann.helper_keys] != list(ann.helpers):
            raise InvalidProofError(
                f"the announcement of {ann.query_id} does not carry one seal key per helper "
                f"{list(ann.helpers)}"
            )
        keys = []
        now = time.time()
        for statement in ann.helper_keys:
            raw = statement.SerializeToString()
            key = self._checked_keys.get(raw)
            if key is not None and self._ca_pem is not None and statement.not_after_unix <= now:
                key = None  # checked once, expired since: verify again (and refuse)
            if key is None:
                if self._ca_pem is None:
                    key = seal.load_public_key(bytes(statement.seal_public_key))
                else:
                    key = seal.verify_helper_key(
                        statement.helper,
                        bytes(statement.seal_public_key),
                        bytes(statement.certificate),
                        bytes(statement.signature),
                        self._ca_pem,
                        not_after=statement.not_after_unix,
                    )
                if len(self._checked_keys) >= STATEMENTS_CACHED:
                    del self._checked_keys[next(iter(self._checked_keys))]  # the oldest
                self._checked_keys[raw] = key
            keys.append(key)
        return keys

    def seal_seeds(self, ann: pb.QueryAnnouncement, seeds: Sequence[bytes]) -> list[pb.SealedSeed]:
        """Each seed sealed to its helper (a fresh HPKE encapsulation each time) and
        signed by this holder, under the seed context of ``ann``'s query."""
        keys = self.helper_keys(ann)
        if len(seeds) != len(keys):
            raise InvalidInputError("one seed per helper")
        fingerprint = bytes(ann.fingerprint)
        out = []
        for helper, key, seed in zip(ann.helpers, keys, seeds, strict=True):
            context = seal.SeedContext(ann.query_id, fingerprint, self.name, helper)
            sealed = seal.seal(seed, key, context)
            signature = (
                b""
                if self._signing_key is None
                else seal.sign_sealed(context, sealed, self._signing_key)
            )
            out.append(pb.SealedSeed(helper=helper, sealed=sealed, signature=signature))
        return out

    async def send_payload(
        self,
        query_id: str,
        payload: bytes | memoryview,
        digest: bytes,
        sealed_seeds: Sequence[pb.SealedSeed] = (),
        *,
        deadline: float,
    ) -> pb.ContributionAck:
        """Deliver ``payload`` to the leader, ``digest`` and ``sealed_seeds`` in the header:
        as one message on the contribution stream (or ``ContributeOne``) if it fits one,
        else in ~1 MB chunks on one ``Contribute`` call; retried idempotently until
        ``deadline`` (Unix time) while the leader is unavailable."""
        payload = memoryview(payload).cast("B")
        header = pb.ContributionHeader(
            query_id=query_id,
            payload_bytes=len(payload),
            contribution_digest=digest,
            sealed_seeds=list(sealed_seeds),
        )

        def messages() -> Iterator[bytes]:
            # Chunks are encoded one at a time, as gRPC sends them; a retry starts over.
            for i, chunk in enumerate(wire.chunks(payload)):
                yield wire.encode_chunk(header if i == 0 else None, chunk)

        async def call() -> Any:
            if len(payload) <= wire.CHUNK_BYTES:  # one message: on the stream, else unary
                chunk = pb.ContributionChunk(header=header, data=bytes(payload))
                if self.streaming:
                    try:
                        return await self._stream.contribute(chunk, timeout=MESSAGE_TIMEOUT)
                    except MessageError as exc:
                        if not falls_back(exc.code()):
                            raise  # retried (or not) like a failed call
                return await self.leader.ContributeOne(
                    chunk, metadata=self.connector.metadata, timeout=MESSAGE_TIMEOUT
                )
            return await self._contribute_encoded(
                messages(),
                metadata=self.connector.metadata,
                timeout=max(30.0, len(payload) / 20e6),
            )

        return await self._retrying(f"contribution to {query_id}", deadline, call)  # type: ignore[return-value]

    async def contribute_additive(
        self, ann: pb.QueryAnnouncement, ring_vector: np.ndarray
    ) -> pb.ContributionAck:
        """Shard ``ring_vector`` (uint64) and deliver it, seeds sealed, to the leader."""
        contribution = await AdditiveProtocol().contribute_ring(
            ann, ring_vector, seed_key=self._seed_key, sealer=self.seal_seeds
        )
        return await self._deliver(ann, contribution)

    async def contribute(
        self, ann: pb.QueryAnnouncement, plan: QueryPlan, vector: np.ndarray
    ) -> pb.ContributionAck:
        """Deliver the holder's evaluated int64 ``vector`` by the query's protocol."""
        contribution = await lookup(ann.spec.protocol).contribute(
            ann, plan, vector, holder=self.name, seed_key=self._seed_key, sealer=self.seal_seeds
        )
        return await self._deliver(ann, contribution)

    async def _deliver(
        self, ann: pb.QueryAnnouncement, contribution: HolderContribution
    ) -> pb.ContributionAck:
        return await self.send_payload(
            ann.query_id,
            contribution.payload,
            contribution.digest,
            contribution.sealed_seeds,
            deadline=ann.deadline_unix,
        )
