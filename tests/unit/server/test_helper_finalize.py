"""The helper opens exactly the sealed seeds it is given, and nothing it should refuse.

The servicer tests drive the real ``Helper`` and its SQLite store in this
process, with the ``--insecure`` identity header standing in for a client
certificate (the integration tests cover the same flows over mutual TLS).
The :class:`SeedOpener` tests use real certificates from a test CA.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from pets import seal, sharing
from pets.errors import InvalidInputError, InvalidProofError
from pets.identity import certificates as identity
from pets.identity.certificates import Role
from pets.protocols.additive import SeedOpener
from pets.server.config import Limits, ServerConfig
from pets.server.helper import Helper
from pets.server.store import QueryRecord, SqliteStore
from pets.transport import wire
from pets.v1 import aggregation_pb2 as pb
from tests.unit.server.servicer_fakes import Aborted, Context

LENGTH = 1_000_000
QID = "q-00000000000000aa"
FINGERPRINT = b"\x0f" * 32


async def _stream(messages: Iterable[pb.FinalizeMessage]) -> AsyncIterator[pb.FinalizeMessage]:
    for m in messages:
        yield m


def _finalize_messages(
    items: list[pb.SealedContribution], *, query_id: str = QID, announced: int | None = None
) -> list[pb.FinalizeMessage]:
    header = pb.FinalizeHeader(
        query_id=query_id, contributors=len(items) if announced is None else announced
    )
    return [pb.FinalizeMessage(header=header), pb.FinalizeMessage(contributions=items)]


async def _helper(tmp_path: Path) -> tuple[Helper, SqliteStore, x25519.X25519PublicKey]:
    config = ServerConfig(
        role="helper",
        name="helper-1",
        listen="127.0.0.1:0",
        state_dir=tmp_path,
        min_holders=1,
        tls=None,
        limits=Limits(max_vector_length=10**7),
    )
    store = SqliteStore(config.database)
    helper = Helper(config, store)
    await helper.start()
    response = await helper.RegisterQuery(
        pb.RegisterQueryRequest(
            query_id=QID,
            spec=pb.QuerySpec(query_json="{}", protocol=pb.PROTOCOL_ADDITIVE),
            analyst="alice",
            vector_length=LENGTH,
            deadline_unix=time.time() + 3600,
            min_holders=1,
            fingerprint=FINGERPRINT,
        ),
        Context("leader/leader"),
    )
    return helper, store, seal.load_public_key(response.seal_key.seal_public_key)


def _sealed_items(
    key: x25519.X25519PublicKey, holders: int
) -> tuple[list[pb.SealedContribution], list[bytes]]:
    items, seeds = [], []
    for i in range(holders):
        name = f"h{i:03d}"
        seed = os.urandom(32)
        ctx = seal.SeedContext(QID, FINGERPRINT, name, "helper-1")
        items.append(
            pb.SealedContribution(
                holder=name,
                seeds=[pb.SealedSeed(helper="helper-1", sealed=seal.seal(seed, key, ctx))],
            )
        )
        seeds.append(seed)
    return items, seeds


def test_the_helper_vouches_for_its_seal_key_across_restarts(tmp_path: Path) -> None:
    async def go() -> tuple[bytes, bytes]:
        helper, store, key = await _helper(tmp_path)
        await helper.stop()
        await store.close()
        again = SqliteStore(tmp_path / "pets.sqlite")
        restarted = Helper(helper.config, again)
        await restarted.start()
        info = await restarted.GetInfo(pb.HelperInfoRequest(), Context("leader/leader"))
        await again.close()
        return seal.public_bytes(key), bytes(info.seal_key.seal_public_key)

    first, second = asyncio.run(go())
    assert first == second and len(first) == 32


def test_cancelled_finalize_then_retries_give_the_right_share(tmp_path: Path) -> None:
    async def go() -> tuple[bool, int]:
        helper, store, key = await _helper(tmp_path)
        items, seeds = _sealed_items(key, 40)
        leader = Context("leader/leader")

        def call() -> asyncio.Future:
            return asyncio.ensure_future(
                helper.Finalize(_stream(_finalize_messages(items)), leader)
            )

        first = call()
        await asyncio.sleep(0.01)
        first.cancel()  # the leader's deadline passed: gRPC cancels the handler
        for _ in range(50):  # the leader retries with short deadlines
            attempt = call()
            try:
                await asyncio.wait_for(asyncio.shield(attempt), 0.05)
                break
            except TimeoutError:
                attempt.cancel()
        else:
            await call()
        got = wire.vector_from_bytes(await store.get_aggregate(QID), LENGTH)
        want = sharing.aggregate_seeds(seeds, LENGTH)
        state = helper.queries[QID].record.state
        await helper.stop()
        await store.close()
        return bool(np.array_equal(got, want)), state

    correct, state = asyncio.run(go())
    assert state == pb.QUERY_STATE_READY
    assert correct


@pytest.mark.parametrize(
    "mangle, error",
    [
        (lambda items: list(reversed(items)), "sorted and unique"),
        (lambda items: items[:1] + items[:1] + items[2:], "sorted and unique"),
        (lambda items: items[:-1], "announced 3 contributors, sent 2"),
        (lambda items: [*items, items[-1]], "more than the announced"),
    ],
)
def test_malformed_finalisation_is_refused_and_changes_nothing(
    tmp_path: Path, mangle: object, error: str
) -> None:
    async def go() -> tuple[str, int]:
        helper, store, key = await _helper(tmp_path)
        items, _ = _sealed_items(key, 3)
        messages = _finalize_messages(mangle(items), announced=3)  # type: ignore[operator]
        try:
            await helper.Finalize(_stream(messages), Context("leader/leader"))
            outcome = "accepted"
        except Aborted as exc:
            outcome = str(exc)
        state = helper.queries[QID].record.state
        await helper.stop()
        await store.close()
        return outcome, state

    outcome, state = asyncio.run(go())
    assert "INVALID_ARGUMENT" in outcome and error in outcome
    assert state == pb.QUERY_STATE_OPEN


def test_only_the_leader_finalises(tmp_path: Path) -> None:
    async def go() -> str:
        helper, store, key = await _helper(tmp_path)
        items, _ = _sealed_items(key, 2)
        try:
            await helper.Finalize(_stream(_finalize_messages(items)), Context("holder/h000"))
            outcome = "accepted"
        except Aborted as exc:
            outcome = str(exc)
        await helper.stop()
        await store.close()
        return outcome

    assert "PERMISSION_DENIED" in asyncio.run(go())


# --------------------------------------------------------------------------- with certificates


@pytest.fixture(scope="module")
def ca() -> identity.CA:
    return identity.create_ca("helper test CA")


@pytest.fixture(scope="module")
def holders(ca: identity.CA) -> dict[str, identity.Identity]:
    return {name: identity.issue(ca, Role.HOLDER, name) for name in ("h1", "h2", "h3")}


SMALL = 16
RECORD = QueryRecord(
    id=QID,
    analyst="alice",
    spec=b"",
    state=pb.QUERY_STATE_OPEN,
    created=time.time() - 60,
    deadline=time.time() + 3600,
    min_holders=1,
    vector_length=SMALL,
    fingerprint=FINGERPRINT,
)
SEAL_KEY = x25519.X25519PrivateKey.from_private_bytes(bytes(range(32)))


def _signed(
    who: identity.Identity,
    holder: str,
    seed: bytes,
    *,
    context: seal.SeedContext | None = None,
    helper: str = "helper-1",
) -> pb.SealedContribution:
    ctx = context or seal.SeedContext(QID, FINGERPRINT, holder, helper)
    sealed = seal.seal(seed, SEAL_KEY.public_key(), ctx)
    key = load_pem_private_key(who.key_pem, password=None)
    signature = seal.sign_sealed(ctx, sealed, key)  # type: ignore[arg-type]
    return pb.SealedContribution(
        holder=holder,
        certificate=who.cert_pem,
        seeds=[pb.SealedSeed(helper=helper, sealed=sealed, signature=signature)],
    )


def _opener(rec: QueryRecord, ca_pem: bytes) -> SeedOpener:
    """The helper's opener for ``rec``, as the helper builds it for an additive query."""
    return SeedOpener(
        rec.id,
        rec.fingerprint,
        rec.vector_length,
        rec.created,
        rec.deadline,
        "helper-1",
        SEAL_KEY,
        ca_pem,
    )


