"""Failures: too few holders, a killed leader, a dropped stream, a dead helper."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time

import grpc
import pytest

from pets import seal
from pets.errors import NotReadyError
from pets.query import Query
from pets.transport import wire
from pets.v1 import aggregation_pb2 as pb

from .conftest import analyst, announcement, contribute, expected, holder_client, query_status, run

TEXT = "mean(cost) from hospitals group by sex"


async def _submit(cluster, **options):  # type: ignore[no-untyped-def]
    client = analyst(cluster)
    try:
        return await client.submit(Query.parse(TEXT), **options)
    finally:
        await client.close()


async def _finish(cluster, submitted, *, close: bool = False):  # type: ignore[no-untyped-def]
    client = analyst(cluster)
    try:
        if close:
            await client.close_query(submitted.query_id)
        status = await asyncio.wait_for(client.wait(submitted.query_id), 60)
        result = await client.fetch(submitted, status) if status.state == 3 else None
        return status, result
    finally:
        await client.close()


async def _aggregate_codes(cluster, query_id: str) -> list[grpc.StatusCode]:  # type: ignore[no-untyped-def]
    client = analyst(cluster)
    codes = []
    for name in ("leader", "helper-1"):
        try:
            await client._fetch_one(name, query_id)
            codes.append(grpc.StatusCode.OK)
        except NotReadyError:
            codes.append(grpc.StatusCode.FAILED_PRECONDITION)
    await client.close()
    return codes


def test_below_min_holders_releases_nothing(make_cluster) -> None:
    cluster = make_cluster()
    submitted = run(_submit(cluster, min_holders=3, deadline_seconds=2))
    for holder in ("org-1", "org-2"):
        run(contribute(cluster, holder, submitted.query_id))
    status, result = run(_finish(cluster, submitted))
    assert status.state == pb.QUERY_STATE_FAILED
    assert status.failure == "below_min_holders"
    assert "2 holder(s) contributed, at least 3" in status.failure_detail
    assert result is None
    assert (
        run(_aggregate_codes(cluster, submitted.query_id))
        == [grpc.StatusCode.FAILED_PRECONDITION] * 2
    )


def test_leader_killed_and_restarted_loses_nothing(make_cluster) -> None:
    cluster = make_cluster()
    submitted = run(_submit(cluster, deadline_seconds=120, close_after=4))
    acks = [run(contribute(cluster, h, submitted.query_id)) for h in ("org-1", "org-2")]
    assert [a.contributors for a in acks] == [1, 2]
    cluster.kill("leader", signal.SIGKILL)
    cluster.restart_server("leader")
    for h in ("org-3", "org-4"):
        run(contribute(cluster, h, submitted.query_id))
    status, result = run(_finish(cluster, submitted))
    assert status.state == pb.QUERY_STATE_READY and status.contributors == 4
    assert result is not None and result.close_to(expected(cluster, TEXT))


def test_re_sent_contribution_after_restart_is_idempotent(make_cluster) -> None:
    cluster = make_cluster()
    submitted = run(_submit(cluster, deadline_seconds=120))

    async def go() -> tuple[bool, bool]:
        client = holder_client(cluster, "org-1")
        ann = await announcement(client, submitted.query_id)
        seeds = [b"\x03" * 32]
        digest = seal.contribution_digest(ann.query_id, seeds)
        payload = bytes(8 * ann.vector_length)
        first = await client.send_payload(
            ann.query_id, payload, digest, client.seal_seeds(ann, seeds), deadline=ann.deadline_unix
        )
        await client.close()
        cluster.kill("leader", signal.SIGKILL)
        cluster.restart_server("leader")
        client = holder_client(cluster, "org-1")
        again = await client.send_payload(
            ann.query_id, payload, digest, client.seal_seeds(ann, seeds), deadline=ann.deadline_unix
        )
        await client.close()
        return first.newly_accepted, again.newly_accepted

    assert run(go()) == (True, False)


def test_holder_disconnecting_mid_stream_is_discarded(make_cluster) -> None:
    cluster = make_cluster()
    submitted = run(_submit(cluster, deadline_seconds=120))

    async def go() -> None:
        client = holder_client(cluster, "org-1")
        ann = await announcement(client, submitted.query_id)
        seeds = [b"\x09" * 32]
        payload = bytes(8 * ann.vector_length)
        header = pb.ContributionHeader(
            query_id=ann.query_id,
            payload_bytes=len(payload),
            sealed_seeds=client.seal_seeds(ann, seeds),
            contribution_digest=seal.contribution_digest(ann.query_id, seeds),
        )
        never = asyncio.Event()

        async def messages():  # type: ignore[no-untyped-def]
            yield pb.ContributionChunk(header=header, data=payload[:8])
            await never.wait()

        call = client.leader.Contribute(messages(), metadata=client.connector.metadata)
        await asyncio.sleep(0.5)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await client.close()

    run(go())
    time.sleep(0.3)
    for h in ("org-2", "org-3"):
        run(contribute(cluster, h, submitted.query_id))
    status, result = run(_finish(cluster, submitted, close=True))
    assert status.state == pb.QUERY_STATE_READY
    assert status.contributors == 2
    assert result is not None and result.close_to(expected(cluster, TEXT, ["org-2", "org-3"]))


def test_helper_down_at_finalisation_fails_clearly(make_cluster) -> None:
    cluster = make_cluster()
    submitted = run(_submit(cluster, deadline_seconds=120))
    for h in ("org-1", "org-2"):
        run(contribute(cluster, h, submitted.query_id))
    cluster.kill("helper-1", signal.SIGKILL)
    status, result = run(_finish(cluster, submitted, close=True))
    assert status.state == pb.QUERY_STATE_FAILED
    assert status.failure == "helper_unavailable"
    assert "helper-1" in status.failure_detail
    assert result is None
    codes = run(_aggregate_codes_leader_only(cluster, submitted.query_id))
    assert codes == grpc.StatusCode.FAILED_PRECONDITION


def test_helper_down_while_holders_contribute(make_cluster) -> None:
    """Nothing is committed that the helper has not checked: while it is down the
    leader answers UNAVAILABLE and counts nothing; the holder's retries go through
    once it is back."""
    cluster = make_cluster()
    submitted = run(_submit(cluster, deadline_seconds=120))
    run(contribute(cluster, "org-1", submitted.query_id))
    cluster.kill("helper-1", signal.SIGKILL)

    async def go() -> tuple[int, pb.ContributionAck]:
        contributing = asyncio.create_task(contribute(cluster, "org-2", submitted.query_id))
        await asyncio.sleep(2.0)  # the holder is retrying against UNAVAILABLE meanwhile
        assert not contributing.done()
        counted = (await query_status(cluster, submitted.query_id)).contributors
        await asyncio.to_thread(cluster.restart_server, "helper-1")
        return counted, await asyncio.wait_for(contributing, 60)

    counted, ack = run(go())
    assert counted == 1
    assert ack.newly_accepted and ack.contributors == 2
    assert "helper could not check contributions" in cluster.tail("leader", 200)
    status, result = run(_finish(cluster, submitted, close=True))
    assert status.state == pb.QUERY_STATE_READY and status.contributors == 2
    assert result is not None and result.close_to(expected(cluster, TEXT, ["org-1", "org-2"]))


async def _aggregate_codes_leader_only(cluster, query_id: str) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    client = analyst(cluster)
    try:
        await client._fetch_one("leader", query_id)
        return grpc.StatusCode.OK
    except NotReadyError:
        return grpc.StatusCode.FAILED_PRECONDITION
    finally:
        await client.close()


def test_helper_restart_loses_nothing(make_cluster) -> None:
    """The helper keeps accepted seeds in memory only; after a restart it checks and
    opens the sealed copies the leader stored, and the sum is still right."""
    cluster = make_cluster()
    submitted = run(_submit(cluster, deadline_seconds=120))
    for h in ("org-1", "org-2"):
        run(contribute(cluster, h, submitted.query_id))
    cluster.kill("helper-1", signal.SIGKILL)
    cluster.restart_server("helper-1")
    run(contribute(cluster, "org-3", submitted.query_id))
    status, result = run(_finish(cluster, submitted, close=True))
    assert status.state == pb.QUERY_STATE_READY and status.contributors == 3
    assert result is not None and result.close_to(
        expected(cluster, TEXT, ["org-1", "org-2", "org-3"])
    )


def test_servers_shut_down_cleanly_on_sigterm(make_cluster) -> None:
    cluster = make_cluster(nodes=True)
    cluster.wait_nodes_ready()
    codes = cluster.stop()
    assert codes == {name: 0 for name in codes}, codes
    assert '"server stopped"' in cluster.tail("leader", 5)


def test_node_that_forgot_it_answered_re_sends_the_same_shares(make_cluster) -> None:
    """A node derives its seeds from a long-term key, so re-sharding is idempotent."""
    cluster = make_cluster(nodes=True)
    submitted = run(_submit(cluster, deadline_seconds=120))

    async def contributors() -> int:
        client = analyst(cluster)
        try:
            return (await client.status(submitted.query_id)).contributors
        finally:
            await client.close()

    deadline = time.time() + 30
    while run(contributors()) < 4 and time.time() < deadline:
        time.sleep(0.2)
    assert run(contributors()) == 4
    cluster.kill("org-1", signal.SIGKILL)
    for journal in (cluster.workdir / "state" / "org-1").glob("node.sqlite*"):
        journal.unlink()  # the node's record of what it answered
    cluster.start_node("org-1")
    deadline = time.time() + 30
    while '"newly_accepted": false' not in cluster.tail("org-1", 50):
        assert time.time() < deadline, cluster.tail("org-1", 50)
        time.sleep(0.2)
    assert run(contributors()) == 4
    _, result = run(_finish(cluster, submitted, close=True))
    assert result is not None and result.close_to(expected(cluster, TEXT))


def test_deadline_close_leaves_the_leader_serving(make_cluster) -> None:
    """Regression: a deadline-triggered close once killed the leader's commit loop."""
    cluster = make_cluster()
    first = run(_submit(cluster, deadline_seconds=0.5))
    status, _ = run(_finish(cluster, first))
    assert status.state == pb.QUERY_STATE_FAILED
    second = run(_submit(cluster, deadline_seconds=60))
    for h in ("org-1", "org-2"):
        run(contribute(cluster, h, second.query_id))
    status, result = run(_finish(cluster, second, close=True))
    assert status.state == pb.QUERY_STATE_READY and result is not None


