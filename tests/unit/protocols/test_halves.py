"""Each protocol's four halves, run in this process without a network: what the
holders make, the leader accumulates (and restores), the helpers finalise and the
analyst combines is the sum of the holders' vectors. Also: Prepare verdicts."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Sequence

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric import x25519
from hypothesis import given, settings
from hypothesis import strategies as st

from pets import encoding, seal
from pets.errors import InvalidInputError, InvalidProofError, NotReadyError, UnavailableError
from pets.paillier import Accumulator, generate_keypair, public_key_to_bytes
from pets.protocols import AggregationProtocol, by_name
from pets.protocols.base import HelperQueryContext, SeedSealer
from pets.protocols.paillier import PaillierAggregate
from pets.query import Query, Schema
from pets.query import compile as compile_query
from pets.transport import wire
from pets.v1 import aggregation_pb2 as pb

SCHEMA = Schema.from_toml('[datasets.v]\nkind = "vector"\nlength = 5\nlo = -50\nhi = 50\n')
PLAN = compile_query(Query.from_json('{"aggregate":"vector_sum","dataset":"v"}'), SCHEMA)
HELPERS = ("helper-1", "helper-2")
QID = "q-00000000000000ee"
SEAL_KEYS = {
    h: x25519.X25519PrivateKey.from_private_bytes(bytes([i + 1]) * 32)
    for i, h in enumerate(HELPERS)
}


def _status(protocol: AggregationProtocol, spec: pb.QuerySpec, length: int) -> pb.QueryStatus:
    return pb.QueryStatus(
        query_id=QID,
        state=pb.QUERY_STATE_READY,
        spec=spec,
        vector_length=length,
        helpers=list(HELPERS) if protocol.uses_helpers else [],
    )


def _sealer(holder: str) -> SeedSealer:
    """The holder client's sealer, insecure mode (sealed to each helper, not signed)."""

    def seal_seeds(ann: pb.QueryAnnouncement, seeds: Sequence[bytes]) -> list[pb.SealedSeed]:
        return [
            pb.SealedSeed(
                helper=h,
                sealed=seal.seal(
                    s,
                    SEAL_KEYS[h].public_key(),
                    seal.SeedContext(ann.query_id, bytes(ann.fingerprint), holder, h),
                ),
            )
            for h, s in zip(ann.helpers, seeds, strict=True)
        ]

    return seal_seeds


async def _round(
    protocol: AggregationProtocol,
    spec: pb.QuerySpec,
    vectors: list[np.ndarray],
    private_key: object = None,
) -> np.ndarray | list[int]:
    length = protocol.admit(spec, PLAN, 1)
    ann = pb.QueryAnnouncement(
        query_id=QID,
        spec=spec,
        vector_length=length,
        helpers=list(HELPERS) if protocol.uses_helpers else [],
        fingerprint=PLAN.fingerprint(),
        deadline_unix=time.time() + 60,
    )
    aggregate = protocol.running_aggregate(spec, length, PLAN)
    relayed: list[pb.SealedContribution] = []
    for i, vector in enumerate(vectors):
        holder = f"h{i}"
        made = await protocol.contribute(
            ann, PLAN, vector, holder=holder, seed_key=bytes([i]) * 32, sealer=_sealer(holder)
        )
        header = pb.ContributionHeader(
            query_id=QID,
            payload_bytes=len(made.payload),
            contribution_digest=made.digest,
            sealed_seeds=made.sealed_seeds,
        )
        seeds = protocol.check_header(header, list(ann.helpers))
        sink = protocol.payload_sink(aggregate.payload_bytes)
        for chunk in wire.chunks(made.payload, 7):  # odd chunk sizes on purpose
            sink.add(bytes(chunk))
        aggregate.add(aggregate.validate(sink.finish()))
        if seeds is not None:
            relayed.append(protocol.prepare_message(holder, b"", seeds, None))
        # The leader restarts after every commit: it resumes from its durable copy.
        aggregate = protocol.running_aggregate(
            spec, length, PLAN, bytes(aggregate.to_bytes()), count=aggregate.count
        )
    shares = {"leader": bytes(aggregate.to_bytes())}
    for helper in HELPERS if protocol.uses_helpers else ():
        checker = protocol.helper_checker(
            HelperQueryContext(
                query_id=QID,
                fingerprint=PLAN.fingerprint(),
                vector_length=length,
                created=time.time() - 1,
                deadline=time.time() + 60,
                helper=helper,
                seal_key=SEAL_KEYS[helper],
                ca_pem=None,
                insecure=True,
            )
        )
        mine = [
            pb.SealedContribution(holder=r.holder, seeds=[s for s in r.seeds if s.helper == helper])
            for r in relayed
        ]
        accepted, refused = checker.check(mine[:1])  # Prepare saw the first one only
        assert refused == []
        shares[helper] = bytes(checker.finalise(mine, accepted))
    status = _status(protocol, spec, length)
    combiner = protocol.combiner(status, PLAN, private_key)
    headers = []
    for server in protocol.share_servers(status):
        assert len(shares[server]) == protocol.share_bytes(status)
        header = pb.AggregateHeader(
            contributors=len(vectors),
            payload_bytes=len(shares[server]),
        )
        take = combiner.sink(server, header)
        for chunk in wire.chunks(shares[server], 13):
            take(chunk)
        headers.append(header)
    return combiner.total(headers)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.lists(st.integers(-50, 50), min_size=5, max_size=5), min_size=1, max_size=4))
