"""The leader's admission step, without gRPC: every refusal an analyst can get, and
what an admitted query carries."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from pets.errors import InvalidInputError, InvalidProofError, NotReadyError
from pets.identity.certificates import Peer, Role
from pets.paillier import generate_keypair, public_key_to_bytes
from pets.query import Schema
from pets.runtime.tomlconfig import TlsFiles
from pets.server.config import Limits, ServerConfig
from pets.server.leader.admission import Admission, admit
from pets.v1 import aggregation_pb2 as pb

SCHEMA = Schema.from_toml(
    '[datasets.v]\nkind = "vector"\nlength = 3\nlo = 0\nhi = 1\n'
    '[datasets.big]\nkind = "vector"\nlength = 1\nlo = 0\nhi = 9007199254740992\nscale = 1\n'
)
ANALYST = Peer(role=Role.ANALYST, name="alice")
VECTOR = '{"aggregate":"vector_sum","dataset":"v"}'
ADDITIVE = pb.PROTOCOL_ADDITIVE


@functools.cache
def _public() -> bytes:
    """A real analyst key (the leader accepts only the supported sizes)."""
    return public_key_to_bytes(generate_keypair(2048)[0])


def _config(tls: TlsFiles | None = None, **limits: object) -> ServerConfig:
    return ServerConfig(
        role="leader",
        name="leader",
        listen="127.0.0.1:0",
        state_dir=Path("/nonexistent"),  # admission never touches it
        min_holders=2,
        tls=tls,
        limits=Limits(**limits),  # type: ignore[arg-type]
    )


def _admit(spec: pb.QuerySpec, *, open_queries: int = 0, **config: object) -> Admission:
    return admit(
        spec,
        ANALYST,
        schema=SCHEMA,
        config=_config(**config),  # type: ignore[arg-type]
        open_queries=open_queries,
        ca_pem=None,
    )


def test_an_unspecified_protocol_is_refused_not_taken_as_additive() -> None:
    with pytest.raises(InvalidInputError, match="must name its protocol"):
        _admit(pb.QuerySpec(query_json=VECTOR))


def test_an_additive_query_is_admitted_and_the_request_is_not_changed() -> None:
    request = pb.QuerySpec(query_json=VECTOR, protocol=ADDITIVE)
    admission = _admit(request)
    assert admission.spec.protocol == pb.PROTOCOL_ADDITIVE
    assert admission.protocol.name == "additive"
    assert admission.spec is not request
    assert admission.vector_length == 3
    assert admission.min_holders == 2  # the server's floor
    assert admission.deadline_seconds == Limits().default_deadline_seconds


@pytest.mark.parametrize(
    "spec, error, message",
    [
        (
            pb.QuerySpec(query_json="{not json", protocol=ADDITIVE),
            InvalidInputError,
            "not valid JSON",
        ),
        (
            pb.QuerySpec(query_json=VECTOR, protocol=99),  # type: ignore[arg-type]
            InvalidInputError,
            "unknown protocol 99",
        ),
        (
            pb.QuerySpec(query_json=VECTOR, min_holders=1, protocol=ADDITIVE),
            InvalidInputError,
            "below this server",
        ),
        (
            pb.QuerySpec(query_json=VECTOR, min_holders=5, close_after=4, protocol=ADDITIVE),
            InvalidInputError,
            "close_after 4 is below min_holders 5",
        ),
        (
            pb.QuerySpec(query_json=VECTOR, deadline_seconds=-1, protocol=ADDITIVE),
            InvalidInputError,
            "deadline_seconds must be in",
        ),
        (
            pb.QuerySpec(query_json=VECTOR, deadline_seconds=float("inf"), protocol=ADDITIVE),
            InvalidInputError,
            "deadline_seconds must be in",
        ),
        (
            pb.QuerySpec(query_json=VECTOR, paillier_public_key=b"k", protocol=ADDITIVE),
            InvalidInputError,
            "only for PROTOCOL_PAILLIER",
        ),
        (
            pb.QuerySpec(
                query_json='{"aggregate":"vector_sum","dataset":"big"}',
                min_holders=2000,
                protocol=ADDITIVE,
            ),
            InvalidInputError,
            "may exceed the 64-bit ring",
        ),
        (
            pb.QuerySpec(query_json=VECTOR, protocol=pb.PROTOCOL_PAILLIER),
            InvalidInputError,
            "needs the analyst's paillier_public_key",
        ),
    ],
)
def test_refusals(spec: pb.QuerySpec, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        _admit(spec)


def test_a_paillier_query_never_takes_fewer_holders_than_it_needs() -> None:
    spec = pb.QuerySpec(
        query_json=VECTOR, protocol=pb.PROTOCOL_PAILLIER, paillier_public_key=_public()
    )
    spec.max_holders = 1
    with pytest.raises(InvalidInputError, match="max_holders 1 is below min_holders 2"):
        _admit(spec)


def test_the_server_limits_hold() -> None:
    with pytest.raises(InvalidInputError, match="accepts at most 2"):
        _admit(pb.QuerySpec(query_json=VECTOR, protocol=ADDITIVE), max_vector_length=2)
    with pytest.raises(NotReadyError, match="already has 3 unfinished queries"):
        _admit(
            pb.QuerySpec(query_json=VECTOR, protocol=ADDITIVE),
            open_queries=3,
            max_open_queries_per_analyst=3,
        )
    assert _admit(
        pb.QuerySpec(query_json=VECTOR, protocol=ADDITIVE),
        open_queries=2,
        max_open_queries_per_analyst=3,
    )


def test_a_paillier_query_is_admitted_with_its_packed_length() -> None:
    spec = pb.QuerySpec(
        query_json=VECTOR, protocol=pb.PROTOCOL_PAILLIER, paillier_public_key=_public()
    )
    admission = _admit(spec)
    assert admission.protocol.name == "paillier"
    assert 1 <= admission.vector_length <= 3  # several values per plaintext


def test_with_tls_a_paillier_spec_must_be_signed() -> None:
    spec = pb.QuerySpec(
        query_json=VECTOR, protocol=pb.PROTOCOL_PAILLIER, paillier_public_key=_public()
    )
    tls = TlsFiles(Path("ca.pem"), Path("cert.pem"), Path("key.pem"))  # never read here
    with pytest.raises(InvalidProofError):
        _admit(spec, tls=tls)
    # An additive spec carries no key, so it needs no signature.
    assert (
        _admit(pb.QuerySpec(query_json=VECTOR, protocol=ADDITIVE), tls=tls).protocol.name
        == "additive"
    )


def test_min_holders_has_a_ceiling() -> None:
    # Issue 15, item 3: 2^32 - 1 was accepted, and such a query can never be released.
    huge = 2**32 - 1
    with pytest.raises(InvalidInputError, match=f"min_holders {huge} is above .* max_holders"):
        _admit(pb.QuerySpec(query_json=VECTOR, protocol=ADDITIVE, min_holders=huge))
    with pytest.raises(
        InvalidInputError, match="min_holders 11 is above this server's max_holders"
    ):
        _admit(pb.QuerySpec(query_json=VECTOR, protocol=ADDITIVE, min_holders=11), max_holders=10)
    with pytest.raises(
        InvalidInputError, match="close_after 11 is above this server's max_holders"
    ):
        _admit(pb.QuerySpec(query_json=VECTOR, protocol=ADDITIVE, close_after=11), max_holders=10)
    admitted = _admit(
        pb.QuerySpec(query_json=VECTOR, protocol=ADDITIVE, min_holders=10, close_after=10),
        max_holders=10,
    )
    assert admitted.min_holders == 10


def test_a_signed_spec_is_checked_for_expiry_and_its_deadline() -> None:
    """Issue 15, item 15: the leader refuses a signed Paillier spec that expired, one
    whose query would outlive the signed not_after, and one whose deadline or
    close_after was changed after signing."""
    from pets.identity import certificates as identity
    from pets.identity.signing import sign_spec

    ca = identity.create_ca("test CA")
    alice = identity.issue(ca, Role.ANALYST, "alice")
    t0 = 1_900_000_000.0
    spec = pb.QuerySpec(
        query_json=VECTOR,
        protocol=pb.PROTOCOL_PAILLIER,
        paillier_public_key=_public(),
        deadline_seconds=60,
        close_after=2,
    )
    sign_spec(spec, alice.cert_pem, alice.key_pem, now=t0)
    tls = TlsFiles(Path("ca.pem"), Path("cert.pem"), Path("key.pem"))  # never read here

    def submit(s: pb.QuerySpec, now: float) -> Admission:
        return admit(
            s,
            ANALYST,
            schema=SCHEMA,
            config=_config(tls=tls),
            open_queries=0,
            ca_pem=ca.cert_pem,
            now=now,
        )

    assert submit(spec, t0 + 1).deadline_seconds == 60
    with pytest.raises(InvalidProofError, match="not_after"):
        submit(spec, t0 + 301)  # not expired yet, but the query would close after it
    with pytest.raises(InvalidProofError, match="expired"):
        submit(spec, spec.not_after_unix + 1)
    for field, value in (("deadline_seconds", 600.0), ("close_after", 3)):
        changed = pb.QuerySpec()
        changed.CopyFrom(spec)
        setattr(changed, field, value)
        with pytest.raises(InvalidProofError, match="does not verify"):
            submit(changed, t0 + 1)