def test_cancelled_contribution_leaves_the_leader_serving(make_cluster) -> None:
    """Regression: a holder cancelling mid-commit once killed the commit loop."""
    from pets import encoding, sharing
    from pets.query import compile as compile_query
    from pets.query import evaluate

    from .conftest import tables_for

    cluster = make_cluster()
    submitted = run(_submit(cluster, deadline_seconds=60))

    async def cancel_one() -> None:
        client = holder_client(cluster, "org-1")
        ann = await announcement(client, submitted.query_id)
        plan = compile_query(Query.from_json(ann.spec.query_json), cluster.schema)
        x = encoding.to_ring(evaluate(plan, tables_for(cluster, "hospitals", ["org-1"])[0]))
        seed = b"\x04" * 32
        payload = wire.vector_to_bytes(sharing.shard(x, 2, seeds=[seed]).leader)
        header = pb.ContributionHeader(
            query_id=ann.query_id,
            payload_bytes=len(payload),
            sealed_seeds=client.seal_seeds(ann, [seed]),
            contribution_digest=seal.contribution_digest(ann.query_id, [seed]),
        )
        for timeout in (0.001, 0.01, 0.05):
            with contextlib.suppress(grpc.aio.AioRpcError):
                await client.leader.Contribute(
                    iter([pb.ContributionChunk(header=header, data=payload)]),
                    metadata=client.connector.metadata,
                    timeout=timeout,
                )
        await client.close()

    run(cancel_one())
    for h in ("org-2", "org-3"):
        run(contribute(cluster, h, submitted.query_id))
    status, result = run(_finish(cluster, submitted, close=True))
    assert status.state == pb.QUERY_STATE_READY and result is not None
    # org-1 counts if (and only if) one of its cancelled attempts was committed.
    landed = ["org-1"] if status.contributors == 3 else []
    assert result.close_to(expected(cluster, TEXT, [*landed, "org-2", "org-3"]))