def _sum(ca: identity.CA, items: list[pb.SealedContribution]) -> np.ndarray:
    data = _opener(RECORD, ca.cert_pem).finalise(items)
    return wire.vector_from_bytes(data, SMALL)


def test_signed_seeds_of_real_holders_are_summed(
    ca: identity.CA, holders: dict[str, identity.Identity]
) -> None:
    seeds = [bytes([i]) * 32 for i in range(3)]
    items = [_signed(holders[n], n, s) for n, s in zip(("h1", "h2", "h3"), seeds, strict=True)]
    assert np.array_equal(_sum(ca, items), sharing.aggregate_seeds(seeds, SMALL))


def test_what_a_leader_could_forge_is_refused(
    ca: identity.CA, holders: dict[str, identity.Identity]
) -> None:
    seed = b"\x01" * 32
    leader = identity.issue(ca, Role.LEADER, "leader")
    other_ca = identity.create_ca("not the project CA")
    outsider = identity.issue(other_ca, Role.HOLDER, "h1")
    cases = {
        # The leader invents a holder with its own certificate.
        "leader as holder": _signed(leader, "h1", seed),
        # A holder certificate from another CA.
        "foreign CA": _signed(outsider, "h1", seed),
        # h1's signed seed passed off as h2's, with h2's certificate.
        "another holder's seed": pb.SealedContribution(
            holder="h2",
            certificate=holders["h2"].cert_pem,
            seeds=_signed(holders["h1"], "h1", seed).seeds,
        ),
        # h2's seed with h1's certificate: the certificate does not name h2.
        "certificate of another holder": pb.SealedContribution(
            holder="h2",
            certificate=holders["h1"].cert_pem,
            seeds=_signed(holders["h2"], "h2", seed).seeds,
        ),
        # A seed h1 sealed for another query, replayed.
        "replayed from another query": _signed(
            holders["h1"],
            "h1",
            seed,
            context=seal.SeedContext("q-00000000000000bb", FINGERPRINT, "h1", "helper-1"),
        ),
    }
    for name, item in cases.items():
        with pytest.raises(InvalidProofError):
            _sum(ca, [item])
            pytest.fail(name)


