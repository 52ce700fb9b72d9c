"""The Paillier path over gRPC with TLS: phe-compatible aggregates, max_holders."""

from __future__ import annotations

import asyncio

import grpc

from pets.paillier import ciphertexts_from_bytes, pack
from pets.protocols.paillier import layout_for
from pets.query import Query, evaluate
from pets.v1 import aggregation_pb2 as pb

from .conftest import analyst, contribute, expected, run, tables_for

TEXT = "variance(length_of_stay) from hospitals group by prefecture"


def test_server_aggregate_decrypts_with_plain_phe(shared_cluster) -> None:
    cluster = shared_cluster
    holders = ["org-1", "org-2", "org-3"]

    async def go():  # type: ignore[no-untyped-def]
        client = analyst(cluster)
        submitted = await client.submit(
            Query.parse(TEXT), protocol="paillier", deadline_seconds=60, max_holders=10
        )
        for h in holders:
            await contribute(cluster, h, submitted.query_id)
        await client.close_query(submitted.query_id)
        status = await asyncio.wait_for(client.wait(submitted.query_id), 30)
        agg = await client._fetch_one("leader", submitted.query_id)
        result = await client.fetch(submitted, status)
        await client.close()
        return submitted, status, agg, result

    submitted, status, agg, result = run(go())
    assert status.state == pb.QUERY_STATE_READY and agg.header.contributors == 3
    private_key = submitted.private_key
    public_key = private_key.public_key
    # The only key material that travelled is n.
    assert int.from_bytes(status.spec.paillier_public_key, "big") == public_key.n
    layout = layout_for(public_key, submitted.plan, 10)
    ciphertexts = ciphertexts_from_bytes(public_key, agg.data)
    packed_sum = [0] * layout.num_plaintexts
    for table in tables_for(cluster, "hospitals", holders):
        for i, m in enumerate(pack(layout, evaluate(submitted.plan, table))):
            packed_sum[i] += m
    # phe alone (its own raw_decrypt) turns the server's aggregate into the packed sum.
    assert [private_key.raw_decrypt(c) for c in ciphertexts] == packed_sum
    assert result.close_to(expected(cluster, TEXT, holders))


def test_paillier_refuses_more_than_max_holders(shared_cluster) -> None:
    cluster = shared_cluster

    async def go() -> list[str]:
        client = analyst(cluster)
        submitted = await client.submit(
            Query.parse("count() from hospitals"),
            protocol="paillier",
            deadline_seconds=60,
            max_holders=2,
        )
        out = []
        for h in ("org-1", "org-2", "org-3"):
            try:
                ack = await contribute(cluster, h, submitted.query_id)
                out.append(f"ok {ack.contributors}")
            except Exception as exc:
                out.append(type(exc).__name__)
        await client.close()
        return out

    assert run(go()) == ["ok 1", "ok 2", "InvalidInputError"]


def test_max_holders_below_min_holders_is_refused(shared_cluster) -> None:
    cluster = shared_cluster

    async def go() -> grpc.StatusCode:
        client = analyst(cluster)
        try:
            await client.submit(
                Query.parse("count() from hospitals"), protocol="paillier", max_holders=1
            )
        except Exception as exc:
            return type(exc).__name__  # type: ignore[return-value]
        finally:
            await client.close()
        return "accepted"  # type: ignore[return-value]

    assert run(go()) == "InvalidInputError"


def test_paillier_queries_must_be_signed_by_their_analyst(shared_cluster) -> None:
    from pets.identity import files as identity_files
    from pets.identity.signing import sign_spec

    cluster = shared_cluster

    async def go() -> list[str]:
        client = analyst(cluster)
        good = await client.submit(
            Query.parse("count() from hospitals"),
            protocol="paillier",
            deadline_seconds=60,
            max_holders=10,
        )
        spec = pb.QuerySpec()
        spec.CopyFrom(good.status.spec)
        out = []
        unsigned = pb.QuerySpec()
        unsigned.CopyFrom(spec)
        unsigned.ClearField("analyst_signature")
        mallorys = pb.QuerySpec()
        mallorys.CopyFrom(spec)
        certs = cluster.certs
        sign_spec(
            mallorys,
            identity_files.cert_path(certs, "mallory").read_bytes(),
            identity_files.key_path(certs, "mallory").read_bytes(),
        )
        for s in (unsigned, mallorys):
            try:
                await client.leader.SubmitQuery(
                    pb.SubmitQueryRequest(spec=s), metadata=client.connector.metadata
                )
                out.append("accepted")
            except grpc.aio.AioRpcError as exc:
                out.append(exc.code().name)
        await client.close()
        return out

    assert run(go()) == ["PERMISSION_DENIED", "INVALID_ARGUMENT"]


