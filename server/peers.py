"""The leader's links to its helpers (gRPC clients authenticated as the leader)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator, Sequence

import grpc

from pets.errors import UnavailableError
from pets.identity.certificates import server_dns_name
from pets.server.config import HelperEndpoint, ServerConfig
from pets.transport import wire
from pets.transport.status import error_for
from pets.transport.targets import open_channel
from pets.transport.wire import INSECURE_IDENTITY_HEADER
from pets.v1 import aggregation_pb2 as pb
from pets.v1 import aggregation_pb2_grpc as pb_grpc

log = logging.getLogger("pets.server.leader")

FINALIZE_BATCH = 256  # contributors per FinalizeMessage (~200 kB)
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", wire.MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", wire.MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
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
    ) -> Iterator[pb.FinalizeMessage]:
        """A header, then the contributors in batches, each holder with only this
        helper's sealed seed. ``contributions`` (messages, or stored serialised
        ones) must be sorted by holder."""
        yield pb.FinalizeMessage(
            header=pb.FinalizeHeader(query_id=query_id, contributors=len(contributions))
        )
        for start in range(0, len(contributions), FINALIZE_BATCH):
            batch = []
            for c in contributions[start : start + FINALIZE_BATCH]:
                stored = pb.SealedContribution.FromString(c) if isinstance(c, bytes) else c
                mine = [s for s in stored.seeds if s.helper == self.name]
                batch.append(
                    pb.SealedContribution(
                        holder=stored.holder,
                        certificate=stored.certificate,
                        seeds=mine,
                        # Prio3: the public share, the leader's verifier share and
                        # (once decided) the verifier message.
                        public_share=stored.public_share,
                        verifier_share=stored.verifier_share,
                        verifier_message=stored.verifier_message,
                    )
                )
            yield pb.FinalizeMessage(contributions=batch)

    async def prepare(
        self, query_id: str, contributions: Sequence[pb.SealedContribution], timeout: float
    ) -> pb.PrepareResponse:
        """Have the helper check and open these contributors' seeds; its verdicts."""
        return await self._call(  # type: ignore[return-value]
            "Prepare", self._messages(query_id, contributions), timeout
        )

    async def finalize(self, query_id: str, contributions: Sequence[bytes], timeout: float) -> None:
        """Stream the fixed contributor set; the helper sums exactly these seeds."""
        await self._call("Finalize", self._messages(query_id, contributions), timeout)

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
