"""Bad contributions are refused with a clear status and change nothing."""

from __future__ import annotations

import grpc
import pytest

from pets import wire
from pets.errors import InvalidInputError
from pets.query import Query
from pets.v1 import aggregation_pb2 as pb

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


def test_malformed_contributions(shared_cluster) -> None:
    cluster = shared_cluster
    query_id = run(_submit(cluster))

    async def go() -> list[tuple[str, grpc.StatusCode, str]]:
        client = holder_client(cluster, "org-1")
        ann = await announcement(client, query_id)
        receipts = await client.submit_seeds(ann, [b"\x07" * 32])
        good = bytes(8 * ann.vector_length)

        def header(**kw) -> pb.ContributionHeader:  # type: ignore[no-untyped-def]
            fields = {
                "query_id": query_id,
                "payload_bytes": len(good),
                "receipts": receipts,
                "payload_digest": wire.digest(good),
            }
            fields.update(kw)
            return pb.ContributionHeader(**fields)

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
            "digest mismatch": [
                pb.ContributionChunk(header=header(payload_digest=bytes(32)), data=good)
            ],
            "short digest": [pb.ContributionChunk(header=header(payload_digest=b"x"), data=good)],
            "no receipts": [pb.ContributionChunk(header=header(receipts=[]), data=good)],
            "forged receipt": [
                pb.ContributionChunk(
                    header=header(
                        receipts=[
                            pb.SeedReceipt(
                                helper=receipts[0].helper,
                                query_id=query_id,
                                holder="org-1",
                                seed_digest=receipts[0].seed_digest,
                                signature=bytes(64),
                            )
                        ]
                    ),
                    data=good,
                )
            ],
            "unknown query": [pb.ContributionChunk(header=header(query_id="q-nope"), data=good)],
        }
        out = []
        for name, messages in cases.items():
            code, details = await _send(client, messages)
            out.append((name, code, details))
        await client.close()
        return out

    results = run(go())
    for name, code, details in results:
        want = (
            grpc.StatusCode.NOT_FOUND
            if name == "unknown query"
            else (grpc.StatusCode.INVALID_ARGUMENT)
        )
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
            query_id=query_id, payload_bytes=len(big), payload_digest=wire.digest(big)
        )
        code, _ = await _send(client, [pb.ContributionChunk(header=header, data=big)])
        await client.close()
        return code

    assert run(go()) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert run(_contributors(cluster, query_id)) == 0


def test_bad_seeds_are_refused(shared_cluster) -> None:
    cluster = shared_cluster
    query_id = run(_submit(cluster))

    async def go() -> list[grpc.StatusCode]:
        client = holder_client(cluster, "org-3")
        helper = client.helper("helper-1")
        md = client.connector.metadata
        codes = []
        for req in (
            pb.SeedSubmission(query_id=query_id, seed=b"short"),
            pb.SeedSubmission(query_id="q-unknown", seed=bytes(32)),
        ):
            try:
                await helper.SubmitSeed(req, metadata=md)
                codes.append(grpc.StatusCode.OK)
            except grpc.aio.AioRpcError as exc:
                codes.append(exc.code())
        # Same seed twice: the same receipt. A different seed: refused.
        first = await helper.SubmitSeed(
            pb.SeedSubmission(query_id=query_id, seed=b"\x01" * 32), metadata=md
        )
        again = await helper.SubmitSeed(
            pb.SeedSubmission(query_id=query_id, seed=b"\x01" * 32), metadata=md
        )
        codes.append(grpc.StatusCode.OK if first == again else grpc.StatusCode.UNKNOWN)
        try:
            await helper.SubmitSeed(
                pb.SeedSubmission(query_id=query_id, seed=b"\x02" * 32), metadata=md
            )
            codes.append(grpc.StatusCode.OK)
        except grpc.aio.AioRpcError as exc:
            codes.append(exc.code())
        await client.close()
        return codes

    assert run(go()) == [
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.OK,
        grpc.StatusCode.ALREADY_EXISTS,
    ]


def test_duplicate_contributions(shared_cluster) -> None:
    cluster = shared_cluster
    query_id = run(_submit(cluster))

    async def go() -> tuple[bool, bool, str]:
        client = holder_client(cluster, "org-4")
        ann = await announcement(client, query_id)
        receipts = await client.submit_seeds(ann, [b"\x05" * 32])
        payload = bytes(range(256)) * (8 * ann.vector_length // 256) + bytes(
            8 * ann.vector_length % 256
        )
        first = await client.send_payload(query_id, payload, receipts, deadline=ann.deadline_unix)
        again = await client.send_payload(query_id, payload, receipts, deadline=ann.deadline_unix)
        other = payload[:-1] + b"\x01"
        try:
            await client.send_payload(query_id, other, receipts, deadline=ann.deadline_unix)
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
        bad = [
            pb.QuerySpec(query_json="{not json"),
            pb.QuerySpec(query_json='{"dataset": "nope", "aggregate": "count"}'),
            # well-formed JSON, but a sum over a category column
            pb.QuerySpec(query_json='{"aggregate":"sum","column":"sex","dataset":"hospitals"}'),
            pb.QuerySpec(query_json=QUERY.to_json(), min_holders=1),  # below the floor of 2
            pb.QuerySpec(query_json=QUERY.to_json(), deadline_seconds=-1),
            pb.QuerySpec(query_json=QUERY.to_json(), protocol=pb.PROTOCOL_PAILLIER),  # no key
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
