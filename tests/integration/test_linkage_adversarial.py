"""Record linkage against misbehaving parties (issue 16, item 5), over real gRPC and mTLS.

* A dishonest server (a wrong key share, random points) is caught by the
  holder's DLEQ checks in verified mode: a leader stand-in with the real
  leader's certificate serves ``Leader.LinkageEvaluate`` from this process.
* A forged matched set fails on the digest, with no release: the leader runs
  in this process with its join patched to drop one matched row; the helper
  (a real process) refuses the join, so it never sums or releases.
* Injected, replayed, repeated and oversized batches are refused with
  INVALID_ARGUMENT.
* No identifier, hashed identifier or pseudonym reaches the servers' files
  or logs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import pytest

import pets.client.linkage as client_linkage
import pets.protocols.linkage as protocol_linkage
from pets.client.analyst import AnalystClient
from pets.client.connect import Connector
from pets.client.holder import HolderClient
from pets.devtools.localcluster import LocalCluster
from pets.errors import InvalidInputError, InvalidProofError, PetsError
from pets.linkage import KeyShare, blind, evaluate
from pets.linkage.dleq import prove_batch
from pets.linkage.sides import match_sides
from pets.protocols.linkage import DEFAULT_CHUNK_POINTS, chunk_context, chunk_message
from pets.query import Query
from pets.server.app import Server
from pets.server.config import load_config
from pets.server.linkage_keys import signed_key
from pets.v1 import aggregation_pb2 as pb
from pets.v1 import aggregation_pb2_grpc as pb_grpc
from pets.zk.curve import N
from tests.integration.linkage_support import (
    DOMAIN,
    Persons,
    hand_rows,
    holder_client,
    make_cluster,
    run_linked,
)
from tests.integration.test_linkage_service import hospital, ltc

HOLDERS = ["muni-1", "hosp-1", "hosp-2"]
TEXT = "count(*) from ltc linked to hospitals"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    c = make_cluster(tmp_path_factory.mktemp("linkage-adv"), HOLDERS)
    yield c
    c.stop()


# ----------------------------------------------------------------- dishonest servers


class DishonestLeader(pb_grpc.LeaderServicer):
    """Answers LinkageEvaluate as leader and helper (with their certificates), but
    deviates in one step: ``mode`` is "leader-key", "helper-key" or "random"."""

    def __init__(self, cluster: LocalCluster, mode: str) -> None:
        self.cluster = cluster
        self.mode = mode

    def _key(self) -> KeyShare:
        return KeyShare("leader", secrets.randbelow(N - 1) + 1)

    async def LinkageEvaluate(
        self, request_iterator: AsyncIterator[pb.LinkageBatchChunk], context: Any
    ) -> AsyncIterator[pb.LinkageEvaluation]:
        keys = {"helper": KeyShare("helper", 7), "leader": KeyShare("leader", 11)}
        wrong = {"helper": KeyShare("helper", 8), "leader": KeyShare("leader", 12)}
        header: pb.LinkageBatchHeader | None = None
        async for msg in request_iterator:
            if msg.HasField("header"):
                header = msg.header
            assert header is not None
            answer = pb.LinkageEvaluation(index=msg.index)
            points = bytes(msg.points)
            for role in ("helper", "leader"):
                used = wrong[role] if self.mode == f"{role}-key" else keys[role]
                context_bytes = chunk_context(role, header.domain, header.query_id, "muni-1", 0)
                out = evaluate(points, used, max_rows=len(points) // 33)
                if self.mode == "random" and role == "leader":
                    out_points = blind(
                        [secrets.token_bytes(8) for _ in range(len(points) // 33)], DOMAIN
                    )[0]
                else:
                    out_points = out.outputs
                proof = (
                    prove_batch(used, points, out_points, context=context_bytes)
                    if (self.mode != "random" or role != "leader")
                    else secrets.token_bytes(64)
                )
                if role == "helper":
                    answer.helper_points, answer.helper_proof = out_points, proof
                else:
                    answer.points, answer.proof = out_points, proof
                points = out_points
            if msg.index == 0:
                for role in ("helper", "leader"):
                    name = "helper-1" if role == "helper" else "leader"
                    config = SimpleNamespace(name=name, tls=self.cluster.tls(name))
                    answer.keys.append(
                        signed_key(config, role, header.domain, header.query_id, keys[role])
                    )
            yield answer


async def _against(cluster: LocalCluster, mode: str) -> None:
    tls = cluster.tls("leader")
    assert tls is not None
    server = grpc.aio.server()
    pb_grpc.add_LeaderServicer_to_server(DishonestLeader(cluster, mode), server)
    credentials = grpc.ssl_server_credentials(
        [(tls.key.read_bytes(), tls.cert.read_bytes())],
        root_certificates=tls.ca.read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        endpoints = dataclasses.replace(cluster.endpoints("muni-1"), leader=f"127.0.0.1:{port}")
        client = HolderClient(Connector(endpoints, "holder"))
        ann = pb.QueryAnnouncement(query_id="q-00112233445566aa", helpers=["helper-1"])
        batch, _ = blind([b"p%04d" % i for i in range(20)], DOMAIN)
        try:
            await client_linkage.oprf(client, ann, DOMAIN, batch, verify=True)
        finally:
            await client.close()
    finally:
        await server.stop(0)


@pytest.mark.parametrize("mode", ["leader-key", "helper-key", "random"])
def test_a_dishonest_server_fails_the_dleq_check(cluster: LocalCluster, mode: str) -> None:
    with pytest.raises(InvalidProofError, match="linkage dleq"):
        asyncio.run(_against(cluster, mode))


def test_an_honest_stand_in_passes_the_same_checks(cluster: LocalCluster) -> None:
    asyncio.run(_against(cluster, "honest"))  # the test above fails for the deviation only


# ----------------------------------------------------------------- forged matched set


def test_a_forged_matched_set_fails_on_the_digest_and_nothing_is_released(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = make_cluster(tmp_path, HOLDERS)
    try:
        cluster.kill("leader")
        config = load_config(cluster._server_config("leader", "leader"))

        def forged(query_id: Any, uploads: Any, sides: int) -> Any:
            first = uploads[0]
            shortened = dataclasses.replace(first, pseudonyms=first.pseudonyms[16:])
            return match_sides(query_id, [shortened, *uploads[1:]], sides)

        monkeypatch.setattr(protocol_linkage, "match_sides", forged)

        async def scenario() -> tuple[pb.QueryStatus, Any]:
            server = Server(config)
            await server.start()
            try:
                holders = {"muni-1": ltc(0, 40), "hosp-1": hospital(list(range(0, 40)))}
                status, result = await run_linked(cluster, TEXT, holders)
                analyst = AnalystClient(cluster.endpoints("analyst"))
                try:
                    with pytest.raises(PetsError):  # the helper holds no share to release
                        await analyst._aggregate_stream(
                            "helper-1", status.query_id, 8, lambda h: lambda d: None
                        )
                finally:
                    await analyst.close()
                return status, result
            finally:
                await server.stop(0)

        status, result = asyncio.run(scenario())
        assert status.state == pb.QUERY_STATE_FAILED and result is None
        assert status.failure == "linkage_digest_mismatch", status.failure_detail
    finally:
        cluster.stop()


# ----------------------------------------------------------------- refused batches


async def _submit(cluster: LocalCluster) -> str:
    analyst = AnalystClient(cluster.endpoints("analyst"))
    try:
        sub = await analyst.submit(
            Query.parse(TEXT), protocol="linkage", min_holders=2, deadline_seconds=30
        )
        return sub.status.query_id
    finally:
        await analyst.close()


async def _send(
    client: HolderClient,
    query_id: str,
    points: bytes,
    *,
    rows: int | None = None,
    signer_holder: str | None = None,
    signer: Any = None,
    query_for_signature: str | None = None,
) -> None:
    """One batch to the leader with hand-made header and signatures; drains the answer."""
    rows = len(points) // 33 if rows is None else rows
    key = signer or client.signing_key
    message = chunk_message(
        DOMAIN.name,
        query_for_signature or query_id,
        signer_holder or client.name,
        rows,
        0,
        points,
    )
    chunk = pb.LinkageBatchChunk(
        header=pb.LinkageBatchHeader(
            query_id=query_id,
            domain=DOMAIN.name,
            rows=rows,
            chunk_points=DEFAULT_CHUNK_POINTS,
        ),
        index=0,
        points=points,
        signature=key.sign(message, client_linkage._ECDSA),
    )
    call = client.leader.LinkageEvaluate(iter([chunk]), metadata=client.connector.metadata)
    try:
        async for _ in call:
            pass
    except grpc.aio.AioRpcError as exc:
        from pets.transport.status import error_for

        raise error_for(exc, "linkage batch") from None


def _refused(cluster: LocalCluster, holder: str, **kw: Any) -> str:
    async def go() -> str:
        qid = await _submit(cluster)
        client = holder_client(cluster, holder)
        try:
            batch, _ = blind([b"p%04d" % i for i in range(5)], DOMAIN)
            if kw.pop("twice", False):
                await _send(client, qid, batch)
            with pytest.raises(InvalidInputError) as info:
                await _send(client, qid, batch, **kw)
            return str(info.value)
        finally:
            await client.close()

    return asyncio.run(go())


def test_a_repeated_or_replayed_batch_is_refused(cluster: LocalCluster) -> None:
    assert "repeated-batch" in _refused(cluster, "muni-1", twice=True)


def test_an_oversized_batch_is_refused(cluster: LocalCluster) -> None:
    assert "oversized-batch" in _refused(cluster, "muni-1", rows=1001)


def test_another_holders_signed_batch_is_refused(cluster: LocalCluster) -> None:
    # hosp-1 replays a chunk signed for muni-1 (or the leader injects one): the helper
    # checks the signature against the relaying holder's certificate.
    assert "linkage signature" in _refused(cluster, "hosp-1", signer_holder="muni-1")


def test_a_batch_signed_for_another_query_is_refused(cluster: LocalCluster) -> None:
    assert "linkage signature" in _refused(
        cluster, "muni-1", query_for_signature="q-ffffffffffffffff"
    )


def test_points_off_the_curve_are_refused(cluster: LocalCluster) -> None:
    async def go() -> str:
        qid = await _submit(cluster)
        client = holder_client(cluster, "muni-1")
        try:
            with pytest.raises(InvalidInputError) as info:
                await _send(client, qid, b"\x02" + b"\xff" * 32)
            return str(info.value)
        finally:
            await client.close()

    assert "bad-point" in asyncio.run(go())


# ----------------------------------------------------------------- nothing stored or logged


def test_no_identifier_hash_or_pseudonym_in_state_or_logs(
    cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bytes] = []
    real_upload = client_linkage.upload

    async def recording(client: Any, ann: Any, side: int, pseudonyms: bytes, matrix: Any) -> Any:
        seen.append(pseudonyms)
        return await real_upload(client, ann, side, pseudonyms, matrix)

    monkeypatch.setattr(client_linkage, "upload", recording)
    holders: dict[str, Persons] = {"muni-1": ltc(0, 30), "hosp-1": hospital(list(range(0, 30)))}
    status, _ = asyncio.run(run_linked(cluster, TEXT, holders))
    assert status.state == pb.QUERY_STATE_READY
    assert seen and all(seen)
    needles: list[bytes] = []
    for p in holders.values():
        for ident in hand_rows(cluster.schema, Query.parse(TEXT), p).ids:
            digest = hashlib.sha256(ident).digest()
            needles += [ident, digest, digest.hex().encode()]
    for pseudonyms in seen:
        for at in range(0, len(pseudonyms), 16):
            ps = pseudonyms[at : at + 16]
            needles += [ps, ps.hex().encode()]
    blobs = [p.read_bytes() for p in (cluster.workdir / "state").rglob("*") if p.is_file()]
    logs = cluster.log_text().encode()
    for needle in needles:
        assert needle not in logs
        assert all(needle not in b for b in blobs)


def test_a_batch_repeated_after_a_leader_restart_is_refused_by_the_helper(tmp_path: Path) -> None:
    """The leader's record of batches is in memory; the helper's is in its store."""
    cluster = make_cluster(tmp_path, HOLDERS)
    try:
        qid = asyncio.run(_submit(cluster))
        batch, _ = blind([b"p%04d" % i for i in range(5)], DOMAIN)

        async def send() -> None:
            client = holder_client(cluster, "muni-1")
            try:
                await _send(client, qid, batch)
            finally:
                await client.close()

        asyncio.run(send())
        cluster.kill("leader")
        cluster.restart_server("leader")
        with pytest.raises(InvalidInputError, match="repeated-batch"):
            asyncio.run(send())
        assert "repeated-batch" in cluster.tail("helper-1", 50)
    finally:
        cluster.stop()


def test_the_leader_cannot_relay_other_pseudonyms_to_the_helper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The helper checks each upload's signature: a leader that swaps one pseudonym
    in what it relays (to steer the helper's join) fails the query."""
    import pets.server.leader.linkage as leader_linkage

    cluster = make_cluster(tmp_path, HOLDERS)
    try:
        cluster.kill("leader")
        config = load_config(cluster._server_config("leader", "leader"))
        honest = leader_linkage.LeaderLinkage._join_messages

        def tampered(self: Any, *args: Any) -> Any:
            for msg in honest(self, *args):
                if msg.HasField("part") and msg.part.pseudonyms:
                    msg.part.pseudonyms = bytes(16) + msg.part.pseudonyms[16:]
                yield msg

        monkeypatch.setattr(leader_linkage.LeaderLinkage, "_join_messages", tampered)

        async def scenario() -> pb.QueryStatus:
            server = Server(config)
            await server.start()
            try:
                holders = {"muni-1": ltc(0, 40), "hosp-1": hospital(list(range(0, 40)))}
                status, result = await run_linked(cluster, TEXT, holders)
                assert result is None
                return status
            finally:
                await server.stop(0)

        status = asyncio.run(scenario())
        assert status.state == pb.QUERY_STATE_FAILED
        assert status.failure == "linkage_refused", status.failure_detail
        assert "linkage signature" in status.failure_detail
    finally:
        cluster.stop()
