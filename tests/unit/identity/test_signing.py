"""Analysts sign Paillier queries; holders refuse keys nobody vouched for."""

from __future__ import annotations

import pytest

from pets.errors import InvalidProofError
from pets.identity import certificates as identity
from pets.identity.certificates import Role
from pets.identity.signing import sign_spec, verify_spec
from pets.v1 import aggregation_pb2 as pb


@pytest.fixture(scope="module")
def ca() -> identity.CA:
    return identity.create_ca("test CA")


def _signed(ca: identity.CA, role: Role = Role.ANALYST, name: str = "alice") -> pb.QuerySpec:
    who = identity.issue(ca, role, name)
    spec = pb.QuerySpec(
        query_json='{"aggregate":"count","dataset":"hospitals"}',
        protocol=pb.PROTOCOL_PAILLIER,
        min_holders=3,
        max_holders=50,
        paillier_public_key=b"\x01" * 256,
    )
    sign_spec(spec, who.cert_pem, who.key_pem)
    return spec


def test_a_signed_spec_verifies_and_names_its_analyst(ca: identity.CA) -> None:
    peer = verify_spec(_signed(ca), ca.cert_pem)
    assert (peer.role, peer.name) == (Role.ANALYST, "alice")


@pytest.mark.parametrize(
    "field, value",
    [
        ("query_json", '{"aggregate":"count","dataset":"supply_chain"}'),
        ("min_holders", 1),
        ("max_holders", 2),
        ("paillier_public_key", b"\x02" * 256),  # the leader swapped in its own key
        ("analyst_signature", b"\x30\x06\x02\x01\x01\x02\x01\x01"),
        ("analyst_signature", b""),
    ],
)
def test_any_change_is_rejected(ca: identity.CA, field: str, value: object) -> None:
    spec = _signed(ca)
    setattr(spec, field, value)
    with pytest.raises(InvalidProofError):
        verify_spec(spec, ca.cert_pem)


def test_only_analysts_of_this_ca(ca: identity.CA) -> None:
    leader_signed = _signed(ca, Role.LEADER, "leader")
    with pytest.raises(InvalidProofError, match="not an analyst"):
        verify_spec(leader_signed, ca.cert_pem)
    other = identity.create_ca("another CA")
    with pytest.raises(InvalidProofError, match="not from this CA"):
        verify_spec(_signed(other), ca.cert_pem)
    with pytest.raises(InvalidProofError, match="not signed"):
        verify_spec(pb.QuerySpec(protocol=pb.PROTOCOL_PAILLIER), ca.cert_pem)


# --- issue 15, item 15: a signed spec is single-use and expires -------------------------

NOW = 1_900_000_000.0


def _fresh(ca: identity.CA, **fields: object) -> pb.QuerySpec:
    who = identity.issue(ca, Role.ANALYST, "alice")
    spec = pb.QuerySpec(
        query_json='{"aggregate":"count","dataset":"hospitals"}',
        protocol=pb.PROTOCOL_PAILLIER,
        min_holders=3,
        max_holders=50,
        deadline_seconds=60,
        close_after=5,
        paillier_public_key=b"\x01" * 256,
        **fields,  # type: ignore[arg-type]
    )
    sign_spec(spec, who.cert_pem, who.key_pem, now=NOW)
    return spec


def test_signing_draws_a_fresh_spec_id_and_a_not_after(ca: identity.CA) -> None:
    from pets.identity.signing import SPEC_GRACE_SECONDS, SPEC_ID_BYTES

    a, b = _fresh(ca), _fresh(ca)
    assert len(a.spec_id) == SPEC_ID_BYTES and a.spec_id != b.spec_id
    assert a.not_after_unix == int(NOW + 60 + SPEC_GRACE_SECONDS)
    assert verify_spec(a, ca.cert_pem, now=NOW).name == "alice"


@pytest.mark.parametrize(
    "field, value",
    [
        ("deadline_seconds", 3600.0),  # the leader stretched the deadline
        ("close_after", 3),  # or let the query close over fewer holders
        ("spec_id", b"\x00" * 16),  # or re-labelled the spec to replay it
        ("not_after_unix", int(NOW) + 10 * 86400),  # or extended its life
    ],
)
def test_the_new_fields_are_signed(ca: identity.CA, field: str, value: object) -> None:
    spec = _fresh(ca)
    setattr(spec, field, value)
    with pytest.raises(InvalidProofError, match="does not verify"):
        verify_spec(spec, ca.cert_pem, now=NOW)


def test_an_expired_spec_is_refused(ca: identity.CA) -> None:
    spec = _fresh(ca)
    with pytest.raises(InvalidProofError, match="expired"):
        verify_spec(spec, ca.cert_pem, now=spec.not_after_unix + 1)


def test_a_deadline_past_not_after_is_refused(ca: identity.CA) -> None:
    from pets.identity.signing import check_deadline

    spec = _fresh(ca)
    check_deadline(spec, spec.not_after_unix)
    with pytest.raises(InvalidProofError, match="not_after"):
        check_deadline(spec, spec.not_after_unix + 1)


def test_a_spec_without_an_id_is_refused(ca: identity.CA) -> None:
    who = identity.issue(ca, Role.ANALYST, "alice")
    spec = pb.QuerySpec(protocol=pb.PROTOCOL_PAILLIER, deadline_seconds=60)
    spec.analyst_certificate = who.cert_pem
    spec.analyst_signature = b"\x30\x06\x02\x01\x01\x02\x01\x01"
    with pytest.raises(InvalidProofError, match="spec id"):
        verify_spec(spec, ca.cert_pem, now=NOW)
