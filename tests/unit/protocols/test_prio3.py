"""The prio3 protocol's halves in one process: honest holders verify and sum exactly;
each dishonest deviation is refused naming the failed check; the nonce is fixed by
query, holder and attempt."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric import x25519

from pets import seal
from pets.errors import InvalidInputError, PetsError
from pets.protocols import by_name
from pets.protocols.base import HelperQueryContext, PrepareContext
from pets.protocols.prio3 import (
    Prio3Checker,
    Prio3Protocol,
    Tamper,
    report_nonce,
    slot_offsets,
)
from pets.query import Query, Schema
from pets.query import compile as compile_query
from pets.v1 import aggregation_pb2 as pb
from pets.vdaf.prio3 import NONCE_SIZE

SCHEMA = Schema.from_toml(
    '[datasets.t]\nkind = "table"\nmax_rows = 20\n'
    '[[datasets.t.columns]]\nname = "x"\ntype = "int"\nlo = -5\nhi = 30\nscale = 1\n'
    '[[datasets.t.columns]]\nname = "g"\ntype = "category"\ndomain = ["a", "b"]\n'
)
QID = "q-00000000000000ab"
HELPER = "helper-1"
SEAL_KEY = x25519.X25519PrivateKey.from_private_bytes(bytes([7]) * 32)
VERIFY_KEY = bytes(range(32))


def plan_for(text: str):  # type: ignore[no-untyped-def]
    return compile_query(Query.from_json(text), SCHEMA)


MEAN = plan_for('{"aggregate":"mean","column":"x","dataset":"t","group_by":["g"]}')


def sealer(holder: str) -> Callable[[pb.QueryAnnouncement, Sequence[bytes]], list[pb.SealedSeed]]:
    def seal_seeds(ann: pb.QueryAnnouncement, seeds: Sequence[bytes]) -> list[pb.SealedSeed]:
        ctx = seal.SeedContext(ann.query_id, bytes(ann.fingerprint), holder, HELPER)
        return [
            pb.SealedSeed(helper=HELPER, sealed=seal.seal(seeds[0], SEAL_KEY.public_key(), ctx))
        ]

    return seal_seeds


def run_query(plan, vectors: dict[str, np.ndarray], tampers: dict[str, Tamper]):  # type: ignore[no-untyped-def]
    """Holders -> leader (validate, Prepare message) -> helper (check) -> verdicts ->
    commit -> finalise -> analyst; returns (total, {holder: error})."""
    honest = by_name("prio3")
    spec = pb.QuerySpec(protocol=pb.PROTOCOL_PRIO3)
    length = honest.admit(spec, plan, 1)
    ann = pb.QueryAnnouncement(
        query_id=QID,
        spec=spec,
        vector_length=length,
        helpers=[HELPER],
        fingerprint=plan.fingerprint(),
    )
    aggregate = honest.running_aggregate(spec, length, plan)
    checker = honest.helper_checker(
        HelperQueryContext(
            query_id=QID,
            fingerprint=plan.fingerprint(),
            vector_length=length,
            created=0.0,
            deadline=4e9,
            helper=HELPER,
            seal_key=SEAL_KEY,
            ca_pem=None,
            insecure=True,
        )
    )
    _, bounds = slot_offsets(plan)
    checker = honest.keyed_checker(checker, VERIFY_KEY, 1, bounds)
    assert isinstance(checker, Prio3Checker)
    context = PrepareContext(QID, plan.fingerprint(), VERIFY_KEY)
    parsed, records, errors = {}, {}, {}
    for holder, vec in vectors.items():
        protocol = Prio3Protocol(tampers[holder]) if holder in tampers else honest
        c = asyncio.run(
            protocol.contribute(ann, plan, vec, holder=holder, seed_key=None, sealer=sealer(holder))
        )
        try:
            header = pb.ContributionHeader(sealed_seeds=c.sealed_seeds)
            seeds = honest.check_header(header, [HELPER])
            parsed[holder] = aggregate.validate(bytes(c.payload))
            records[holder] = honest.prepare_message(
                holder, b"", seeds, parsed[holder], context=context
            )
        except PetsError as exc:
            errors[holder] = exc
    items = list(records.values())
    accepted, refused = checker.check(items, {})
    answer = pb.PrepareResponse(
        query_id=QID,
        refused=[pb.Refusal(holder=h, reason=r) for h, r in refused],
        accepted=len(items) - len(refused),
        verifier_shares=[
            pb.VerifierShare(holder=h, share=s) for h, s in checker.verifier_shares.items()
        ],
    )
    errors.update(
        honest.prepare_verdicts(
            QID, list(records), {HELPER: answer}, parsed=parsed, records=records
        )
    )
    kept = [h for h in records if h not in errors]
    for h in kept:
        aggregate.add(parsed[h])
    helper_share = checker.finalise([records[h] for h in kept], accepted)
    status = pb.QueryStatus(query_id=QID, spec=spec, vector_length=length, helpers=[HELPER])
    combiner = honest.combiner(status, plan, None)
    headers = []
    for server, data in (("leader", aggregate.to_bytes()), (HELPER, helper_share)):
        header = pb.AggregateHeader(server=server, contributors=len(kept))
        combiner.sink(server, header)(data)
        headers.append(header)
    return combiner.total(headers), errors


def holder_vector(plan, rows: list[tuple[str, int]]) -> np.ndarray:  # type: ignore[no-untyped-def]
    """count, sum, sum_sq per group (the plan's layout) for a few rows."""
    vec = np.zeros(plan.length, dtype=np.int64)
    labels = plan.slot_labels
    for g, x in rows:
        for i, label in enumerate(labels):
            if label.startswith(f"g={g}:"):
                f = label.split(":", 1)[1]
                vec[i] += {"count": 1}.get(f, x if f.startswith("sum(") else x * x)
    return vec


def test_honest_holders_sum_exactly_and_a_dishonest_one_is_refused() -> None:
    fields = [f.label for f in MEAN.fields]
    assert fields[0] == "count"
    vectors = {
        "h1": holder_vector(MEAN, [("a", -5), ("b", 30), ("a", 7)]),
        "h2": holder_vector(MEAN, [("b", 3)]),
        "bad": holder_vector(MEAN, [("a", 1)]),
    }

    def over_bound(encoded: list[int]) -> list[int]:
        return [1000, *encoded[1:]]

    total, errors = run_query(MEAN, vectors, {"bad": Tamper(encoded=over_bound)})
    assert set(errors) == {"bad"}
    assert "proof verifier check failed" in str(errors["bad"])
    assert list(total) == list(vectors["h1"] + vectors["h2"])


@pytest.mark.parametrize(
    "tamper",
    [
        Tamper(payload=lambda p: p[:-40] + bytes([p[-40] ^ 1]) + p[-39:]),  # proof share
        Tamper(payload=lambda p: bytes([p[0] ^ 1]) + p[1:]),  # a joint-randomness part
        Tamper(payload=lambda p: p[: 32 * 2] + bytes([p[64] ^ 4]) + p[65:]),  # meas share
        Tamper(
            sealed=lambda s: [
                pb.SealedSeed(
                    helper=s[0].helper,
                    sealed=bytes([s[0].sealed[40] ^ 1]).join([s[0].sealed[:40], s[0].sealed[41:]]),
                )
            ]
        ),
    ],
    ids=["proof-share", "joint-rand-part", "meas-share", "sealed-share-bit"],
)
def test_each_tampering_is_refused_and_honest_holders_still_count(tamper: Tamper) -> None:
    vectors = {"h1": holder_vector(MEAN, [("a", 4)]), "bad": holder_vector(MEAN, [("b", 2)])}
    total, errors = run_query(MEAN, vectors, {"bad": tamper})
    assert set(errors) == {"bad"}
    assert list(total) == list(vectors["h1"])


def test_wrong_length_payload_is_refused_at_validation() -> None:
    vectors = {"h1": holder_vector(MEAN, [("a", 4)]), "bad": holder_vector(MEAN, [("b", 2)])}
    total, errors = run_query(MEAN, vectors, {"bad": Tamper(payload=lambda p: p + bytes(16))})
    assert isinstance(errors["bad"], InvalidInputError)
    assert list(total) == list(vectors["h1"])


def test_every_query_type_compiles_and_sums() -> None:
    for text in (
        '{"aggregate":"count","dataset":"t"}',
        '{"aggregate":"sum","column":"x","dataset":"t"}',
        '{"aggregate":"variance","column":"x","dataset":"t","group_by":["g"]}',
        '{"aggregate":"histogram","column":"x","dataset":"t","bins":[0,10,20]}',
    ):
        plan = plan_for(text)
        lo_hi = plan.slot_bounds()
        rng = np.random.default_rng(1)
        vectors = {
            f"h{i}": np.array([rng.integers(lo, hi + 1) for lo, hi in lo_hi], dtype=np.int64)
            for i in range(3)
        }
        total, errors = run_query(plan, vectors, {})
        assert not errors, text
        assert list(total) == list(sum(vectors.values())), text


def test_vector_sums_with_negative_bounds_sum_exactly() -> None:
    schema = Schema.from_toml('[datasets.v]\nkind = "vector"\nlength = 6\nlo = -50\nhi = 50\n')
    plan = compile_query(Query.from_json('{"aggregate":"vector_sum","dataset":"v"}'), schema)
    vectors = {
        "h1": np.array([-50, 50, 0, 1, -1, 7], dtype=np.int64),
        "h2": np.array([-50, -50, 49, 3, 2, -7], dtype=np.int64),
    }
    total, errors = run_query(plan, vectors, {})
    assert not errors
    assert list(total) == list(vectors["h1"] + vectors["h2"])


def test_an_out_of_bounds_vector_is_refused_by_an_honest_holder() -> None:
    """The honest client never proves a value outside its slot's bound."""
    with pytest.raises(InvalidInputError, match="slot 0"):
        run_query(MEAN, {"h1": np.full(MEAN.length, 10**9, dtype=np.int64)}, {})


def test_the_nonce_is_fixed_by_query_holder_and_attempt() -> None:
    n = report_nonce(QID, "h1")
    assert len(n) == NONCE_SIZE and n == report_nonce(QID, "h1", 0)
    assert (
        len({n, report_nonce(QID, "h2"), report_nonce("q-1", "h1"), report_nonce(QID, "h1", 1)})
        == 4
    )


def test_a_report_replayed_under_another_holder_name_is_refused() -> None:
    """A captured report re-sent as another holder: its sealed key is bound to its
    holder, and its nonce differs."""
    honest = by_name("prio3")
    vectors = {"h1": holder_vector(MEAN, [("a", 4)]), "thief": holder_vector(MEAN, [("a", 4)])}
    stolen: dict[str, object] = {}

    def keep(p: bytes) -> bytes:
        stolen["payload"] = p
        return p

    # h1's report is what the thief replays (its own shares and the thief's name).
    spec = pb.QuerySpec(protocol=pb.PROTOCOL_PRIO3)
    ann = pb.QueryAnnouncement(
        query_id=QID,
        spec=spec,
        vector_length=MEAN.length,
        helpers=[HELPER],
        fingerprint=MEAN.fingerprint(),
    )
    original = asyncio.run(
        Prio3Protocol(Tamper(payload=keep)).contribute(
            ann, MEAN, vectors["h1"], holder="h1", seed_key=None, sealer=sealer("h1")
        )
    )
    total, errors = run_query(
        MEAN,
        vectors,
        {
            "thief": Tamper(
                payload=lambda p: bytes(original.payload),
                sealed=lambda s: list(original.sealed_seeds),
            )
        },
    )
    assert set(errors) == {"thief"}
    assert list(total) == list(vectors["h1"])
    assert honest.name == "prio3"
