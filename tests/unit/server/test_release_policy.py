"""The release rule (issue 15, item 1): no release isolates a holder by differencing.

Within the release window, every release of one query fingerprint must be over
the same contributor set; each server enforces it by itself, and the analyst
learns how many contributed, never who. The red-team repro (``close_after``
10, then 9) is replayed against a real leader, in process, and against a
helper that a leader asks to finalise over a set one holder short.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import time
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric import x25519

from pets import seal
from pets.errors import ThresholdNotMetError
from pets.protocols.paillier import encrypt_contribution, prepare_key
from pets.query import Query
from pets.query import compile as compile_query
from pets.server.config import Limits, ServerConfig
from pets.server.helper import Helper
from pets.server.leader import Leader
from pets.server.query_state import FAILED, READY
from pets.server.release_policy import (
    ReleaseGuard,
    check_close_after,
    check_release,
    contributor_set_digest,
)
from pets.server.store import SqliteStore
from pets.server.store.base import ReleaseRecord
from pets.transport import wire
from pets.v1 import aggregation_pb2 as pb
from tests.unit.server.servicer_fakes import Aborted, Context
from tests.unit.server.test_leader_prepare import SCHEMA

FINGERPRINT = b"\x0f" * 32
QUERY_JSON = '{"aggregate":"vector_sum","dataset":"v"}'


def _release(query_id: str, names: list[str], at: float = 100.0) -> ReleaseRecord:
    return ReleaseRecord(FINGERPRINT, query_id, contributor_set_digest(names), len(names), at)


# -- the rule, pure ---------------------------------------------------------------


def test_the_digest_is_of_the_set_not_its_order() -> None:
    assert contributor_set_digest(["b", "a"]) == contributor_set_digest(["a", "b"])
    assert contributor_set_digest(["a", "b"]) != contributor_set_digest(["a"])
    # Length-prefixed: names cannot be re-split into another set.
    assert contributor_set_digest(["ab", "c"]) != contributor_set_digest(["a", "bc"])


def test_only_the_same_set_may_be_released_again() -> None:
    ten = [f"org-{i}" for i in range(10)]
    first = _release("q-1", ten)
    check_release(_release("q-2", list(reversed(ten))), [first])  # same set: fine
    for other in (ten[:9], [*ten, "org-10"], [*ten[:9], "org-10"], ten[:5]):
        with pytest.raises(ThresholdNotMetError, match="another contributor set") as info:
            check_release(_release("q-2", other), [first])
        assert "org-" not in str(info.value)  # no holder named


def test_a_close_after_that_cannot_match_a_recent_release_is_refused() -> None:
    recent = [_release("q-1", [f"org-{i}" for i in range(10)])]
    check_close_after(10, recent)
    check_close_after(0, recent)  # waits for the deadline: judged at finalisation
    check_close_after(9, [])
    with pytest.raises(ThresholdNotMetError, match="close_after 9 differs from the 10"):
        check_close_after(9, recent)


# -- the guard over a real store ----------------------------------------------------


def test_the_guard_records_checks_and_forgets_after_the_window(tmp_path: Path) -> None:
    now = [1000.0]

    async def go() -> list[str]:
        store = SqliteStore(tmp_path / "pets.sqlite")
        guard = ReleaseGuard(store, 60.0, lambda: now[0])
        out = []
        await guard.claim(FINGERPRINT, "q-1", ["a", "b", "c"])
        await guard.claim(FINGERPRINT, "q-1", ["c", "b", "a"])  # a retry: allowed
        await guard.claim(b"\x01" * 32, "q-2", ["a", "b"])  # another fingerprint
        for query_id, names in (("q-3", ["a", "b"]), ("q-4", ["a", "b", "c", "d"])):
            try:
                await guard.claim(FINGERPRINT, query_id, names)
                out.append(f"{query_id} released")
            except ThresholdNotMetError:
                out.append(f"{query_id} refused")
        # A refused claim recorded nothing: the set of q-1 still binds, alone.
        out.append(str(len(await store.releases(FINGERPRINT, 0.0))))
        now[0] += 61.0  # the window has passed: q-1 is forgotten
        await guard.claim(FINGERPRINT, "q-5", ["a", "b"])
        out.append(str([r.query_id for r in await store.releases(FINGERPRINT, 0.0)]))
        await store.close()
        return out

    assert asyncio.run(go()) == ["q-3 refused", "q-4 refused", "1", "['q-5']"]


def test_releases_survive_a_restart(tmp_path: Path) -> None:
    async def go() -> None:
        store = SqliteStore(tmp_path / "pets.sqlite")
        await ReleaseGuard(store, 60.0, time.time).claim(FINGERPRINT, "q-1", ["a", "b"])
        await store.close()
        store = SqliteStore(tmp_path / "pets.sqlite")
        try:
            with pytest.raises(ThresholdNotMetError):
                await ReleaseGuard(store, 60.0, time.time).claim(FINGERPRINT, "q-2", ["a"])
        finally:
            await store.close()

    asyncio.run(go())


# -- the leader: the red-team repro, in process (Paillier: the leader alone) ---------


@functools.cache
def _public_key() -> bytes:
    return prepare_key(None, 2048)[1]


def _leader(tmp_path: Path) -> tuple[Leader, SqliteStore]:
    config = ServerConfig(
        role="leader",
        name="leader",
        listen="127.0.0.1:0",
        state_dir=tmp_path,
        min_holders=2,
        tls=None,
        limits=Limits(),
    )
    store = SqliteStore(config.database)
    return Leader(config, store, SCHEMA, []), store


async def _run_query(leader: Leader, holders: list[str], close_after: int) -> pb.QueryStatus:
    """Submit the query, let ``holders`` contribute, wait until it ends."""
    spec = pb.QuerySpec(
        query_json=QUERY_JSON,
        protocol=pb.PROTOCOL_PAILLIER,
        max_holders=16,
        close_after=close_after,
        paillier_public_key=_public_key(),
    )
    status = await leader.SubmitQuery(pb.SubmitQueryRequest(spec=spec), Context("analyst/a"))
    rt = leader.queries[status.query_id]
    plan = compile_query(Query.from_json(QUERY_JSON), SCHEMA)
    for holder in holders:
        payload = encrypt_contribution(leader.announcement(rt), plan, np.array([1]))
        header = pb.ContributionHeader(
            query_id=status.query_id,
            payload_bytes=len(payload),
            contribution_digest=hashlib.sha256(payload).digest(),
        )
        chunk = wire.decode_contribution_chunk(wire.encode_chunk(header, payload))
        await leader.ContributeOne(chunk, Context(f"holder/{holder}"))
    await leader.close(status.query_id, "closed by test")
    async with rt.changed:
        await asyncio.wait_for(rt.changed.wait_for(lambda: rt.record.state in (READY, FAILED)), 30)
    return await leader.GetQueryStatus(pb.QueryRef(query_id=status.query_id), Context("analyst/a"))


async def _header(leader: Leader, query_id: str) -> pb.AggregateHeader:
    async for raw in leader.GetAggregate(pb.QueryRef(query_id=query_id), Context("analyst/a")):
        return wire.decode_aggregate_chunk(raw).header
    raise AssertionError("no aggregate")


def test_the_leader_refuses_to_release_one_holder_short(tmp_path: Path) -> None:
    ten = [f"org-{i}" for i in range(1, 11)]

    async def go() -> dict[str, object]:
        leader, store = _leader(tmp_path)
        await leader.start()
        out: dict[str, object] = {}
        first = await _run_query(leader, ten, close_after=10)
        out["first"] = first.state
        out["header"] = await _header(leader, first.query_id)
        # The red-team repro: the same query with --close-after 9 is refused at once.
        try:
            await _run_query(leader, ten[:9], close_after=9)
            out["close_after_9"] = "accepted"
        except Aborted as exc:
            out["close_after_9"] = str(exc)
        # Without close_after, nine holders answer (one declined): not released.
        short = await _run_query(leader, ten[1:], close_after=0)
        out["short"] = (short.state, short.failure, short.failure_detail)
        # The same ten again: the same set, released.
        out["again"] = (await _run_query(leader, list(reversed(ten)), close_after=10)).state
        await leader.stop()
        await store.close()
        return out

    out = asyncio.run(go())
    assert out["first"] == READY
    header = out["header"]
    assert isinstance(header, pb.AggregateHeader) and header.contributors == 10
    assert "contributor_names" not in pb.AggregateHeader.DESCRIPTOR.fields_by_name
    assert "org-" not in str(header)  # the analyst learns the count, not the names
    assert "FAILED_PRECONDITION" in str(out["close_after_9"])
    assert "close_after 9 differs from the 10 contributors" in str(out["close_after_9"])
    state, failure, detail = out["short"]  # type: ignore[misc]
    assert (state, failure) == (FAILED, "release_refused")
    assert "another contributor set" in detail and "org-" not in detail
    assert out["again"] == READY


def test_status_counts_values_as_well_as_ciphertexts(tmp_path: Path) -> None:
    async def go() -> pb.QueryStatus:
        leader, store = _leader(tmp_path)
        await leader.start()
        status = await _run_query(leader, ["h1", "h2"], close_after=2)
        await leader.stop()
        await store.close()
        # After a restart the finished query has no plan in memory: still counted.
        leader, store = _leader(tmp_path)
        await leader.start()
        again = await leader.GetQueryStatus(
            pb.QueryRef(query_id=status.query_id), Context("analyst/a")
        )
        await leader.stop()
        await store.close()
        assert again.value_count == status.value_count
        return status

    status = asyncio.run(go())
    assert status.value_count == 1  # one slot of the v dataset
    assert status.vector_length == 1  # ... packed into one ciphertext


# -- a helper enforces the rule by itself ---------------------------------------------


async def _helper(tmp_path: Path) -> tuple[Helper, SqliteStore, x25519.X25519PublicKey]:
    config = ServerConfig(
        role="helper",
        name="helper-1",
        listen="127.0.0.1:0",
        state_dir=tmp_path,
        min_holders=1,
        tls=None,
        limits=Limits(),
    )
    store = SqliteStore(config.database)
    helper = Helper(config, store)
    await helper.start()
    key = b""
    for query_id in ("q-00000000000000b1", "q-00000000000000b2", "q-00000000000000b3"):
        response = await helper.RegisterQuery(
            pb.RegisterQueryRequest(
                query_id=query_id,
                spec=pb.QuerySpec(query_json=QUERY_JSON, protocol=pb.PROTOCOL_ADDITIVE),
                analyst="alice",
                vector_length=4,
                deadline_unix=time.time() + 3600,
                min_holders=1,
                fingerprint=FINGERPRINT,
            ),
            Context("leader/leader"),
        )
        key = response.seal_key.seal_public_key
    return helper, store, seal.load_public_key(key)


def _items(
    key: x25519.X25519PublicKey, query_id: str, holders: list[str]
) -> list[pb.FinalizeMessage]:
    items = [
        pb.SealedContribution(
            holder=name,
            seeds=[
                pb.SealedSeed(
                    helper="helper-1",
                    sealed=seal.seal(
                        os.urandom(32),
                        key,
                        seal.SeedContext(query_id, FINGERPRINT, name, "helper-1"),
                    ),
                )
            ],
        )
        for name in holders
    ]
    header = pb.FinalizeHeader(query_id=query_id, contributors=len(items))
    return [pb.FinalizeMessage(header=header), pb.FinalizeMessage(contributions=items)]


async def _messages(messages: list[pb.FinalizeMessage]):  # type: ignore[no-untyped-def]
    for m in messages:
        yield m


def test_a_helper_refuses_to_finalise_one_holder_short(tmp_path: Path) -> None:
    async def go() -> list[str]:
        helper, store, key = await _helper(tmp_path)
        leader = Context("leader/leader")
        out = []
        for query_id, holders in (
            ("q-00000000000000b1", ["h1", "h2", "h3"]),
            ("q-00000000000000b2", ["h1", "h2"]),
            ("q-00000000000000b3", ["h3", "h2", "h1"]),
        ):
            stream = _messages(_items(key, query_id, sorted(holders)))
            try:
                await helper.Finalize(stream, leader)
                out.append("finalised")
            except Aborted as exc:
                out.append(str(exc))
        await helper.stop()
        await store.close()
        return out

    first, short, same = asyncio.run(go())
    assert first == "finalised" and same == "finalised"
    assert "FAILED_PRECONDITION" in short and "another contributor set" in short