def test_additive_halves_add_up(rows: list[list[int]]) -> None:
    vectors = [np.array(r, dtype=np.int64) * 100 for r in rows]  # fixed-point scaled
    total = asyncio.run(_round(by_name("additive"), pb.QuerySpec(), vectors))
    assert isinstance(total, np.ndarray)
    assert np.array_equal(encoding.from_ring(total), np.sum(vectors, axis=0))


@functools.cache
def _paillier_key() -> object:
    return generate_keypair(2048)[1]


def test_paillier_halves_add_up_and_the_leader_runs_the_one_accumulator() -> None:
    private = _paillier_key()
    spec = pb.QuerySpec(
        protocol=pb.PROTOCOL_PAILLIER,
        paillier_public_key=public_key_to_bytes(private.public_key),  # type: ignore[attr-defined]
        max_holders=4,
    )
    protocol = by_name("paillier")
    aggregate = protocol.running_aggregate(spec, protocol.admit(spec, PLAN, 1), PLAN)
    assert isinstance(aggregate, PaillierAggregate)
    assert isinstance(aggregate.accumulator, Accumulator)
    vectors = [np.array([1, -2, 3, 50, -50]) * 100, np.array([0, 7, -7, 1, 2]) * 100]
    total = asyncio.run(_round(protocol, spec, vectors, private))
    assert list(total) == np.sum(vectors, axis=0).tolist()


def test_a_restored_paillier_aggregate_keeps_its_cap_and_checks_its_bytes() -> None:
    private = _paillier_key()
    public = private.public_key  # type: ignore[attr-defined]
    spec = pb.QuerySpec(
        protocol=pb.PROTOCOL_PAILLIER,
        paillier_public_key=public_key_to_bytes(public),
        max_holders=2,
    )
    protocol = by_name("paillier")
    length = protocol.admit(spec, PLAN, 1)
    width = protocol.running_aggregate(spec, length, PLAN).payload_bytes
    full = protocol.running_aggregate(spec, length, PLAN, bytes(width - 1) + b"\x01", count=2)
    with pytest.raises(InvalidInputError, match="max_contributions=2"):
        full.add(full.validate(bytes(width - 1) + b"\x01"))
    with pytest.raises(InvalidInputError):  # zero is no ciphertext
        protocol.running_aggregate(spec, length, PLAN, bytes(width), count=1)
    with pytest.raises(InvalidInputError, match="positive contributor count"):
        protocol.running_aggregate(spec, length, PLAN, bytes(width - 1) + b"\x01", count=0)


# --------------------------------------------------------------------------- Prepare verdicts

HOLDERS = ["h1", "h2", "h3"]


def _verdicts(answers: dict[str, pb.PrepareResponse | BaseException]) -> dict[str, str]:
    errors = by_name("additive").prepare_verdicts(QID, HOLDERS, answers)
    return {h: f"{type(e).__name__}: {e}" for h, e in errors.items()}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sets(st.sampled_from(HOLDERS)), min_size=1, max_size=3))
def test_a_holder_is_kept_only_if_every_helper_accepts_it(refusals: list[set[str]]) -> None:
    answers: dict[str, pb.PrepareResponse | BaseException] = {
        f"helper-{i}": pb.PrepareResponse(
            query_id=QID,
            accepted=len(HOLDERS) - len(refused),
            refused=[pb.Refusal(holder=h, reason="no") for h in sorted(refused)],
        )
        for i, refused in enumerate(refusals)
    }
    errors = _verdicts(answers)
    assert set(errors) == set().union(*refusals)
    assert all(e.startswith(InvalidProofError.__name__) for e in errors.values())


def test_no_answer_or_a_partial_answer_is_no_acceptance() -> None:
    down = _verdicts({"helper-1": UnavailableError("down")})
    assert set(down) == set(HOLDERS) and "helper-1 could not check" in down["h1"]
    closing = _verdicts({"helper-1": NotReadyError("closing")})
    assert closing["h2"] == "NotReadyError: closing"
    partial = pb.PrepareResponse(query_id=QID, accepted=2)
    twice = pb.PrepareResponse(
        query_id=QID, accepted=1, refused=[pb.Refusal(holder="h1"), pb.Refusal(holder="h1")]
    )
    stranger = pb.PrepareResponse(query_id=QID, accepted=2, refused=[pb.Refusal(holder="h9")])
    for answer in (partial, twice, stranger):
        errors = _verdicts({"helper-1": answer})
        assert set(errors) == set(HOLDERS)
        assert all("gave no verdict" in e for e in errors.values())
