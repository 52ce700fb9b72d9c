"""Channels to the servers, authenticated with the party's own certificate."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from pets.client.config import Endpoints
from pets.errors import ConfigError
from pets.identity.certificates import server_dns_name
from pets.identity.files import load_own_identity
from pets.transport import wire
from pets.transport.flowcontrol import FLOW_CONTROL_OPTIONS
from pets.transport.targets import open_channel
from pets.transport.wire import INSECURE_IDENTITY_HEADER

CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", wire.MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", wire.MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 20_000),
    # No HTTP/2 BDP probe pings, a fixed 4 MiB window, as the servers (pets.transport.flowcontrol).
    *FLOW_CONTROL_OPTIONS,
]


class Connector:
    """Opens channels for one party (holder or analyst)."""

    def __init__(self, endpoints: Endpoints, role: str) -> None:
        self.endpoints = endpoints
        self.role = role
        if endpoints.tls is None:
            self._creds = None
            self.metadata: Sequence[tuple[str, str]] = (
                (INSECURE_IDENTITY_HEADER, f"{role}/{endpoints.name}"),
            )
        else:
            tls = endpoints.tls
            # The files must be this party's own (role and name), the key its certificate's:
            # otherwise every call would fail the handshake or be refused, retried forever.
            ca, cert, key = load_own_identity(
                tls.ca, tls.cert, tls.key, role=role, name=endpoints.name
            )
            self._creds = grpc.ssl_channel_credentials(ca, key, cert)
            self.metadata = ()

    def channel(self, address: str, role: str, name: str) -> grpc.aio.Channel:
        """A channel to the ``role`` server called ``name`` at ``address``: one
        ``HOST:PORT`` or several (its replicas), calls spread by gRPC ``round_robin``
        (:func:`pets.transport.targets.open_channel`).

        With TLS the server's certificate must carry ``<name>.<role>.pets``
        (see :func:`pets.identity.certificates.server_dns_name`), so the handshake proves
        which server answered, whichever replica it was.
        """
        pin = None if self._creds is None else server_dns_name(role, name)
        return open_channel(address, self._creds, pin, CHANNEL_OPTIONS)

    def leader_channel(self) -> grpc.aio.Channel:
        return self.channel(self.endpoints.leader, "leader", self.endpoints.leader_name)

    def helper_channel(self, name: str) -> grpc.aio.Channel:
        return self.channel(self.helper_address(name), "helper", name)

    def helper_address(self, name: str) -> str:
        try:
            return self.endpoints.helpers[name]
        except KeyError:
            raise ConfigError(
                f"the leader names helper {name!r}, which is not in this config's [helpers]"
            ) from None
