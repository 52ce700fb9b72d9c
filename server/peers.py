"""The leader's links to its helpers (gRPC clients authenticated as the leader)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TypeVar

import grpc

from pets.errors import UnavailableError
from pets.identity.certificates import server_dns_name
from pets.server.config import HelperEndpoint, ServerConfig
from pets.transport import wire
from pets.transport.flowcontrol import FLOW_CONTROL_OPTIONS
from pets.transport.status import error_for
from pets.transport.targets import open_channel
from pets.transport.wire import INSECURE_IDENTITY_HEADER
from pets.v1 import aggregation_pb2 as pb
from pets.v1 import aggregation_pb2_grpc as pb_grpc

log = logging.getLogger("pets.server.leader")
R = TypeVar("R", pb.PrepareResponse, pb.FinalizeResponse)

FINALIZE_BATCH = 256  # contributors per FinalizeMessage (~200 kB)
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", wire.MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", wire.MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    *FLOW_CONTROL_OPTIONS,  # no BDP pings, a fixed window (pets.transport.flowcontrol)
]


def helper_channel(
    endpoint: HelperEndpoint, credentials: grpc.ChannelCredentials | None
) -> grpc.aio.Channel:
    """A channel to one helper, at one address or several (its replicas, calls spread by
    gRPC ``round_robin``: :mod:`pets.transport.targets`); with TLS every replica's
    certificate must name that helper."""
    pin = None if credentials is None else server_dns_name("helper", endpoint.name)
    return open_channel(endpoint.address, credentials, pin, CHANNEL_OPTIONS)


class HelperLink:
    """One helper as seen by the leader: the calls the leader makes to it."""

    def __init__(
        self,
        endpoint: HelperEndpoint,
        config: ServerConfig,
        credentials: grpc.ChannelCredentials | None,
    ) -> None:
        self.name = endpoint.name
        self.address = endpoint.address
        self._channel = helper_channel(endpoint, credentials)
        self._stub = pb_grpc.HelperStub(self._channel)
        # Prepare and Finalize, sent as encoded messages (_messages): no serializer.
        self._encoded_calls: dict[str, grpc.aio.StreamUnaryMultiCallable] = {}
        self._metadata = (
            ((INSECURE_IDENTITY_HEADER, f"leader/{config.name}"),) if credentials is None else ()
        )

    async def close(self) -> None:
        await self._channel.close()

    async def _call(self, method: str, request: object, timeout: float) -> object:
        """Call the helper; failures come back as the matching pets error
        (UnavailableError only for UNAVAILABLE / DEADLINE_EXCEEDED, which are retried)."""
        try:
            return await getattr(self._stub, method)(
                request, timeout=timeout, metadata=self._metadata
            )
        except grpc.aio.AioRpcError as exc:
            raise error_for(exc, f"helper {self.name} {method}") from None

    async def register(self, request: pb.RegisterQueryRequest) -> pb.HelperKey:
        """Register a query; returns the seal key holders must seal this helper's seeds
        to (the leader announces it with the query; holders check the helper's
        signature on it)."""
        response = await self._call("RegisterQuery", request, 10.0)
        assert isinstance(response, pb.RegisterQueryResponse)
        key = response.seal_key
        if key.helper != self.name:
            raise UnavailableError(
                f"server at {self.address} vouches for a key as {key.helper!r}, "
                f"configured as {self.name!r}"
            )
        return key

    def _messages(
        self, query_id: str, contributions: Sequence[pb.SealedContribution | bytes]
    ) -> Iterator[bytes]:
        """The header, then the contributors in batches, each holder with only this
        helper's sealed seed, each message encoded; the first batch goes in the
        header's message (one message for up to :data:`FINALIZE_BATCH` contributors:
        one write and one read fewer per call). ``contributions`` (messages, or stored
        serialised ones) must be sorted by holder.

        A contribution that carries this helper's seeds only (one helper: every
        one) goes as it is encoded, not copied field by field; a message is the
        encoding of ``FinalizeMessage(header=..., contributions=batch)`` joined from
        its fields' (:func:`pets.transport.wire.field_record`).
        """
        header = pb.FinalizeHeader(query_id=query_id, contributors=len(contributions))
        first = wire.field_record(_HEADER_TAG, header.SerializeToString())
        for start in range(0, max(len(contributions), 1), FINALIZE_BATCH):
            batch = b"".join(
                wire.field_record(_CONTRIBUTIONS_TAG, self._mine(c))
                for c in contributions[start : start + FINALIZE_BATCH]
            )
            yield first + batch if start == 0 else batch

    def _mine(self, contribution: pb.SealedContribution | bytes) -> bytes:
        """One contribution as this helper gets it, encoded: its other helpers' seeds
        left out."""
        stored = (
            pb.SealedContribution.FromString(contribution)
            if isinstance(contribution, bytes)
            else contribution
        )
        if all(s.helper == self.name for s in stored.seeds):
            return contribution if isinstance(contribution, bytes) else stored.SerializeToString()
        return pb.SealedContribution(
            holder=stored.holder,
            certificate=stored.certificate,
            seeds=[s for s in stored.seeds if s.helper == self.name],
            # Prio3: the public share, the leader's verifier share and
            # (once decided) the verifier message.
            public_share=stored.public_share,
            verifier_share=stored.verifier_share,
            verifier_message=stored.verifier_message,
        ).SerializeToString()

    async def _send(
        self, method: str, messages: Iterator[bytes], timeout: float, response: type[R]
    ) -> R:
        """A client-streaming call whose messages are encoded already; failures as in
        :meth:`_call`."""
        call = self._encoded_calls.get(method)
        if call is None:
            call = self._encoded_calls[method] = self._channel.stream_unary(
                f"/pets.v1.Helper/{method}", response_deserializer=response.FromString
            )
        try:
            answer = await call(messages, timeout=timeout, metadata=self._metadata)
        except grpc.aio.AioRpcError as exc:
            raise error_for(exc, f"helper {self.name} {method}") from None
        assert isinstance(answer, response)
        return answer

    async def prepare(
        self, query_id: str, contributions: Sequence[pb.SealedContribution], timeout: float
    ) -> pb.PrepareResponse:
        """Have the helper check and open these contributors' seeds; its verdicts."""
        return await self._send(
            "Prepare", self._messages(query_id, contributions), timeout, pb.PrepareResponse
        )

    async def finalize(self, query_id: str, contributions: Sequence[bytes], timeout: float) -> None:
        """Stream the fixed contributor set; the helper sums exactly these seeds."""
        await self._send(
            "Finalize", self._messages(query_id, contributions), timeout, pb.FinalizeResponse
        )

    def linkage_evaluate(
        self, requests: AsyncIterator[pb.LinkageBatchChunk]
    ) -> grpc.aio.StreamStreamCall:
        """Record linkage: relay a holder's blinded batch; the helper's evaluations
        stream back chunk by chunk (server/leader/linkage.py)."""
        return self._stub.LinkageEvaluate(requests, metadata=self._metadata)

    async def linkage_join(
        self, messages: Iterator[pb.LinkageJoinMessage], timeout: float
    ) -> pb.LinkageJoinResponse:
        """Record linkage: every upload's signed pseudonyms and the leader's digest;
        the helper's digest."""
        return await self._call("LinkageJoin", messages, timeout)  # type: ignore[return-value]

    async def abort(self, query_id: str) -> None:
        """Tell the helper the query failed: it releases nothing for it."""
        header = pb.FinalizeHeader(query_id=query_id, abort=True)
        await self._call("Finalize", iter([pb.FinalizeMessage(header=header)]), 10.0)


_HEADER_TAG = b"\x0a"  # FinalizeMessage.header: field 1, length-delimited
_CONTRIBUTIONS_TAG = b"\x12"  # FinalizeMessage.contributions: field 2, length-delimited
