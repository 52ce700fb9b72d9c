"""Bad contributions are refused with a clear status and change nothing."""

from __future__ import annotations

import grpc
import pytest

from pets import seal
from pets.errors import InvalidInputError
from pets.query import Query
from pets.transport import wire
from pets.v1 import aggregation_pb2 as pb
from pets.v1 import aggregation_pb2_grpc as pb_grpc

from .conftest import analyst, announcement, contribute, holder_client, run

QUERY = Query.parse("sum(cost) from hospitals group by sex")


async def _submit(cluster, **options) -> str:  # type: ignore[no-untyped-def]
    client = analyst(cluster)
    try:
        return (await client.submit(QUERY, deadline_seconds=60, **options)).query_id
    finally:
        await client.close()


async def _contributors(cluster, query_id: str) -> int:  # type: ignore[no-untyped-def]
    client = analyst(cluster)
    try:
        return (await client.status(query_id)).contributors
    finally:
        await client.close()


async def _send(client, messages: list[pb.ContributionChunk]) -> tuple[grpc.StatusCode, str]:  # type: ignore[no-untyped-def]
    try:
        await client.leader.Contribute(
            iter(messages), metadata=client.connector.metadata, timeout=20
        )
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


async def _send_one(client, message: pb.ContributionChunk) -> tuple[grpc.StatusCode, str]:  # type: ignore[no-untyped-def]
    try:
        await client.leader.ContributeOne(message, metadata=client.connector.metadata, timeout=20)
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


def test_malformed_contributions(shared_cluster) -> None:
    cluster = shared_cluster
    query_id = run(_submit(cluster))

    async def go() -> list[tuple[str, grpc.StatusCode, str]]:
        client = holder_client(cluster, "org-1")
        ann = await announcement(client, query_id)
        seeds = [b"\x07" * 32]
        sealed = client.seal_seeds(ann, seeds)
        good = bytes(8 * ann.vector_length)

        def header(**kw) -> pb.ContributionHeader:  # type: ignore[no-untyped-def]
            fields = {
                "query_id": query_id,
                "payload_bytes": len(good),
                "sealed_seeds": sealed,
                "contribution_digest": seal.contribution_digest(query_id, seeds),
            }
            fields.update(kw)
            return pb.ContributionHeader(**fields)

        def seeds_with(**kw) -> list[pb.SealedSeed]:  # type: ignore[no-untyped-def]
            s = pb.SealedSeed()
            s.CopyFrom(sealed[0])
            for k, v in kw.items():
                setattr(s, k, v)
            return [s]

        other = holder_client(cluster, "org-4")
        other_holders_seed = other.seal_seeds(ann, seeds)  # signed by org-4, for org-4
        await other.close()
        cases = {
            "empty stream": [],
            "no header": [pb.ContributionChunk(data=good)],
            "wrong length": [
                pb.ContributionChunk(header=header(payload_bytes=len(good) - 8), data=good[:-8])
            ],
            "oversized": [pb.ContributionChunk(header=header(), data=good + bytes(8))],
            "truncated": [pb.ContributionChunk(header=header(), data=good[:-8])],
            "second header": [
                pb.ContributionChunk(header=header(), data=good[:8]),
                pb.ContributionChunk(header=header(), data=good[8:]),
            ],
            "short digest": [
                pb.ContributionChunk(header=header(contribution_digest=b"x"), data=good)
            ],
            "no sealed seeds": [pb.ContributionChunk(header=header(sealed_seeds=[]), data=good)],
            "seed for an unknown helper": [
                pb.ContributionChunk(
                    header=header(sealed_seeds=seeds_with(helper="helper-9")), data=good
                )
            ],
            "short sealed seed": [
                pb.ContributionChunk(
                    header=header(sealed_seeds=seeds_with(sealed=b"x" * 10)), data=good
                )
            ],
            "forged signature": [
                pb.ContributionChunk(
                    header=header(sealed_seeds=seeds_with(signature=bytes(70))), data=good
                )
            ],
            "another holder's sealed seed": [
                pb.ContributionChunk(header=header(sealed_seeds=other_holders_seed), data=good)
            ],
            "unknown query": [pb.ContributionChunk(header=header(query_id="q-nope"), data=good)],
        }
        out = []
        for name, messages in cases.items():
            code, details = await _send(client, messages)
            out.append((name, code, details))
            if len(messages) == 1:  # the same single message through the unary call
                code, details = await _send_one(client, messages[0])
                out.append((f"{name} (ContributeOne)", code, details))
        await client.close()
        return out

    results = run(go())
    for name, code, details in results:
        want = {
            "unknown query": grpc.StatusCode.NOT_FOUND,
            # Well-formed, but not signed by the caller: a proof that does not verify.
            "forged signature": grpc.StatusCode.PERMISSION_DENIED,
            "another holder's sealed seed": grpc.StatusCode.PERMISSION_DENIED,
        }.get(name.removesuffix(" (ContributeOne)"), grpc.StatusCode.INVALID_ARGUMENT)
        assert code == want, (name, code, details)
        assert details, name
    assert run(_contributors(cluster, query_id)) == 0
    # After all that, a correct contribution is still accepted.
    ack = run(contribute(cluster, "org-2", query_id))
    assert ack.newly_accepted and ack.contributors == 1


