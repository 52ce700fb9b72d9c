"""A leader that admits only analysts proving attributes in zero knowledge."""

from __future__ import annotations

import time

import grpc
import pytest

from pets.errors import InvalidInputError, PermissionDeniedError
from pets.query import Query
from pets.v1 import credential_pb2 as cpb
from pets.v1 import credential_pb2_grpc as cpb_grpc
from pets.zk import serialization as ser
from pets.zk.contexts import submit_query_context, verify_context
from pets.zk.credential import IssuerKey, create_presentation, holder_keygen, issue_to_holder
from pets.zk.proto import presentation_to_proto

from .conftest import analyst, run

POLICY = "accreditation >= 2 and purpose in {public-health, research}"
PROVE = ["accreditation >= 2", "purpose in {research}"]
QUERY = Query.parse("count() from hospitals")


@pytest.fixture
def policy_cluster(make_cluster, tmp_path):  # type: ignore[no-untyped-def]
    issuer = IssuerKey.generate()
    pub = tmp_path / "issuer.pub"
    pub.write_text(ser.dumps(ser.issuer_public_to_dict(issuer.public_key)))
    extra = (
        f'[policy]\nrequire = "{POLICY}"\nissuer_public_key = "{pub}"\n'
        'schema_id = "pets/analyst/v1"\n'
    )
    cluster = make_cluster(leader_extra_toml=extra)
    return cluster, issuer


def _wallet(
    issuer: IssuerKey, accreditation: int, *, expires_in: float = 3600, subject: str = "analyst"
):  # type: ignore[no-untyped-def]
    secret, _ = holder_keygen()
    return issue_to_holder(
        issuer,
        "pets/analyst/v1",
        secret,
        {"accreditation": accreditation, "purpose": "research", "subject": subject},
        int(time.time() + expires_in),
        max_values={"accreditation": 10},
    )


async def _submit(cluster, name: str = "analyst", **options):  # type: ignore[no-untyped-def]
    client = analyst(cluster, name)
    try:
        return await client.submit(QUERY, deadline_seconds=30, **options)
    finally:
        await client.close()


def test_admission_needs_a_valid_presentation(policy_cluster) -> None:
    cluster, issuer = policy_cluster
    with pytest.raises(PermissionDeniedError, match="presentation proving"):
        run(_submit(cluster))
    submitted = run(_submit(cluster, credential=_wallet(issuer, 3), predicates=PROVE))
    # The record keeps the policy's predicates, never the attribute values.
    assert list(submitted.status.proven_predicates) == [
        "accreditation >= 2",
        "purpose in {public-health, research}",
    ]
    with pytest.raises(InvalidInputError, match="does not satisfy"):
        run(_submit(cluster, credential=_wallet(issuer, 1), predicates=PROVE))
    with pytest.raises(PermissionDeniedError, match="does not prove"):
        run(_submit(cluster, credential=_wallet(issuer, 3), predicates=["accreditation >= 1"]))
    with pytest.raises(PermissionDeniedError, match="expired"):
        run(_submit(cluster, credential=_wallet(issuer, 3, expires_in=-10), predicates=PROVE))
    stranger = IssuerKey.generate()
    with pytest.raises(PermissionDeniedError, match="not trusted"):
        run(_submit(cluster, credential=_wallet(stranger, 3), predicates=PROVE))


def test_presentation_cannot_be_replayed_or_lent(policy_cluster) -> None:
    cluster, issuer = policy_cluster
    wallet = _wallet(issuer, 5)

    async def go() -> list[str]:
        from pets.v1 import aggregation_pb2 as pb

        client = analyst(cluster, "analyst")
        nonce, presentation = await client._present(wallet, PROVE)
        request = pb.SubmitQueryRequest(
            spec=pb.QuerySpec(
                query_json=QUERY.to_json(), protocol=pb.PROTOCOL_ADDITIVE, deadline_seconds=30
            ),
            presentation=presentation,
            presentation_nonce=nonce,
        )
        out = []
        for who in ("analyst", "analyst", "mallory"):
            c = analyst(cluster, who)
            try:
                await c.leader.SubmitQuery(request, metadata=c.connector.metadata)
                out.append("accepted")
            except grpc.aio.AioRpcError as exc:
                out.append(exc.details() or "")
            await c.close()
        # A fresh nonce, but a presentation bound to another analyst's name:
        nonce2, lent = await client._present(wallet, PROVE)
        m = analyst(cluster, "mallory")
        request.presentation, request.presentation_nonce = lent, nonce2
        try:
            await m.leader.SubmitQuery(request, metadata=m.connector.metadata)
            out.append("accepted")
        except grpc.aio.AioRpcError as exc:
            out.append(exc.details() or "")
        await m.close()
        await client.close()
        return out

    first, replay, replay_other, lent = run(go())
    assert first == "accepted"
    assert "nonce" in replay
    assert "nonce" in replay_other or "context" in replay_other
    assert "context" in lent