def test_failed_query_is_aborted_on_the_helper(make_cluster) -> None:
    import sqlite3

    cluster = make_cluster()
    submitted = run(_submit(cluster, min_holders=3, deadline_seconds=60))
    run(contribute(cluster, "org-1", submitted.query_id))
    db_path = cluster.workdir / "state" / "helper-1" / "pets.sqlite"

    def helper_state() -> int:
        db = sqlite3.connect(db_path)
        try:
            return db.execute(
                "SELECT state FROM queries WHERE id=?", (submitted.query_id,)
            ).fetchone()[0]
        finally:
            db.close()

    assert helper_state() == pb.QUERY_STATE_OPEN
    status, _ = run(_finish(cluster, submitted, close=True))
    assert status.failure == "below_min_holders"
    deadline = time.time() + 10
    while helper_state() != pb.QUERY_STATE_FAILED and time.time() < deadline:
        time.sleep(0.1)
    assert helper_state() == pb.QUERY_STATE_FAILED
    # Neither server releases anything for it, even to its analyst.
    assert (
        run(_aggregate_codes(cluster, submitted.query_id))
        == [grpc.StatusCode.FAILED_PRECONDITION] * 2
    )


def test_port_in_use_is_a_clear_error(make_cluster) -> None:
    import subprocess
    import sys

    cluster = make_cluster()
    config = cluster.workdir / "config" / "helper-1.toml"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pets",
            "serve",
            "--config",
            str(config),
            "--listen",
            cluster.address("helper-1"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 1
    assert "could not listen on" in out.stderr
    assert "Traceback" not in out.stderr
