"""The ``Server`` object: start-up, health, reflection, signals, graceful shutdown.

Like uvicorn's ``Server``, it owns the process-level concerns so the CLI
only parses arguments: it opens the store (:func:`pets.server.store.connect_store`),
builds the leader or helper servicer, binds the port with mutual TLS (or,
with ``--insecure``, without) *before* the service starts (so a port in use
is one clear error, and "leader started" is never logged by a server that
could not listen), registers the standard gRPC health-checking and reflection
services, writes the bound port to ``port_file`` if asked, and on SIGTERM or
SIGINT stops accepting calls, lets running ones finish within a grace
period, and closes the store.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from pets.errors import ConfigError
from pets.identity.files import load_own_identity
from pets.query import Schema
from pets.server.config import ServerConfig
from pets.server.helper import Helper
from pets.server.leader import Leader
from pets.server.leader.stream import decode_request as decode_stream_request
from pets.server.metrics import RpcMetricsInterceptor, ServerMetrics, timed_store
from pets.server.peers import HelperLink
from pets.server.rpc import add_service
from pets.server.store import Store, connect_store
from pets.transport import wire
from pets.transport.flowcontrol import FLOW_CONTROL_OPTIONS
from pets.v1 import aggregation_pb2 as pb

log = logging.getLogger("pets.server")

SERVER_OPTIONS = [
    # Without this, grpc sets SO_REUSEPORT and a second server on the same port
    # would silently share (and split) the traffic instead of failing to start.
    ("grpc.so_reuseport", 0),
    ("grpc.max_send_message_length", wire.MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", wire.MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    *FLOW_CONTROL_OPTIONS,  # no BDP pings, a fixed window (pets.transport.flowcontrol)
]
GRACE_SECONDS = 5.0


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{what} file {path} does not exist (create it with `pets certs init` / "
            "`pets certs issue`)"
        ) from None


class Server:
    """One leader or helper process."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.port: int | None = None
        self._server: grpc.aio.Server | None = None
        self._store: Store | None = None
        self._service: Leader | Helper | None = None
        self._health: health.aio.HealthServicer | None = None
        self.metrics = ServerMetrics()
        self.metrics_port: int | None = None

    def _credentials(self) -> tuple[grpc.ServerCredentials | None, grpc.ChannelCredentials | None]:
        tls = self.config.tls
        if tls is None:
            return None, None
        # Its own certificate (role and name as configured), the key its certificate's.
        ca, cert, key = load_own_identity(
            tls.ca, tls.cert, tls.key, role=self.config.role, name=self.config.name
        )
        server = grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=ca, require_client_auth=True
        )
        client = grpc.ssl_channel_credentials(
            root_certificates=ca, private_key=key, certificate_chain=cert
        )
        return server, client

    async def start(self) -> int:
        cfg = self.config
        server_creds, client_creds = self._credentials()
        try:
            self._store = timed_store(
                await connect_store(
                    cfg.state_url or cfg.database, f"{cfg.role}/{cfg.name}", cfg.replica or None
                ),
                self.metrics,
            )
        except (OSError, sqlite3.Error) as exc:  # read-only, missing or not a directory
            raise ConfigError(
                f"state_dir {cfg.state_dir} cannot hold the server's database: "
                f"{getattr(exc, 'strerror', None) or exc}"
            ) from None
        if cfg.role == "leader":
            assert cfg.schema is not None
            try:
                schema = Schema.from_toml(cfg.schema.read_text())
            except FileNotFoundError:
                raise ConfigError(f"schema file {cfg.schema} does not exist") from None
            links = [HelperLink(h, cfg, client_creds) for h in cfg.helpers]
            checker = None
            if cfg.policy is not None:
                from pets.server.credentials import PresentationChecker

                checker = PresentationChecker(cfg.policy)
            ca_pem = _read(cfg.tls.ca, "CA") if cfg.tls is not None else None
            self._service = Leader(
                cfg,
                self._store,
                schema,
                links,
                presentation_checker=checker,
                ca_pem=ca_pem,
                metrics=self.metrics,
            )
        else:
            self._service = Helper(cfg, self._store, metrics=self.metrics)

        # Every call is counted by its final status, aborted ones included.
        self._server = grpc.aio.server(
            options=SERVER_OPTIONS, interceptors=[RpcMetricsInterceptor(self.metrics)]
        )
        service_name = pb.DESCRIPTOR.services_by_name[
            "Leader" if cfg.role == "leader" else "Helper"
        ].full_name
        if cfg.role == "leader":
            # Contribution chunks are read without copying their data (pets.transport.wire).
            decode = wire.decode_contribution_chunk
            add_service(
                self._server,
                self._service,
                "Leader",
                request_decoders={
                    "Contribute": decode,
                    "ContributeOne": decode,
                    "ContributeStream": decode_stream_request,  # one bad message, one answer
                },
                encoded_responses=["GetAggregate"],
            )
        else:
            add_service(self._server, self._service, "Helper", encoded_responses=["GetAggregate"])
        extra_services: list[str] = []
        if cfg.policy is not None:
            extra_services.append(self._add_verifier())
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, self._server)
        names = [service_name, *extra_services, health.SERVICE_NAME, reflection.SERVICE_NAME]
        reflection.enable_server_reflection(names, self._server)
        try:
            if server_creds is None:
                log.warning(
                    "INSECURE MODE: no TLS, callers are not authenticated; local experiments only"
                )
                self.port = self._server.add_insecure_port(cfg.listen)
            else:
                self.port = self._server.add_secure_port(cfg.listen, server_creds)
        except RuntimeError as exc:  # grpc raises this when the address cannot be bound
            await self._abandon()
            raise ConfigError(f"could not listen on {cfg.listen}: {exc}") from None
        # Bound: only now does the service start (and say so), then take calls.
        try:
            if cfg.metrics_listen is not None:
                self.metrics_port = self.metrics.serve(cfg.metrics_listen)
            await self._service.start()
            await self._server.start()
        except BaseException:
            await self._abandon()
            raise
        for name in ("", service_name, *extra_services):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._health = health_servicer
        if cfg.port_file is not None:
            tmp = cfg.port_file.with_suffix(".tmp")
            tmp.write_text(f"{self.port}\n")
            os.replace(tmp, cfg.port_file)  # atomic: readers never see half a number
        log.info(
            "server listening",
            extra={
                "role": cfg.role,
                "server": cfg.name,
                "port": self.port,
                "tls": server_creds is not None,
            },
        )
        return self.port

    async def _abandon(self) -> None:
        """Undo a start-up that failed: stop the service (quietly) and close the store."""
        self.metrics.close()
        if self._service is not None:
            await self._service.stop()
        if self._store is not None:
            await self._store.close()

    def _add_verifier(self) -> str:
        from pets.server.credentials import add_verifier

        assert isinstance(self._service, Leader) and self._server is not None
        return add_verifier(
            self._server,
            self._service.presentation_checker,
            insecure=self.config.tls is None,
        )

    async def stop(self, grace: float = GRACE_SECONDS) -> None:
        if self._health is not None:
            await self._health.enter_graceful_shutdown()
        if isinstance(self._service, Leader):
            self._service.begin_shutdown()  # end watch streams so in-flight calls can finish
        if self._server is not None:
            await self._server.stop(grace)
        if self._service is not None:
            await self._service.stop()
        if self._store is not None:
            await self._store.close()
        self.metrics.close()
        log.info("server stopped", extra={"server": self.config.name})

    async def serve(self) -> None:
        """Start, run until SIGTERM/SIGINT, then shut down gracefully."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):  # before start-up, so no signal is lost
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        await stop.wait()
        log.info("shutdown requested", extra={"server": self.config.name})
        await self.stop()