def test_verifier_service(policy_cluster) -> None:
    cluster, issuer = policy_cluster
    wallet = _wallet(issuer, 4)

    async def go() -> tuple[cpb.VerifyResponse, cpb.VerifyResponse]:
        client = analyst(cluster, "mallory")
        stub = cpb_grpc.VerifierStub(client._channel("leader"))
        md = client.connector.metadata
        nonce = (await stub.GetNonce(cpb.NonceRequest(), metadata=md)).nonce
        presentation = create_presentation(
            wallet, ["accreditation >= 3"], nonce=nonce, context=verify_context("mallory")
        )
        request = cpb.VerifyRequest(
            presentation=presentation_to_proto(presentation), policy="accreditation >= 2"
        )
        ok = await stub.Verify(request, metadata=md)
        again = await stub.Verify(request, metadata=md)
        await client.close()
        return ok, again

    ok, again = run(go())
    assert ok.accepted and list(ok.proven_predicates) == ["accreditation >= 2"]
    assert not again.accepted and "nonce" in again.reason
    assert "4" not in " ".join(ok.proven_predicates)


def test_contexts_differ_per_purpose_and_caller() -> None:
    assert submit_query_context("a") != verify_context("a") != verify_context("b")


def test_credential_cannot_be_lent_to_another_analyst(policy_cluster) -> None:
    """Mallory holds Alice's whole wallet (secret key included) and still is refused."""
    cluster, issuer = policy_cluster
    alices = _wallet(issuer, 5, subject="analyst")
    with pytest.raises(PermissionDeniedError, match="not issued to this analyst"):
        run(_submit(cluster, "mallory", credential=alices, predicates=PROVE))
    # Without the subject attribute at all, the presentation cannot satisfy the leader.
    secret, _ = holder_keygen()
    anonymous = issue_to_holder(
        issuer,
        "pets/analyst/v1",
        secret,
        {"accreditation": 5, "purpose": "research"},
        int(time.time() + 3600),
        max_values={"accreditation": 10},
    )
    with pytest.raises(PermissionDeniedError, match="subject"):
        run(_submit(cluster, credential=anonymous, predicates=PROVE))


def test_nonce_quota_per_caller(policy_cluster) -> None:
    cluster, _ = policy_cluster

    async def go() -> list[str]:
        client = analyst(cluster, "mallory")
        stub = cpb_grpc.VerifierStub(client._channel("leader"))
        md = client.connector.metadata
        out = []
        for _ in range(20):
            try:
                await stub.GetNonce(cpb.NonceRequest(), metadata=md)
                out.append("ok")
            except grpc.aio.AioRpcError as exc:
                out.append(exc.code().name)
        # Another caller is unaffected.
        other = analyst(cluster, "analyst")
        other_stub = cpb_grpc.VerifierStub(other._channel("leader"))
        await other_stub.GetNonce(cpb.NonceRequest(), metadata=other.connector.metadata)
        await client.close()
        await other.close()
        return out

    out = run(go())
    assert out[:16] == ["ok"] * 16 and set(out[16:]) == {"FAILED_PRECONDITION"}


def test_malformed_presentation_is_an_invalid_proof(policy_cluster) -> None:
    cluster, issuer = policy_cluster

    async def go() -> list[str]:
        from pets.v1 import aggregation_pb2 as pb

        client = analyst(cluster)
        nonce, good = await client._present(_wallet(issuer, 5), PROVE)
        msg = cpb.Presentation.FromString(good)
        for attr in msg.credential.attributes:
            attr.max_value = str(1 << 300)  # a number no credential can hold
        bad_inputs = [b"\x00garbage", msg.SerializeToString()]
        out = []
        for data in bad_inputs:
            request = pb.SubmitQueryRequest(
                spec=pb.QuerySpec(
                    query_json=QUERY.to_json(), protocol=pb.PROTOCOL_ADDITIVE, deadline_seconds=30
                ),
                presentation=data,
                presentation_nonce=nonce,
            )
            try:
                await client.leader.SubmitQuery(request, metadata=client.connector.metadata)
                out.append("accepted")
            except grpc.aio.AioRpcError as exc:
                out.append(exc.code().name)
        await client.close()
        return out

    assert run(go()) == ["PERMISSION_DENIED", "PERMISSION_DENIED"]


def test_a_failed_presentation_burns_its_nonce(policy_cluster) -> None:
    cluster, issuer = policy_cluster

    async def go() -> list[str]:
        from pets.v1 import aggregation_pb2 as pb

        client = analyst(cluster)
        # Proves too little for the policy: verified, then refused.
        nonce, weak = await client._present(_wallet(issuer, 5), ["accreditation >= 1"])
        request = pb.SubmitQueryRequest(
            spec=pb.QuerySpec(
                query_json=QUERY.to_json(), protocol=pb.PROTOCOL_ADDITIVE, deadline_seconds=30
            ),
            presentation=weak,
            presentation_nonce=nonce,
        )
        out = []
        for _ in range(2):
            try:
                await client.leader.SubmitQuery(request, metadata=client.connector.metadata)
                out.append("accepted")
            except grpc.aio.AioRpcError as exc:
                out.append(exc.details() or "")
        await client.close()
        return out

    first, second = run(go())
    assert "does not prove" in first
    assert "nonce" in second  # the second try is refused before any proof is checked