def test_seed_for_another_helper_or_tampered_is_refused(
    ca: identity.CA, holders: dict[str, identity.Identity]
) -> None:
    seed = b"\x02" * 32
    with pytest.raises(InvalidInputError, match="sealed to helper-1"):
        _sum(ca, [_signed(holders["h1"], "h1", seed, helper="helper-2")])
    item = _signed(holders["h1"], "h1", seed)
    tampered = bytearray(item.seeds[0].sealed)
    tampered[-1] ^= 1
    item.seeds[0].sealed = bytes(tampered)
    with pytest.raises(InvalidProofError, match="not signed"):
        _sum(ca, [item])


def test_one_certificate_never_stands_for_two_holders(
    ca: identity.CA, holders: dict[str, identity.Identity]
) -> None:
    """A leader colluding with h1 cannot list h1's signed seeds under other names."""
    seed = b"\x03" * 32
    genuine = _signed(holders["h1"], "h1", seed)
    # Signed by h1's key for the name "h2" (h1 helps the leader), with h1's certificate.
    ctx = seal.SeedContext(QID, FINGERPRINT, "h2", "helper-1")
    sealed = seal.seal(seed, SEAL_KEY.public_key(), ctx)
    key = load_pem_private_key(holders["h1"].key_pem, password=None)
    alias = pb.SealedContribution(
        holder="h2",
        certificate=holders["h1"].cert_pem,
        seeds=[
            pb.SealedSeed(
                helper="helper-1",
                sealed=sealed,
                signature=seal.sign_sealed(ctx, sealed, key),  # type: ignore[arg-type]
            )
        ],
    )
    with pytest.raises(InvalidProofError, match="names pets://holder/h1, not holder h2"):
        _sum(ca, [genuine, alias])


