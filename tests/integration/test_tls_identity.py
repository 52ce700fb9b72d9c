"""The whole identity chain over a real socket: CA -> issue -> mutual TLS -> Peer.

A grpc.aio server on 127.0.0.1 port 0 with a generic (proto-less) unary
method that answers with the caller's ``pets://role/name``, as read by
:func:`pets.transport.peer.peer_from_auth_context`. Failures must happen in the
TLS handshake (UNAVAILABLE on the client) or as UNAUTHENTICATED from the
handler, never as a successful call. When the *server* refuses the client's
certificate, the client only sees "Socket closed" (the reason is in grpc's
server-side log), so those tests pair the failing call with a succeeding one;
when the client refuses the server, the reason is asserted.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path

import grpc
import pytest

from pets.errors import AuthenticationError
from pets.identity.certificates import CA, Identity, Role, create_ca, issue
from pets.identity.files import init_ca, issue_to_dir, load_tls_material
from pets.transport.peer import peer_from_auth_context

METHOD = "/pets.test.Whoami/Whoami"
TIMEOUT = 10.0


@pytest.fixture(scope="module")
def ca() -> CA:
    return create_ca()


@pytest.fixture(scope="module")
def leader(ca: CA) -> Identity:
    return issue(ca, Role.LEADER, "leader-1")


def _handler(seen: list[Mapping[str, Sequence[bytes]]]) -> grpc.GenericRpcHandler:
    async def whoami(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        auth = context.auth_context()
        seen.append(auth)
        try:
            peer = peer_from_auth_context(auth)
        except AuthenticationError as exc:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
        return peer.uri.encode()

    return grpc.method_handlers_generic_handler(
        "pets.test.Whoami", {"Whoami": grpc.unary_unary_rpc_method_handler(whoami)}
    )


async def _call(
    server_ident: Identity,
    server_root: bytes,
    client_root: bytes,
    client: Identity | None,
    *,
    require_client_auth: bool = True,
    target_host: str = "localhost",
    seen: list[Mapping[str, Sequence[bytes]]] | None = None,
) -> bytes:
    """Start a TLS server, make one call as ``client``, and return the reply."""
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((_handler(seen if seen is not None else []),))
    creds = grpc.ssl_server_credentials(
        [(server_ident.key_pem, server_ident.cert_pem)],
        root_certificates=server_root,
        require_client_auth=require_client_auth,
    )
    port = server.add_secure_port("127.0.0.1:0", creds)
    assert port > 0
    await server.start()
    try:
        if client is None:
            ch_creds = grpc.ssl_channel_credentials(client_root)
        else:
            ch_creds = grpc.ssl_channel_credentials(client_root, client.key_pem, client.cert_pem)
        async with grpc.aio.secure_channel(f"{target_host}:{port}", ch_creds) as channel:
            return await channel.unary_unary(METHOD)(b"", timeout=TIMEOUT)
    finally:
        await server.stop(None)


def call(*args: object, **kwargs: object) -> bytes:
    return asyncio.run(_call(*args, **kwargs))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("role", "name"),
    [(Role.HOLDER, "hospital-a"), (Role.ANALYST, "alice"), (Role.LEADER, "leader-2")],
)
def test_mutual_tls_yields_peer(ca: CA, leader: Identity, role: Role, name: str) -> None:
    client = issue(ca, role, name)
    seen: list[Mapping[str, Sequence[bytes]]] = []
    assert (
        call(leader, ca.cert_pem, ca.cert_pem, client, seen=seen)
        == f"pets://{role}/{name}".encode()
    )
    auth = seen[0]
    # What grpcio really exposes (documented in peer_from_auth_context).
    assert auth["transport_security_type"] == [b"ssl"]
    assert auth["x509_pem_cert"] == [client.cert_pem]
    assert auth["x509_common_name"] == [name.encode()]
    assert auth["peer_uri"] == [f"pets://{role}/{name}".encode()]
    assert auth["security_level"] == [b"TSI_PRIVACY_AND_INTEGRITY"]


def test_dialling_by_ip_matches_ip_san(ca: CA, leader: Identity) -> None:
    client = issue(ca, Role.HOLDER, "h")
    reply = call(leader, ca.cert_pem, ca.cert_pem, client, target_host="127.0.0.1")
    assert reply == b"pets://holder/h"


def test_client_without_certificate_is_rejected_at_handshake(ca: CA, leader: Identity) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        call(leader, ca.cert_pem, ca.cert_pem, None)
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE


def test_no_client_certificate_when_not_required_is_unauthenticated(
    ca: CA, leader: Identity
) -> None:
    """If a server forgets require_client_auth, the helper still refuses the call."""
    client = issue(ca, Role.HOLDER, "h")
    seen: list[Mapping[str, Sequence[bytes]]] = []
    for who in (None, client):  # grpc does not even request a certificate then
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            call(leader, ca.cert_pem, ca.cert_pem, who, require_client_auth=False, seen=seen)
        assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "x509_pem_cert" not in seen[0]
    assert seen[0]["transport_security_type"] == [b"ssl"]


def test_client_from_another_ca_is_rejected(ca: CA, leader: Identity) -> None:
    rogue_ca = create_ca("rogue CA")
    client = issue(rogue_ca, Role.LEADER, "leader-1")  # even claiming a trusted name
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        # The client trusts the real CA, so it is the server that refuses.
        call(leader, ca.cert_pem, ca.cert_pem, client)
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE


def test_server_from_another_ca_is_rejected(ca: CA) -> None:
    rogue_ca = create_ca("rogue CA")
    rogue_server = issue(rogue_ca, Role.LEADER, "leader-1")
    client = issue(ca, Role.HOLDER, "h")
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        call(rogue_server, ca.cert_pem, ca.cert_pem, client)
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "unable to get local issuer certificate" in exc.value.details()


def test_client_role_certificate_cannot_serve(ca: CA) -> None:
    """A holder certificate has no serverAuth usage (and no host SANs)."""
    holder_as_server = issue(ca, Role.HOLDER, "h-srv")
    client = issue(ca, Role.HOLDER, "h")
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        call(holder_as_server, ca.cert_pem, ca.cert_pem, client)
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "unsupported certificate purpose" in exc.value.details()


def test_server_name_must_match_hosts(ca: CA) -> None:
    server = issue(ca, Role.HELPER, "helper-1", hosts=["agg.example.org"])
    client = issue(ca, Role.LEADER, "leader-1")
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        call(server, ca.cert_pem, ca.cert_pem, client)  # dialled as "localhost"
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "Hostname Verification" in exc.value.details()


def test_expired_client_certificate_fails_handshake() -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    old_ca = create_ca(now=past)
    expired = issue(old_ca, Role.HOLDER, "h", valid_days=1, now=past)
    server = issue(old_ca, Role.LEADER, "leader-1")
    assert call(server, old_ca.cert_pem, old_ca.cert_pem, issue(old_ca, Role.HOLDER, "ok"))
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        call(server, old_ca.cert_pem, old_ca.cert_pem, expired)
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE


def test_expired_server_certificate_fails_handshake() -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    old_ca = create_ca(now=past)
    expired_server = issue(old_ca, Role.LEADER, "leader-1", valid_days=1, now=past)
    client = issue(old_ca, Role.HOLDER, "h")
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        call(expired_server, old_ca.cert_pem, old_ca.cert_pem, client)
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "certificate has expired" in exc.value.details()


def test_certificate_directory_end_to_end(tmp_path: Path) -> None:
    """pets certs init / issue / load_tls_material feed grpc credentials directly."""
    init_ca(tmp_path)
    issue_to_dir(tmp_path, "leader", "leader-1")
    issue_to_dir(tmp_path, "holder", "hospital-b")
    ca_pem, s_cert, s_key = load_tls_material(tmp_path, "leader-1")
    _, c_cert, c_key = load_tls_material(tmp_path, "hospital-b")
    server = Identity(s_cert, s_key, (ca_pem,))
    client = Identity(c_cert, c_key, (ca_pem,))
    assert call(server, ca_pem, ca_pem, client) == b"pets://holder/hospital-b"


def test_insecure_port_is_unauthenticated() -> None:
    """Plaintext: grpc reports an insecure transport and the helper refuses the call."""

    async def run() -> tuple[grpc.StatusCode, list[Mapping[str, Sequence[bytes]]]]:
        seen: list[Mapping[str, Sequence[bytes]]] = []
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((_handler(seen),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                try:
                    await channel.unary_unary(METHOD)(b"", timeout=TIMEOUT)
                except grpc.aio.AioRpcError as exc:
                    return exc.code(), seen
        finally:
            await server.stop(None)
        raise AssertionError("the call succeeded")

    code, seen = asyncio.run(run())
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert dict(seen[0]) == {
        "transport_security_type": [b"insecure"],
        "security_level": [b"TSI_SECURITY_NONE"],
    }
