"""The store's replica guarantees (issue 14, item 2), on both backends where they apply.

Two :class:`~pets.server.store.Store` objects on one PostgreSQL database stand
for two leader replicas: each commits into its own shard, a close fixes the
contributor set from both, a commit after the close is refused, one finish
wins, and one lease holder at a time. SQLite (one writer) keeps its single
shard and always grants the lease. The protocols' merges are checked against
folding the same contributions into one aggregate.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from pets.errors import InvalidInputError
from pets.protocols.additive import AdditiveAggregate
from pets.server.query_state import CLOSED, READY
from pets.server.store import Store, connect_store
from pets.server.store.base import AlreadyFinishedError, QueryFullError, QueryNotOpenError
from tests.unit.server.test_store_interface import (
    Q1,
    Q2,
    _contribution,
    _record,
    state_location,
)


@pytest.fixture
def pg_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    location = state_location(request, tmp_path, "postgres")
    assert isinstance(location, str)
    return location


def _two(location: str, body: object) -> None:
    async def go() -> None:
        a = await connect_store(location, replica="a")
        b = await connect_store(location, replica="b")
        try:
            await body(a, b)  # type: ignore[operator]
        finally:
            await a.close()
            await b.close()

    asyncio.run(go())


def test_each_replica_commits_its_own_shard_and_the_close_takes_both(pg_location: str) -> None:
    async def body(a: Store, b: Store) -> None:
        assert (await a.replica(), await b.replica()) == ("a", "b")
        await a.insert_query(_record(Q1))
        counts = await a.commit_contributions(
            [_contribution(Q1, "h1"), _contribution(Q1, "h2")], {Q1: b"A2"}
        )
        assert counts == {Q1: 2}
        assert await b.commit_contributions([_contribution(Q1, "h0")], {Q1: b"B1"}) == {Q1: 3}
        assert await a.own_shard(Q1) == (b"A2", 2)
        assert await b.own_shard(Q1) == (b"B1", 1)
        assert sorted(await a.shards(Q1)) == [(b"A2", 2), (b"B1", 1)]
        closed = await b.close_query(Q1)
        assert closed is not None and closed.state == CLOSED
        assert closed.contributors == ("h0", "h1", "h2")  # every replica's, sorted
        again = await a.close_query(Q1)  # a second close changes nothing
        assert again == closed
        with pytest.raises(QueryNotOpenError) as refused:
            await a.commit_contributions([_contribution(Q1, "late")], {Q1: b"A3"})
        assert refused.value.query_ids == (Q1,)
        assert set(await b.contributions(Q1)) == {"h0", "h1", "h2"}
        assert await a.close_query("q-unknown") is None
        # A shard rewritten without contributions (a linked query's joined share after
        # its close) needs no open query.
        assert await a.commit_contributions([], {Q1: b"joined"}) == {}
        assert await a.own_shard(Q1) == (b"joined", 2)

    _two(pg_location, body)


def test_a_batch_with_a_closed_query_records_nothing(pg_location: str) -> None:
    async def body(a: Store, b: Store) -> None:
        await a.insert_query(_record(Q1))
        await a.insert_query(_record(Q2))
        await b.close_query(Q2)
        with pytest.raises(QueryNotOpenError):
            await a.commit_contributions(
                [_contribution(Q1, "h1"), _contribution(Q2, "h1")], {Q1: b"x", Q2: b"y"}
            )
        assert await a.contributions(Q1) == {}
        assert await a.shards(Q1) == []

    _two(pg_location, body)


def test_a_cap_counts_every_replica_even_when_they_race(pg_location: str) -> None:
    """A query's cap (its most contributions) holds over every replica's shards: one
    at a time, and with ten one-holder commits racing from two replicas."""

    async def body(a: Store, b: Store) -> None:
        await a.insert_query(_record(Q1))
        await a.commit_contributions(
            [_contribution(Q1, "h1"), _contribution(Q1, "h2")], {Q1: b"A"}, {Q1: 3}
        )
        with pytest.raises(QueryFullError) as full:
            await b.commit_contributions(
                [_contribution(Q1, "h3"), _contribution(Q1, "h4")], {Q1: b"B"}, {Q1: 3}
            )
        assert full.value.totals == {Q1: 2}
        await b.commit_contributions([_contribution(Q1, "h3")], {Q1: b"B"}, {Q1: 3})
        await a.insert_query(_record(Q2))
        outcomes = await asyncio.gather(
            *(
                (a, b)[i % 2].commit_contributions(
                    [_contribution(Q2, f"r{i}")], {Q2: b"x"}, {Q2: 5}
                )
                for i in range(10)
            ),
            return_exceptions=True,
        )
        assert sum(1 for o in outcomes if not isinstance(o, BaseException)) == 5, outcomes
        assert all(isinstance(o, QueryFullError) for o in outcomes if isinstance(o, BaseException))
        assert len(await a.contributions(Q2)) == 5
        assert sum(n for _, n in await b.shards(Q2)) == 5

    _two(pg_location, body)


def test_one_finish_wins_and_clears_the_shards_and_lease(pg_location: str) -> None:
    async def body(a: Store, b: Store) -> None:
        await a.insert_query(_record(Q1))
        await a.commit_contributions([_contribution(Q1, "h1")], {Q1: b"A"})
        await b.commit_contributions([_contribution(Q1, "h2")], {Q1: b"B"})
        closed = await a.close_query(Q1)
        assert closed is not None
        assert await a.take_lease(Q1, 60)
        ready = closed.with_state(READY)
        with pytest.raises(InvalidInputError):  # two shards: "keep the running one" is ambiguous
            await a.finish_query(ready, None)
        outcomes = await asyncio.gather(
            a.finish_query(ready, b"merged"),
            b.finish_query(ready, b"other"),
            return_exceptions=True,
        )
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(errors) == 1 and isinstance(errors[0], AlreadyFinishedError), outcomes
        winner = b"merged" if outcomes[0] is None else b"other"
        assert await b.get_aggregate(Q1) == winner
        assert await a.shards(Q1) == []
        assert await b.take_lease(Q1, 60)  # the finished query's lease was deleted

    _two(pg_location, body)


def test_one_lease_holder_at_a_time_until_it_lapses(pg_location: str) -> None:
    async def body(a: Store, b: Store) -> None:
        await a.insert_query(_record(Q1))
        assert await a.take_lease(Q1, 0.5)
        assert not await b.take_lease(Q1, 30)
        assert await a.take_lease(Q1, 0.5)  # its holder may take it again (renew)
        assert await a.renew_lease(Q1, 0.5)
        assert not await b.renew_lease(Q1, 30)
        await asyncio.sleep(0.7)  # lapsed: the other replica takes over
        assert await b.take_lease(Q1, 30)
        assert not await a.renew_lease(Q1, 30)
        assert not await a.take_lease(Q1, 30)
        await b.drop_lease(Q1)
        assert await a.take_lease(Q1, 30)

    _two(pg_location, body)


def test_changes_are_announced_to_every_replica(pg_location: str) -> None:
    async def body(a: Store, b: Store) -> None:
        feed = b.changes().__aiter__()
        assert await asyncio.wait_for(anext(feed), 10) is None  # connected: re-read all
        await a.insert_query(_record(Q1))
        assert await asyncio.wait_for(anext(feed), 10) == Q1
        await a.close_query(Q1)
        assert await asyncio.wait_for(anext(feed), 10) == Q1
        await feed.aclose()  # type: ignore[attr-defined]

    _two(pg_location, body)


def test_replicas_starting_together_keep_one_seal_key_and_linkage_secret(
    pg_location: str,
) -> None:
    # Found by a black-box run: two helper replicas started at once on a fresh
    # database each stored their own seal key (last writer won), so one replica
    # served a key that was in no database and refused what holders sealed to it.
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from pets.server.helper.seal_key import load_or_create
    from pets.server.linkage_keys import load_secret

    def public(key: object) -> bytes:
        return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)  # type: ignore[attr-defined]

    async def body(a: Store, b: Store) -> None:
        for _ in range(5):
            keys = await asyncio.gather(load_or_create(a), load_or_create(b))
            assert public(keys[0]) == public(keys[1])
        secrets_ = await asyncio.gather(load_secret(a), load_secret(b), load_secret(a))
        assert secrets_[0] == secrets_[1] == secrets_[2]
        winners = await asyncio.gather(
            *(s.put_setting_if_absent("race", bytes([i])) for i, s in enumerate((a, b) * 4))
        )
        assert len(set(winners)) == 1

    _two(pg_location, body)


def test_sqlite_has_one_writer_one_shard_and_the_lease(tmp_path: Path) -> None:
    async def go() -> None:
        store = await connect_store(tmp_path / "pets.sqlite")
        try:
            assert await store.replica() is None
            await store.insert_query(_record(Q1))
            assert (
                await store.commit_contributions(
                    [_contribution(Q1, "b"), _contribution(Q1, "a")], {Q1: b"S"}
                )
                == {}
            )
            assert await store.own_shard(Q1) == (b"S", 2)
            assert await store.shards(Q1) == [(b"S", 2)]
            assert await store.take_lease(Q1, 1) and await store.renew_lease(Q1, 1)
            closed = await store.close_query(Q1)
            assert closed is not None and closed.contributors == ("a", "b")
            assert [c async for c in store.changes()] == []
            await store.finish_query(closed.with_state(READY), None)
            with pytest.raises(AlreadyFinishedError):
                await store.finish_query(closed.with_state(READY), b"again")
            assert await store.get_aggregate(Q1) == b"S"
            assert (await store.load_query(Q1)).state == READY  # type: ignore[union-attr]
        finally:
            await store.close()

    asyncio.run(go())


def test_merging_shards_equals_one_aggregate() -> None:
    """Additive shards merge to the sum mod 2^64 of every contribution."""
    rng = np.random.default_rng(7)
    vectors = [rng.integers(0, 2**64, 5, dtype=np.uint64) for _ in range(6)]
    whole, left, right = (AdditiveAggregate(5) for _ in range(3))
    for i, v in enumerate(vectors):
        whole.add([v])
        (left if i % 2 else right).add([v])
    restored = AdditiveAggregate(5, bytes(left.to_bytes()), count=left.count)
    restored.merge(right)
    assert bytes(restored.to_bytes()) == bytes(whole.to_bytes())
    assert restored.count == whole.count == 6


def test_paillier_shards_merge_to_the_product() -> None:
    """Paillier shards merge by multiplying ciphertexts mod n^2: the merged shard
    decrypts to the sum of every contribution, counts added."""
    from pets.paillier import Accumulator, generate_keypair, raw_decrypt, raw_encrypt

    public, private = generate_keypair(512, allow_insecure_test_size=True)
    values = [[3, 5], [7, 11], [13, 17]]
    left, right = Accumulator(public, 2), Accumulator(public, 2)
    for i, v in enumerate(values):
        (left if i == 0 else right).add(
            [raw_encrypt(public, x, 2 + 7 * i + j) for j, x in enumerate(v)]
        )
    left.merge(right)
    assert left.contributors == 3
    assert [raw_decrypt(private, c) for c in left.ciphertexts()] == [23, 33]


def test_prio3_shards_merge_in_the_field() -> None:
    """Prio3 aggregate shares merge by element-wise addition in Field128."""
    from pets.protocols.prio3 import Prio3Aggregate, _vdaf

    vdaf = _vdaf((1, 1, 1))
    p = vdaf.field.MODULUS
    a_total, b_total = [p - 1, 5, 0], [2, p - 5, 9]
    a = Prio3Aggregate(vdaf, vdaf.encode_agg_share(a_total), count=2, max_contributions=10)
    b = Prio3Aggregate(vdaf, vdaf.encode_agg_share(b_total), count=3, max_contributions=10)
    a.merge(b)
    assert a.count == 5
    assert vdaf.decode_agg_share(a.to_bytes(), "aggregate") == [1, 0, 9]


def test_replica_config_needs_a_postgresql_state(tmp_path: Path) -> None:
    from pets.errors import ConfigError
    from pets.server.config import parse_config

    base = {"role": "helper", "name": "helper-1", "listen": "127.0.0.1:0"}
    url = "postgresql:///pets_helper"
    cfg = parse_config(
        {**base, "state": url, "replica": "helper-1-b", "limits": {"finalise_lease_seconds": 2}},
        tmp_path,
        insecure=True,
    )
    assert (cfg.replica, cfg.limits.finalise_lease_seconds) == ("helper-1-b", 2)
    assert parse_config({**base, "state": url}, tmp_path, insecure=True).replica == ""
    with pytest.raises(ConfigError, match="PostgreSQL"):
        parse_config({**base, "replica": "b"}, tmp_path, insecure=True)
    with pytest.raises(ConfigError, match="replica"):
        parse_config({**base, "state": url, "replica": "no spaces"}, tmp_path, insecure=True)