def test_prepare_names_what_it_refuses_and_keeps_what_it_accepts(
    ca: identity.CA, holders: dict[str, identity.Identity]
) -> None:
    good = _signed(holders["h1"], "h1", b"\x04" * 32)
    forged = _signed(holders["h2"], "h2", b"\x05" * 32)
    forged.seeds[0].sealed = bytes(seal.SEALED_BYTES)  # signature no longer matches
    opener = _opener(RECORD, ca.cert_pem)
    accepted, refused = opener.check([good, forged])
    assert set(accepted) == {"h1"} and accepted["h1"][1] == b"\x04" * 32
    assert [h for h, _ in refused] == ["h2"] and "not signed" in refused[0][1]
    # Finalize uses the accepted seed as is, and checks anything else.
    data = _opener(RECORD, ca.cert_pem).finalise([good], accepted)
    want = sharing.aggregate_seeds([b"\x04" * 32], SMALL)
    assert np.array_equal(wire.vector_from_bytes(bytes(data), SMALL), want)


def test_prepare_then_finalize_through_the_servicer(tmp_path: Path) -> None:
    """Prepare keeps accepted seeds; Finalize sums the fixed set; Prepare after it is refused."""

    async def go() -> tuple[list[str], bool, str]:
        helper, store, key = await _helper(tmp_path)
        items, seeds = _sealed_items(key, 4)
        bad = pb.SealedContribution(
            holder="h999",
            seeds=[pb.SealedSeed(helper="helper-1", sealed=bytes(seal.SEALED_BYTES))],
        )
        leader = Context("leader/leader")
        verdict = await helper.Prepare(_stream(_finalize_messages([*items, bad])), leader)
        refused = [r.holder for r in verdict.refused]
        assert set(helper.queries[QID].accepted) == {i.holder for i in items}
        # The final set leaves one prepared holder out: it must not be in the sum.
        await helper.Finalize(_stream(_finalize_messages(items[:3])), leader)
        got = wire.vector_from_bytes(await store.get_aggregate(QID), LENGTH)
        correct = bool(np.array_equal(got, sharing.aggregate_seeds(seeds[:3], LENGTH)))
        try:
            await helper.Prepare(_stream(_finalize_messages(items)), leader)
            late = "accepted"
        except Aborted as exc:
            late = str(exc)
        await helper.stop()
        await store.close()
        return refused, correct, late

    refused, correct, late = asyncio.run(go())
    assert refused == ["h999"]
    assert correct
    assert "FAILED_PRECONDITION" in late and "no longer accepting" in late


def test_a_certificate_that_expired_after_contributing_still_counts() -> None:
    """Prepare checks certificates now; Finalize (say, after a helper restart) accepts
    one that was valid while the query was open, even if it has expired since."""
    import dataclasses
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    ca = identity.create_ca("older CA", now=now - dt.timedelta(days=30))
    old = identity.issue(ca, Role.HOLDER, "h9", valid_days=2, now=now - dt.timedelta(days=3))
    rec = dataclasses.replace(
        RECORD,
        created=(now - dt.timedelta(days=2)).timestamp(),
        deadline=(now - dt.timedelta(hours=30)).timestamp(),
    )
    seed = b"\x09" * 32
    ctx = seal.SeedContext(QID, FINGERPRINT, "h9", "helper-1")
    sealed = seal.seal(seed, SEAL_KEY.public_key(), ctx)
    key = load_pem_private_key(old.key_pem, password=None)
    item = pb.SealedContribution(
        holder="h9",
        certificate=old.cert_pem,
        seeds=[
            pb.SealedSeed(
                helper="helper-1",
                sealed=sealed,
                signature=seal.sign_sealed(ctx, sealed, key),  # type: ignore[arg-type]
            )
        ],
    )
    _, refused = _opener(rec, ca.cert_pem).check([item])
    assert refused and "expired or not yet valid" in refused[0][1]
    data = _opener(rec, ca.cert_pem).finalise([item])
    assert np.array_equal(
        wire.vector_from_bytes(bytes(data), SMALL), sharing.aggregate_seeds([seed], SMALL)
    )
    # A query that closed before the certificate was valid does not take it.
    early = dataclasses.replace(
        rec,
        created=(now - dt.timedelta(days=10)).timestamp(),
        deadline=(now - dt.timedelta(days=9)).timestamp(),
    )
    with pytest.raises(InvalidProofError, match="expired or not yet valid"):
        _opener(early, ca.cert_pem).finalise([item])