def test_oversized_message_is_refused_by_grpc(shared_cluster) -> None:
    cluster = shared_cluster
    query_id = run(_submit(cluster))

    async def go() -> grpc.StatusCode:
        client = holder_client(cluster, "org-2")
        big = bytes(wire.MAX_MESSAGE_BYTES + 1)
        header = pb.ContributionHeader(
            query_id=query_id, payload_bytes=len(big), contribution_digest=wire.digest(big)
        )
        code, _ = await _send(client, [pb.ContributionChunk(header=header, data=big)])
        await client.close()
        return code

    assert run(go()) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert run(_contributors(cluster, query_id)) == 0


def test_holders_never_reach_a_helper(shared_cluster) -> None:
    """Seeds travel sealed through the leader: a holder has no business with a helper."""
    cluster = shared_cluster
    query_id = run(_submit(cluster))

    async def go() -> list[grpc.StatusCode]:
        client = holder_client(cluster, "org-3")
        channel = client.connector.helper_channel("helper-1")
        stub = pb_grpc.HelperStub(channel)
        md = client.connector.metadata
        header = pb.FinalizeHeader(query_id=query_id)
        calls = [
            stub.GetInfo(pb.HelperInfoRequest(), metadata=md),
            stub.Finalize(iter([pb.FinalizeMessage(header=header)]), metadata=md),
            stub.GetAggregate(pb.QueryRef(query_id=query_id), metadata=md).read(),
        ]
        codes = []
        for call in calls:
            try:
                await call
                codes.append(grpc.StatusCode.OK)
            except grpc.aio.AioRpcError as exc:
                codes.append(exc.code())
        await channel.close()
        await client.close()
        return codes

    assert run(go()) == [grpc.StatusCode.PERMISSION_DENIED] * 3
    assert run(_contributors(cluster, query_id)) == 0


def test_duplicate_contributions(shared_cluster) -> None:
    cluster = shared_cluster
    query_id = run(_submit(cluster))

    async def go() -> tuple[bool, bool, str]:
        client = holder_client(cluster, "org-4")
        ann = await announcement(client, query_id)
        seeds = [b"\x05" * 32]
        sealed = client.seal_seeds(ann, seeds)
        digest = seal.contribution_digest(query_id, seeds)
        payload = bytes(range(256)) * (8 * ann.vector_length // 256) + bytes(
            8 * ann.vector_length % 256
        )
        deadline = ann.deadline_unix
        first = await client.send_payload(query_id, payload, digest, sealed, deadline=deadline)
        # The same contribution again, even sealed afresh: recognised by its seeds.
        resealed = client.seal_seeds(ann, seeds)
        again = await client.send_payload(query_id, payload, digest, resealed, deadline=deadline)
        other_seeds = [b"\x06" * 32]
        try:
            await client.send_payload(
                query_id,
                payload,
                seal.contribution_digest(query_id, other_seeds),
                client.seal_seeds(ann, other_seeds),
                deadline=deadline,
            )
            verdict = "accepted"
        except Exception as exc:
            verdict = type(exc).__name__
        await client.close()
        return first.newly_accepted, again.newly_accepted, verdict

    assert run(go()) == (True, False, "ConflictError")
    assert run(_contributors(cluster, query_id)) == 1


