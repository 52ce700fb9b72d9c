"""Identity and roles: who may call what, proven with real certificates."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from pets import seal
from pets.client.connect import Connector
from pets.identity import certificates as identity
from pets.identity.certificates import Role
from pets.query import Query
from pets.transport import wire
from pets.v1 import aggregation_pb2 as pb
from pets.v1 import aggregation_pb2_grpc as pb_grpc

from .conftest import analyst, announcement, contribute, holder_client, query_status, run

QUERY = Query.parse("count() from hospitals")


def _spec() -> pb.QuerySpec:
    return pb.QuerySpec(
        query_json=QUERY.to_json(), protocol=pb.PROTOCOL_ADDITIVE, deadline_seconds=60
    )


async def _code(coro) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    try:
        await coro
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def _submit(cluster) -> str:  # type: ignore[no-untyped-def]
    client = analyst(cluster)
    try:
        return (await client.submit(QUERY, deadline_seconds=60)).query_id
    finally:
        await client.close()


def _as(cluster, name: str, role: str) -> tuple[Connector, grpc.aio.Channel]:  # type: ignore[no-untyped-def]
    conn = Connector(cluster.endpoints(name), role)
    return conn, conn.leader_channel()


def test_holder_cannot_submit_or_read(shared_cluster) -> None:
    cluster = shared_cluster
    query_id = run(_submit(cluster))

    async def go() -> list[grpc.StatusCode]:
        conn, channel = _as(cluster, "org-1", "holder")
        stub = pb_grpc.LeaderStub(channel)
        ref = pb.QueryRef(query_id=query_id)
        codes = [
            await _code(stub.SubmitQuery(pb.SubmitQueryRequest(spec=_spec()))),
            await _code(stub.GetQueryStatus(ref)),
            await _code(stub.CloseQuery(ref)),
            await _code(stub.GetAggregate(ref).read()),
        ]
        helper = pb_grpc.HelperStub(conn.helper_channel("helper-1"))
        codes.append(await _code(helper.GetAggregate(ref).read()))
        finalize = pb.FinalizeMessage(header=pb.FinalizeHeader(query_id=query_id))
        codes.append(await _code(helper.Finalize(iter([finalize]))))
        await channel.close()
        return codes

    assert run(go()) == [grpc.StatusCode.PERMISSION_DENIED] * 6
    status = run(query_status(cluster, query_id))
    assert status.state == pb.QUERY_STATE_OPEN and status.contributors == 0


def test_analyst_cannot_contribute(shared_cluster) -> None:
    cluster = shared_cluster
    query_id = run(_submit(cluster))

    async def go() -> list[grpc.StatusCode]:
        conn, channel = _as(cluster, "analyst", "analyst")
        stub = pb_grpc.LeaderStub(channel)
        payload = bytes(8)
        header = pb.ContributionHeader(
            query_id=query_id, payload_bytes=8, contribution_digest=wire.digest(payload)
        )
        chunk = pb.ContributionChunk(header=header, data=payload)
        codes = [
            await _code(stub.Contribute(iter([chunk]))),
            await _code(stub.ContributeOne(chunk)),
            await _code(stub.WatchQueries(pb.WatchQueriesRequest()).read()),
        ]
        helper = pb_grpc.HelperStub(conn.helper_channel("helper-1"))
        finalize = pb.FinalizeMessage(header=pb.FinalizeHeader(query_id=query_id))
        codes.append(await _code(helper.Finalize(iter([finalize]))))
        codes.append(await _code(helper.GetInfo(pb.HelperInfoRequest())))
        await channel.close()
        return codes

    assert run(go()) == [grpc.StatusCode.PERMISSION_DENIED] * 5
    assert run(query_status(cluster, query_id)).contributors == 0


def test_other_analyst_cannot_see_a_query(shared_cluster) -> None:
    cluster = shared_cluster
    query_id = run(_submit(cluster))

    async def go() -> list[grpc.StatusCode]:
        _, channel = _as(cluster, "mallory", "analyst")
        stub = pb_grpc.LeaderStub(channel)
        ref = pb.QueryRef(query_id=query_id)
        codes = [
            await _code(stub.GetQueryStatus(ref)),
            await _code(stub.GetAggregate(ref).read()),
            await _code(stub.CloseQuery(ref)),
        ]
        await channel.close()
        return codes

    # NOT_FOUND, not PERMISSION_DENIED: another analyst's query ids are not confirmed.
    assert run(go()) == [grpc.StatusCode.NOT_FOUND] * 3
    assert run(query_status(cluster, query_id)).state == pb.QUERY_STATE_OPEN


def test_holder_contributes_only_as_itself(shared_cluster) -> None:
    """Sealed seeds are signed by the holder that made them; another cannot use them.

    Two attempts by org-2: replaying org-1's signed, sealed seed as is (the
    signature covers org-1's name, and the sealing binds it too), and a seed
    sealed for org-2 but signed with org-1's key (the helper checks the
    signature against the certificate org-2 connected with).
    """
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    cluster = shared_cluster
    query_id = run(_submit(cluster))

    async def go() -> list[str]:
        thief = holder_client(cluster, "org-2")
        victim = holder_client(cluster, "org-1")
        ann = await announcement(victim, query_id)
        seeds = [bytes(32)]
        replayed = victim.seal_seeds(ann, seeds)
        ctx = seal.SeedContext(query_id, bytes(ann.fingerprint), "org-2", "helper-1")
        sealed = seal.seal(seeds[0], seal.load_public_key(ann.helper_keys[0].seal_public_key), ctx)
        victim_key = load_pem_private_key(cluster.tls("org-1").key.read_bytes(), password=None)
        borrowed = [
            pb.SealedSeed(
                helper="helper-1",
                sealed=sealed,
                signature=seal.sign_sealed(ctx, sealed, victim_key),  # type: ignore[arg-type]
            )
        ]
        out = []
        for attempt in (replayed, borrowed):
            try:
                await thief.send_payload(
                    query_id,
                    bytes(8 * ann.vector_length),
                    seal.contribution_digest(query_id, seeds),
                    attempt,
                    deadline=ann.deadline_unix,
                )
                out.append("accepted")
            except Exception as exc:
                out.append(f"{type(exc).__name__}: {exc}")
        await thief.close()
        await victim.close()
        return out

    replay, borrow = run(go())
    assert replay.startswith("PermissionDeniedError") and "not signed by that holder" in replay
    assert borrow.startswith("PermissionDeniedError") and "not signed by that holder" in borrow
    assert run(query_status(cluster, query_id)).contributors == 0


def test_missing_or_foreign_certificate_is_refused(shared_cluster, tmp_path) -> None:
    cluster = shared_cluster
    ca_pem = (cluster.certs / "ca.pem").read_bytes()
    other = identity.create_ca("some other CA")
    foreign = identity.issue(other, Role.ANALYST, "analyst")

    async def go() -> list[grpc.StatusCode]:
        codes = []
        for creds in (
            grpc.ssl_channel_credentials(root_certificates=ca_pem),
            grpc.ssl_channel_credentials(ca_pem, foreign.key_pem, foreign.cert_pem),
        ):
            channel = grpc.aio.secure_channel(cluster.address("leader"), creds)
            stub = pb_grpc.LeaderStub(channel)
            codes.append(
                await _code(stub.SubmitQuery(pb.SubmitQueryRequest(spec=_spec()), timeout=10))
            )
            await channel.close()
        return codes

    # The TLS handshake fails before any handler runs; the client sees UNAVAILABLE.
    assert run(go()) == [grpc.StatusCode.UNAVAILABLE] * 2


def test_insecure_mode_requires_a_claimed_identity(make_cluster) -> None:
    cluster = make_cluster(insecure=True)
    assert "INSECURE MODE" in cluster.tail("leader", 50)

    async def go() -> list[grpc.StatusCode]:
        channel = grpc.aio.insecure_channel(cluster.address("leader"))
        stub = pb_grpc.LeaderStub(channel)
        req = pb.SubmitQueryRequest(spec=_spec())
        codes = [
            await _code(stub.SubmitQuery(req)),
            await _code(stub.SubmitQuery(req, metadata=(("x-pets-identity", "holder/x"),))),
        ]
        status = await stub.SubmitQuery(req, metadata=(("x-pets-identity", "analyst/a"),))
        codes.append(grpc.StatusCode.OK if status.query_id else grpc.StatusCode.UNKNOWN)
        await channel.close()
        return codes

    assert run(go()) == [
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.OK,
    ]


def test_insecure_mode_still_seals_seeds_end_to_end(make_cluster) -> None:
    """Without TLS nothing is signed, but the seeds still travel sealed and the sum is right."""
    from .conftest import expected

    cluster = make_cluster(insecure=True)
    text = "sum(cost) from hospitals group by sex"

    async def go():  # type: ignore[no-untyped-def]
        client = analyst(cluster)
        submitted = await client.submit(Query.parse(text), deadline_seconds=60)
        holder = holder_client(cluster, "org-1")
        ann = await announcement(holder, submitted.query_id)
        await holder.close()
        for h in ("org-1", "org-2"):
            await contribute(cluster, h, submitted.query_id)
        await client.close_query(submitted.query_id)
        status = await client.wait(submitted.query_id)
        result = await client.fetch(submitted, status)
        await client.close()
        return ann, status, result

    ann, status, result = run(go())
    assert [k.helper for k in ann.helper_keys] == ["helper-1"]
    assert not ann.helper_keys[0].signature  # nobody has a certificate to sign with
    assert status.state == pb.QUERY_STATE_READY
    assert result.close_to(expected(cluster, text, ["org-1", "org-2"]))


def test_health_and_reflection(shared_cluster) -> None:
    cluster = shared_cluster

    async def go() -> tuple[int, set[str]]:
        _, channel = _as(cluster, "analyst", "analyst")
        health = health_pb2_grpc.HealthStub(channel)
        resp = await health.Check(health_pb2.HealthCheckRequest(service="pets.v1.Leader"))
        refl = reflection_pb2_grpc.ServerReflectionStub(channel)
        names: set[str] = set()
        async for r in refl.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        ):
            names = {s.name for s in r.list_services_response.service}
        await channel.close()
        return resp.status, names

    status, names = run(go())
    assert status == health_pb2.HealthCheckResponse.SERVING
    assert {"pets.v1.Leader", "grpc.health.v1.Health"} <= names


def test_logs_never_contain_seeds_or_shares(shared_cluster) -> None:
    import numpy as np

    from pets import sharing

    cluster = shared_cluster
    seeds = {"org-1": b"\x11" * 32, "org-2": b"\x22" * 32}
    payloads: dict[str, bytes] = {}

    async def go() -> tuple[str, int]:
        client = analyst(cluster)
        query_id = (await client.submit(QUERY, deadline_seconds=60)).query_id
        for name, seed in seeds.items():
            holder = holder_client(cluster, name)
            ann = await announcement(holder, query_id)
            x = np.ones(ann.vector_length, dtype=np.uint64)
            payloads[name] = wire.vector_to_bytes(sharing.shard(x, 2, seeds=[seed]).leader)
            await holder.send_payload(
                query_id,
                payloads[name],
                seal.contribution_digest(query_id, [seed]),
                holder.seal_seeds(ann, [seed]),
                deadline=ann.deadline_unix,
            )
            await holder.close()
        await client.close_query(query_id)
        status = await client.wait(query_id)
        await client.close()
        return query_id, status.state

    query_id, state = run(go())
    assert state == pb.QUERY_STATE_READY  # the helper opened both seeds
    logs = cluster.log_text()
    assert query_id in logs  # the logs do talk about the query
    for secret in [*seeds.values(), *payloads.values()]:
        assert secret.hex()[:16] not in logs


def test_clients_pin_the_server_they_meant(shared_cluster) -> None:
    """A channel to helper-2 that reaches helper-1 (or the leader) fails the handshake."""
    cluster = shared_cluster
    conn = Connector(cluster.endpoints("org-1"), "holder")

    async def go() -> list[grpc.StatusCode]:
        codes = []
        for address, role, name in (
            (cluster.address("helper-1"), "helper", "helper-2"),
            (cluster.address("leader"), "helper", "helper-1"),
            (cluster.address("helper-1"), "helper", "helper-1"),
        ):
            channel = conn.channel(address, role, name)
            stub = pb_grpc.HelperStub(channel)
            codes.append(
                await _code(stub.GetAggregate(pb.QueryRef(query_id="q-none"), timeout=10).read())
            )
            await channel.close()
        return codes

    assert run(go()) == [
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.PERMISSION_DENIED,  # reached helper-1, which refuses a holder
    ]


def test_node_refuses_announcements_that_weaken_sharing(shared_cluster) -> None:
    from pets.client.config import load_node_config
    from pets.client.node import Node

    cluster = shared_cluster
    query_id = run(_submit(cluster))

    async def go() -> list[str]:
        client = holder_client(cluster, "org-1")
        ann = await announcement(client, query_id)
        await client.close()
        node = Node(load_node_config(cluster.node_config("org-1")))
        reasons = [node.decide(ann).reason]
        for helpers in (["helper-1", "helper-1"], [], ["helper-9"]):
            bad = pb.QueryAnnouncement()
            bad.CopyFrom(ann)
            del bad.helpers[:]
            bad.helpers.extend(helpers)
            reasons.append(node.decide(bad).reason)
        await node.client.close()
        return reasons

    ok, *refused = run(go())
    assert ok == ""
    assert all("differ from the configured set" in r for r in refused), refused
