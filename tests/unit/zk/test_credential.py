"""Credentials: issuance, presentations, verification failures, nonces, encodings."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from pets.errors import CredentialError, InvalidInputError, InvalidProofError
from pets.v1 import credential_pb2 as pb
from pets.zk import proto, serialization
from pets.zk.credential import (
    IssuerKey,
    NonceRegistry,
    Presentation,
    create_presentation,
    holder_keygen,
    issue_to_holder,
    verify_presentation,
)
from pets.zk.group import get_group
from pets.zk.policy import check_policy
from tests.unit.zk.helpers import rng

NOW = 1_700_000_000.0
ATTRS = {"age": 42, "accreditation": 3, "purpose": "research", "name": "Ada"}


class Clock:
    def __init__(self) -> None:
        self.t = NOW

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def issuer() -> IssuerKey:
    return IssuerKey.from_bytes(bytes(range(32)))


@pytest.fixture(scope="module")
def holder(issuer: IssuerKey):
    secret, _ = holder_keygen(rng=rng("holder"))
    return issue_to_holder(
        issuer,
        "researcher/v1",
        secret,
        ATTRS,
        int(NOW) + 3600,
        max_values={"age": 150, "accreditation": 10},
        rng=rng("issue"),
    )


def _present(holder, nonce: bytes, preds=("age >= 18",), context: str = "query-1") -> Presentation:
    return create_presentation(holder, list(preds), nonce=nonce, context=context, rng=rng("p"))


def _verify(p: Presentation, issuer: IssuerKey, registry: NonceRegistry, **kw):
    args = {
        "trusted_issuers": [issuer.public_key],
        "context": "query-1",
        "now": NOW,
        "nonces": registry,
    }
    args.update(kw)
    return verify_presentation(p, **args)


def test_presentation_round_trip_reveals_only_predicates(issuer, holder) -> None:
    registry = NonceRegistry(Clock())
    preds = [
        "age >= 18",
        "accreditation >= 2",
        "purpose in {public-health, research}",
        "reveal name",
    ]
    p = _present(holder, registry.issue(), preds)
    v = _verify(p, issuer, registry)
    assert v.predicate_strings == preds and v.revealed == {"name": "Ada"}
    assert v.schema_id == "researcher/v1"
    doc = serialization.presentation_to_dict(p)
    assert doc["revealed"] == {"name": "Ada"}
    assert [item["predicate"] for item in doc["predicates"]] == preds
    assert check_policy(
        "accreditation >= 2 and purpose in {public-health, research}",
        v.predicates,
        max_values=v.max_values,
    ) == ["accreditation >= 2", "purpose in {public-health, research}"]


def test_replayed_presentation_is_rejected(issuer, holder) -> None:
    registry = NonceRegistry(Clock())
    p = _present(holder, registry.issue())
    _verify(p, issuer, registry)
    with pytest.raises(CredentialError, match="nonce"):
        _verify(p, issuer, registry)
    with pytest.raises(CredentialError, match="nonce"):
        _verify(_present(holder, b"\x01" * 32), issuer, registry)


def test_nonce_expires_after_ttl(issuer, holder) -> None:
    clock = Clock()
    registry = NonceRegistry(clock, ttl=60)
    p = _present(holder, registry.issue())
    clock.t += 61
    with pytest.raises(CredentialError):
        _verify(p, issuer, registry, now=clock.t)
    assert len(registry) == 0


def test_nonce_registry_capacity_and_threads() -> None:
    registry = NonceRegistry(Clock(), capacity=10)
    nonces = [registry.issue() for _ in range(15)]
    assert len(registry) == 10
    with pytest.raises(CredentialError):
        registry.consume(nonces[0])
    registry.consume(nonces[-1])
    results: list[bool] = []

    def worker(n: bytes) -> None:
        try:
            registry.consume(n)
            results.append(True)
        except CredentialError:
            results.append(False)

    threads = [threading.Thread(target=worker, args=(nonces[-2],)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1
    with pytest.raises(InvalidInputError):
        NonceRegistry(Clock(), ttl=0)


def test_expired_credential_rejected(issuer, holder) -> None:
    registry = NonceRegistry(Clock())
    p = _present(holder, registry.issue())
    with pytest.raises(CredentialError, match="expired"):
        _verify(p, issuer, registry, now=NOW + 3600)


def test_wrongly_signed_or_untrusted_credential_rejected(issuer, holder) -> None:
    registry = NonceRegistry(Clock())
    p = _present(holder, registry.issue())
    cred = p.credential
    other = IssuerKey.from_bytes(bytes(32))
    with pytest.raises(CredentialError, match="not trusted"):
        _verify(p, issuer, registry, trusted_issuers=[other.public_key])
    tampered = [
        dataclasses.replace(cred, signature=bytes([cred.signature[0] ^ 1]) + cred.signature[1:]),
        dataclasses.replace(cred, schema_id="admin/v1"),
        dataclasses.replace(cred, expires_at=cred.expires_at + 10**6),
        dataclasses.replace(cred, attributes=cred.attributes[::-1]),
        dataclasses.replace(
            cred,
            attributes=(dataclasses.replace(cred.attributes[0], max_value=5), *cred.attributes[1:]),
        ),
    ]
    for bad in tampered:
        with pytest.raises(CredentialError, match="signature"):
            _verify(dataclasses.replace(p, credential=bad), issuer, registry)


def test_context_and_expected_nonce(issuer, holder) -> None:
    nonce = b"\x07" * 32
    p = _present(holder, nonce)
    kw = {"nonces": None}
    verify_presentation(
        p, trusted_issuers=[issuer.public_key], context="query-1", now=NOW, expected_nonce=nonce
    )
    with pytest.raises(CredentialError, match="context"):
        verify_presentation(
            p, trusted_issuers=[issuer.public_key], context="query-2", now=NOW, expected_nonce=nonce
        )
    with pytest.raises(CredentialError, match="nonce"):
        verify_presentation(
            p,
            trusted_issuers=[issuer.public_key],
            context="query-1",
            now=NOW,
            expected_nonce=b"\x08" * 32,
        )
    with pytest.raises(InvalidInputError):
        verify_presentation(
            p, trusted_issuers=[issuer.public_key], context="query-1", now=NOW, **kw
        )


def test_tampered_presentation_fails_with_clear_message(issuer, holder) -> None:
    nonce = b"\x05" * 32
    p = _present(holder, nonce, ["age >= 18", "purpose in {research}", "reveal name"])

    def check(bad: Presentation, match: str) -> None:
        with pytest.raises(InvalidProofError, match=match):
            verify_presentation(
                bad,
                trusted_issuers=[issuer.public_key],
                context="query-1",
                now=NOW,
                expected_nonce=nonce,
            )

    from pets.zk.policy import parse_predicate

    weaker = (parse_predicate("age >= 17"), *p.predicates[1:])
    check(dataclasses.replace(p, predicates=weaker), "predicate 'age >= 17' does not verify")
    swapped = (p.predicates[0], parse_predicate("purpose in {admin}"), p.predicates[2])
    check(dataclasses.replace(p, predicates=swapped), "purpose in {admin}")
    check(dataclasses.replace(p, revealed={"name": "Eve"}), "reveal name")
    check(dataclasses.replace(p, revealed={}), "revealed")
    check(dataclasses.replace(p, proofs=p.proofs[:2]), "one proof per predicate")
    holder_proof = bytes([p.holder_proof[0] ^ 1]) + p.holder_proof[1:]
    check(dataclasses.replace(p, holder_proof=holder_proof), "holder")
    for i, proof in enumerate(p.proofs):
        for j in range(0, len(proof), 97):
            bad = bytearray(proof)
            bad[j] ^= 1
            proofs = (*p.proofs[:i], bytes(bad), *p.proofs[i + 1 :])
            check(dataclasses.replace(p, proofs=proofs), f"'{p.predicates[i]}' does not verify")


def test_presentation_from_another_nonce_cannot_be_rebound(issuer, holder) -> None:
    p = _present(holder, b"\x01" * 32)
    rebound = dataclasses.replace(p, nonce=b"\x02" * 32)
    with pytest.raises(InvalidProofError):
        verify_presentation(
            rebound,
            trusted_issuers=[issuer.public_key],
            context="query-1",
            now=NOW,
            expected_nonce=b"\x02" * 32,
        )


def test_unsatisfiable_or_mistyped_predicates_refused_by_holder(holder) -> None:
    for pred in (
        "age >= 43",
        "age <= 41",
        "purpose in {admin}",
        "purpose >= 3",
        "age == research",
        "missing >= 1",
        "age >= 151",
    ):
        with pytest.raises(InvalidInputError):
            _present(holder, b"\x00" * 32, [pred])


def test_all_predicate_kinds(issuer, holder) -> None:
    nonce = b"\x09" * 32
    preds = [
        "age in [40, 50]",
        "age <= 42",
        "age == 42",
        "age in {1, 42}",
        "name == Ada",
        "reveal age",
        "accreditation > 2",
    ]
    p = _present(holder, nonce, preds)
    v = verify_presentation(
        p, trusted_issuers=[issuer.public_key], context="query-1", now=NOW, expected_nonce=nonce
    )
    assert v.revealed == {"age": 42}
    assert v.predicate_strings[-1] == "accreditation >= 3"


def test_json_and_proto_round_trips(issuer, holder) -> None:
    p = _present(holder, b"\x03" * 32, ["age >= 18", "reveal name", "reveal age"])
    doc = serialization.loads(serialization.dumps(serialization.presentation_to_dict(p)))
    assert serialization.presentation_from_dict(doc) == p
    msg = pb.Presentation.FromString(proto.presentation_to_proto(p).SerializeToString())
    assert proto.presentation_from_proto(msg) == p
    assert proto.credential_from_proto(proto.credential_to_proto(p.credential)) == p.credential
    wallet = serialization.wallet_from_dict(
        serialization.loads(serialization.dumps(serialization.wallet_to_dict(holder)))
    )
    assert wallet.credential == holder.credential and wallet.openings == holder.openings
    key_doc = serialization.issuer_key_to_dict(issuer)
    assert serialization.issuer_key_from_dict(key_doc).public_key == issuer.public_key
    assert (
        serialization.issuer_public_from_dict(
            serialization.issuer_public_to_dict(issuer.public_key)
        )
        == issuer.public_key
    )


def test_malformed_presentation_documents_raise_invalid_proof(holder) -> None:
    p = _present(holder, b"\x03" * 32)
    good = serialization.presentation_to_dict(p)
    bads = [
        {**good, "type": "other"},
        {**good, "nonce": "zz"},
        {**good, "predicates": [{"predicate": "age >=", "proof": "00"}]},
        {**good, "credential": {**good["credential"], "holder_public_key": "04" + "00" * 32}},
        {**good, "revealed": {"x": [1]}},
        [],
    ]
    for bad in bads:
        with pytest.raises(InvalidProofError):
            serialization.presentation_from_dict(bad)
    with pytest.raises(InvalidInputError):
        serialization.loads("{not json")
    msg = proto.presentation_to_proto(p)
    msg.credential.holder_public_key = b"\x05" + bytes(32)
    with pytest.raises(InvalidProofError):
        proto.presentation_from_proto(msg)


def test_issuer_input_validation(issuer) -> None:
    _, pub = holder_keygen()
    with pytest.raises(InvalidInputError):
        issuer.issue("s", pub, {}, 10)
    with pytest.raises(InvalidInputError):
        issuer.issue("s", pub, {"age": 200}, 10, max_values={"age": 150})
    with pytest.raises(InvalidInputError):
        issuer.issue("s", pub, {"age": -1}, 10)
    with pytest.raises(InvalidInputError):
        issuer.issue("s", pub, {"age": 1}, 10, max_values={"name": 3})
    with pytest.raises(InvalidInputError):
        issuer.issue("s", get_group().identity, {"age": 1}, 10)
    with pytest.raises(InvalidInputError):
        IssuerKey.from_bytes(b"short")


def test_presentation_on_reference_backend(issuer) -> None:
    group = get_group("py_ecc")
    secret, _ = holder_keygen(group, rng("h"))
    holder = issue_to_holder(
        issuer,
        "s/v1",
        secret,
        {"age": 20, "purpose": "research"},
        int(NOW) + 10,
        group=group,
        max_values={"age": 31},
        rng=rng("i"),
    )
    nonce = b"\x04" * 32
    p = create_presentation(
        holder, ["age >= 18", "purpose in {research, x}"], nonce=nonce, context="c", rng=rng("p")
    )
    v = verify_presentation(
        p, trusted_issuers=[issuer.public_key], context="c", now=NOW, expected_nonce=nonce
    )
    assert v.predicate_strings == ["age >= 18", "purpose in {research, x}"]
