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