def test_query_validation(shared_cluster) -> None:
    cluster = shared_cluster

    async def go() -> list[str]:
        client = analyst(cluster)
        stub = client.leader
        md = client.connector.metadata
        additive = pb.PROTOCOL_ADDITIVE
        bad = [
            pb.QuerySpec(query_json="{not json", protocol=additive),
            pb.QuerySpec(query_json='{"dataset": "nope", "aggregate": "count"}', protocol=additive),
            # well-formed JSON, but a sum over a category column
            pb.QuerySpec(
                query_json='{"aggregate":"sum","column":"sex","dataset":"hospitals"}',
                protocol=additive,
            ),
            # below the floor of 2
            pb.QuerySpec(query_json=QUERY.to_json(), min_holders=1, protocol=additive),
            pb.QuerySpec(query_json=QUERY.to_json(), deadline_seconds=-1, protocol=additive),
            pb.QuerySpec(query_json=QUERY.to_json(), protocol=pb.PROTOCOL_PAILLIER),  # no key
            pb.QuerySpec(query_json=QUERY.to_json()),  # no protocol: refused, not guessed
            # above max_holders: could never be released (issue 15, item 3)
            pb.QuerySpec(query_json=QUERY.to_json(), min_holders=2**32 - 1, protocol=additive),
        ]
        out = []
        for spec in bad:
            try:
                await stub.SubmitQuery(pb.SubmitQueryRequest(spec=spec), metadata=md)
                out.append("OK")
            except grpc.aio.AioRpcError as exc:
                out.append(f"{exc.code().name}: {exc.details()}")
        await client.close()
        return out

    results = run(go())
    assert all(r.startswith("INVALID_ARGUMENT") for r in results), results
    assert "nope" in results[1]
    assert "sex" in results[2]
    assert "floor" in results[3]
    assert "must name its protocol" in results[6]
    assert "max_holders" in results[7]


def test_close_after_below_min_holders_is_refused(shared_cluster) -> None:
    cluster = shared_cluster
    with pytest.raises(InvalidInputError, match="close_after"):
        run(_submit(cluster, close_after=1))


def test_open_query_limit_holds_under_concurrent_submissions(make_cluster) -> None:
    import asyncio

    cluster = make_cluster(
        limits={"finalize_timeout_seconds": 3, "max_open_queries_per_analyst": 2}
    )

    async def go() -> list[str]:
        client = analyst(cluster)
        results = await asyncio.gather(
            *(client.submit(QUERY, deadline_seconds=60) for _ in range(10)),
            return_exceptions=True,
        )
        await client.close()
        return [type(r).__name__ for r in results]

    outcomes = run(go())
    assert outcomes.count("Submitted") == 2, outcomes
    assert set(outcomes) == {"Submitted", "NotReadyError"}


def test_a_seed_that_does_not_open_is_refused_before_it_counts(make_cluster) -> None:
    """A holder that signs a sealed seed the helper cannot open is refused at once;
    the query still completes with the others (nothing for it to break later)."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from .conftest import expected

    cluster = make_cluster()
    text = "sum(cost) from hospitals group by sex"

    async def go():  # type: ignore[no-untyped-def]
        client = analyst(cluster)
        submitted = await client.submit(Query.parse(text), deadline_seconds=60)
        qid = submitted.query_id
        cheat = holder_client(cluster, "org-3")
        ann = await announcement(cheat, qid)
        ctx = seal.SeedContext(qid, bytes(ann.fingerprint), "org-3", "helper-1")
        garbage = bytes(range(seal.SEALED_BYTES))  # well-formed size, opens to nothing
        key = load_pem_private_key(cluster.tls("org-3").key.read_bytes(), password=None)
        sealed = pb.SealedSeed(
            helper="helper-1", sealed=garbage, signature=seal.sign_sealed(ctx, garbage, key)
        )
        try:
            await cheat.send_payload(
                qid,
                bytes(8 * ann.vector_length),
                bytes(32),
                [sealed],
                deadline=ann.deadline_unix,
            )
            verdict = "accepted"
        except Exception as exc:
            verdict = f"{type(exc).__name__}: {exc}"
        await cheat.close()
        for h in ("org-1", "org-2"):
            await contribute(cluster, h, qid)
        await client.close_query(qid)
        status = await client.wait(qid)
        result = await client.fetch(submitted, status)
        await client.close()
        return verdict, status, result

    verdict, status, result = run(go())
    assert verdict.startswith("PermissionDeniedError") and "does not open" in verdict
    assert status.state == pb.QUERY_STATE_READY and status.contributors == 2
    assert result.close_to(expected(cluster, text, ["org-1", "org-2"]))