def test_node_refuses_a_key_the_leader_swapped(shared_cluster) -> None:
    from pets.client.config import load_node_config
    from pets.client.node import Node
    from pets.paillier import generate_keypair, public_key_to_bytes

    from .conftest import announcement, holder_client

    cluster = shared_cluster

    async def go() -> tuple[str, str]:
        client = analyst(cluster)
        submitted = await client.submit(
            Query.parse("count() from hospitals"),
            protocol="paillier",
            deadline_seconds=60,
            max_holders=10,
        )
        await client.close()
        holder = holder_client(cluster, "org-1")
        ann = await announcement(holder, submitted.query_id)
        await holder.close()
        node = Node(load_node_config(cluster.node_config("org-1")))
        honest = node.decide(ann).reason
        swapped = pb.QueryAnnouncement()
        swapped.CopyFrom(ann)
        leaders_key, _ = generate_keypair(2048)
        swapped.spec.paillier_public_key = public_key_to_bytes(leaders_key)
        reason = node.decide(swapped).reason
        await node.client.close()
        return honest, reason

    honest, swapped = run(go())
    assert honest == ""
    assert "not vouched for" in swapped


def test_paillier_payload_must_match_its_digest(shared_cluster) -> None:
    """Paillier contributions are identified by the payload's SHA-256, which the leader checks."""
    from pets.protocols.paillier import encrypt_contribution
    from pets.query import compile as compile_query
    from pets.transport import wire

    from .conftest import announcement, holder_client

    cluster = shared_cluster

    async def go() -> list[str]:
        client = analyst(cluster)
        submitted = await client.submit(
            Query.parse("count() from hospitals"), protocol="paillier", deadline_seconds=60
        )
        holder = holder_client(cluster, "org-1")
        ann = await announcement(holder, submitted.query_id)
        plan = compile_query(Query.from_json(ann.spec.query_json), cluster.schema)
        table = tables_for(cluster, "hospitals", ["org-1"])[0]
        payload = await asyncio.to_thread(encrypt_contribution, ann, plan, evaluate(plan, table))
        header = pb.ContributionHeader(
            query_id=ann.query_id, payload_bytes=len(payload), contribution_digest=bytes(32)
        )
        message = pb.ContributionChunk(header=header, data=payload)
        md = holder.connector.metadata
        out = []
        for call in (  # one after the other: a call starts when it is made
            lambda: holder.leader.ContributeOne(message, metadata=md),
            lambda: holder.leader.Contribute(iter([message]), metadata=md),
        ):
            try:
                await call()
                out.append("accepted")
            except grpc.aio.AioRpcError as exc:
                out.append(f"{exc.code().name}: {exc.details()}")
        # With the right digest the same payload is accepted.
        ack = await holder.send_payload(
            ann.query_id, payload, wire.digest(payload), deadline=ann.deadline_unix
        )
        out.append(f"ok {ack.contributors}")
        await holder.close()
        await client.close()
        return out

    results = run(go())
    assert (
        results[:2] == ["INVALID_ARGUMENT: payload does not match its announced SHA-256 digest"] * 2
    )
    assert results[2] == "ok 1"


def test_a_replayed_signed_spec_gets_no_second_answer(shared_cluster, tmp_path) -> None:
    """Issue 15, item 15: the same signed spec, submitted again under a new query id
    (what a leader replaying it would do), is answered for the first query only, also
    after the node restarts; a deadline past the signed not_after is refused."""
    import dataclasses

    from pets.client.config import load_node_config
    from pets.client.node import Node

    from .conftest import announcement, holder_client

    cluster = shared_cluster

    async def go() -> tuple[str, str, str, str, str]:
        client = analyst(cluster)
        first = await client.submit(
            Query.parse("count() from hospitals"),
            protocol="paillier",
            deadline_seconds=60,
            max_holders=10,
        )
        replay = await client.leader.SubmitQuery(
            pb.SubmitQueryRequest(spec=first.status.spec), metadata=client.connector.metadata
        )
        await client.close()
        assert replay.query_id != first.query_id
        holder = holder_client(cluster, "org-1")
        ann1 = await announcement(holder, first.query_id)
        ann2 = await announcement(holder, replay.query_id)
        await holder.close()
        assert ann1.spec.spec_id == ann2.spec.spec_id and len(ann1.spec.spec_id) == 16
        # A node of its own (a fresh state_dir), so the cluster's org-1 is not disturbed.
        config = dataclasses.replace(
            load_node_config(cluster.node_config("org-1")), state_dir=tmp_path
        )
        node = Node(config)
        decision = node.decide(ann1)
        assert decision.accept and decision.plan is not None
        answered = node.reserve_answer(ann1, decision.plan) or ""
        replayed = node.reserve_answer(ann2, decision.plan) or ""
        node.journal.close()
        await node.client.close()
        restarted = Node(config)
        after_restart = restarted.reserve_answer(ann2, decision.plan) or ""
        stretched = pb.QueryAnnouncement()
        stretched.CopyFrom(ann1)
        stretched.deadline_unix = ann1.spec.not_after_unix + 3600
        late = restarted.decide(stretched).reason
        restarted.journal.close()
        await restarted.client.close()
        return answered, replayed, after_restart, late, first.query_id

    answered, replayed, after_restart, late, first_id = run(go())
    assert answered == ""
    assert "replayed spec" in replayed and first_id in replayed
    assert "replayed spec" in after_restart
    assert "not_after" in late
