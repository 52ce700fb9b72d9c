"""The leader's links to its helpers (gRPC clients authenticated as the leader)."""

from __future__ import annotations

import asyncio
import logging

import grpc
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from pets import wire
from pets.errors import InvalidInputError, UnavailableError
from pets.identity import server_dns_name
from pets.server.config import HelperEndpoint, ServerConfig
from pets.server.storage import AsyncStore
from pets.status import error_for
from pets.v1 import aggregation_pb2 as pb
from pets.v1 import aggregation_pb2_grpc as pb_grpc
from pets.wire import INSECURE_IDENTITY_HEADER

log = logging.getLogger("pets.server.leader")

CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", wire.MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", wire.MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
]


def helper_channel(
    endpoint: HelperEndpoint, credentials: grpc.ChannelCredentials | None
) -> grpc.aio.Channel:
    """A channel to one helper; with TLS its certificate must name that helper."""
    if credentials is None:
        return grpc.aio.insecure_channel(endpoint.address, options=CHANNEL_OPTIONS)
    pin = ("grpc.ssl_target_name_override", server_dns_name("helper", endpoint.name))
    return grpc.aio.secure_channel(endpoint.address, credentials, options=[*CHANNEL_OPTIONS, pin])


class HelperLink:
    """One helper as seen by the leader: RPCs plus the helper's receipt key."""

    def __init__(
        self,
        endpoint: HelperEndpoint,
        config: ServerConfig,
        credentials: grpc.ChannelCredentials | None,
        store: AsyncStore,
    ) -> None:
        self.name = endpoint.name
        self.address = endpoint.address
        self._channel = helper_channel(endpoint, credentials)
        self._stub = pb_grpc.HelperStub(self._channel)
        self._metadata = (
            ((INSECURE_IDENTITY_HEADER, f"leader/{config.name}"),) if credentials is None else ()
        )
        self._store = store
        self._key: Ed25519PublicKey | None = None
        self._key_lock = asyncio.Lock()

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

    async def receipt_key(self) -> Ed25519PublicKey:
        """The helper's receipt-signing key: cached in memory and in SQLite."""
        async with self._key_lock:
            if self._key is None:
                setting = f"helper-receipt-key/{self.name}"
                raw = await self._store.run(self._store.store.get_setting, setting)
                if raw is None:
                    info = await self._call("GetInfo", pb.HelperInfoRequest(), 10.0)
                    if info.name != self.name:
                        raise UnavailableError(
                            f"server at {self.address} says it is {info.name!r}, "
                            f"configured as {self.name!r}"
                        )
                    raw = bytes(info.receipt_public_key)
                    await self._store.run(self._store.store.put_setting, setting, raw)
                self._key = Ed25519PublicKey.from_public_bytes(raw)
            return self._key

    async def verify_receipt(self, receipt: pb.SeedReceipt, query_id: str, holder: str) -> None:
        if receipt.helper != self.name or receipt.query_id != query_id or receipt.holder != holder:
            raise InvalidInputError(
                f"receipt from helper {self.name} does not name this query, holder and helper"
            )
        if len(receipt.seed_digest) != 32:
            raise InvalidInputError(f"receipt from helper {self.name} has a malformed seed digest")
        message = wire.receipt_message(self.name, query_id, holder, bytes(receipt.seed_digest))
        key = await self.receipt_key()
        try:
            key.verify(bytes(receipt.signature), message)
        except InvalidSignature:
            raise InvalidInputError(
                f"receipt from helper {self.name} has an invalid signature"
            ) from None

    async def register(self, request: pb.RegisterQueryRequest) -> None:
        await self.receipt_key()
        await self._call("RegisterQuery", request, 10.0)

    async def finalize(self, query_id: str, contributors: list[str], timeout: float) -> None:
        await self._call(
            "Finalize", pb.FinalizeRequest(query_id=query_id, contributors=contributors), timeout
        )

    async def abort(self, query_id: str) -> None:
        """Tell the helper the query failed: it drops the seeds and releases nothing."""
        await self._call("Finalize", pb.FinalizeRequest(query_id=query_id, abort=True), 10.0)
