"""Sealed seeds (pets.seal): known answers, rejects at the named step, properties."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from hypothesis import given, settings
from hypothesis import strategies as st

from pets import seal
from pets.errors import InvalidInputError, InvalidProofError
from pets.identity import certificates as identity
from pets.identity.certificates import Role
from tests.vectors.loader import cases, load, rejected

VECTORS = load("seal.json")
ACCEPT = {c["step"]: c for c in VECTORS.accept}
RECIPIENT = x25519.X25519PrivateKey.from_private_bytes(
    bytes.fromhex(VECTORS["recipient_private_key"])
)
HOLDER_KEY = ec.EllipticCurvePublicKey.from_encoded_point(
    ec.SECP256R1(), bytes.fromhex(VECTORS["holder_public_key"])
)


def _context(d: dict[str, str]) -> seal.SeedContext:
    return seal.SeedContext(
        d["query_id"], bytes.fromhex(d["fingerprint"]), d["holder"], d["helper"]
    )


def test_known_answer_opens_and_verifies() -> None:
    v = ACCEPT["open"]
    ctx = _context(v["context"])
    assert ctx.info().hex() == v["info"]
    assert seal.public_bytes(RECIPIENT.public_key()).hex() == VECTORS["recipient_public_key"]
    sealed = bytes.fromhex(v["sealed"])
    assert len(sealed) == seal.SEALED_BYTES
    assert seal.open_sealed(sealed, RECIPIENT, ctx).hex() == v["seed"]
    seal.verify_sealed(ctx, sealed, bytes.fromhex(v["signature"]), HOLDER_KEY)


def test_known_contribution_digest_and_helper_key_message() -> None:
    d = ACCEPT["contribution_digest"]
    seeds = [bytes.fromhex(s) for s in d["seeds"]]
    assert seal.contribution_digest(d["query_id"], seeds).hex() == d["digest"]
    assert seal.contribution_digest(d["query_id"], seeds[::-1]).hex() != d["digest"]
    m = ACCEPT["helper_key_message"]
    message = seal.helper_key_message(m["helper"], bytes.fromhex(m["public_key"]), m["not_after"])
    assert message.hex() == m["message"]


def _check_statement(vector: dict) -> None:
    s = vector["statement"]
    seal.verify_helper_key(
        s["helper"],
        bytes.fromhex(s["public_key"]),
        s["certificate"].encode(),
        bytes.fromhex(s["signature"]),
        None,
        not_after=s["not_after"],
        now=vector["now"],
    )


def test_known_helper_key_statement_verifies() -> None:
    _check_statement(ACCEPT["helper_key"])


@pytest.mark.parametrize("vector", cases(VECTORS.reject))
def test_reject_vectors_fail_at_their_step(vector: dict) -> None:
    if vector["step"] == "helper_key":
        with rejected(vector):
            _check_statement(vector)
        return
    ctx = _context(vector["context"])
    sealed = bytes.fromhex(vector["sealed"])
    step = vector["step"]
    if step == "verify":
        seal.open_sealed(sealed, RECIPIENT, ctx)  # opens fine: only the signature is wrong
        with rejected(vector):
            seal.verify_sealed(ctx, sealed, bytes.fromhex(vector["signature"]), HOLDER_KEY)
    elif step == "open":
        with rejected(vector):
            seal.open_sealed(sealed, RECIPIENT, ctx)
    else:
        assert step == "length"
        with rejected(vector):
            seal.open_sealed(sealed, RECIPIENT, ctx)


names = st.text(alphabet="abcdefghij-0123456789", min_size=1, max_size=20)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.binary(min_size=32, max_size=32),
    query=names,
    holder=names,
    helper=names,
    other=names,
)
def test_seal_round_trip_and_binding(
    seed: bytes, query: str, holder: str, helper: str, other: str
) -> None:
    ctx = seal.SeedContext(query, b"\x01" * 32, holder, helper)
    sealed = seal.seal(seed, RECIPIENT.public_key(), ctx)
    assert len(sealed) == seal.SEALED_BYTES
    assert seal.open_sealed(sealed, RECIPIENT, ctx) == seed
    if other != holder:
        with pytest.raises(InvalidProofError):
            seal.open_sealed(
                sealed, RECIPIENT, seal.SeedContext(query, b"\x01" * 32, other, helper)
            )


def test_sealing_is_randomised_and_hides_the_seed() -> None:
    ctx = _context(ACCEPT["open"]["context"])
    seed = b"\x07" * 32
    a, b = (seal.seal(seed, RECIPIENT.public_key(), ctx) for _ in range(2))
    assert a != b and seed not in a


def test_wrong_seed_length_and_wrong_key_size_are_refused() -> None:
    ctx = _context(ACCEPT["open"]["context"])
    with pytest.raises(InvalidInputError):
        seal.seal(b"short", RECIPIENT.public_key(), ctx)
    with pytest.raises(InvalidProofError):
        seal.load_public_key(b"\x00" * 31)


def test_context_encoding_is_unambiguous() -> None:
    # Length prefixes: moving a character between fields changes the bytes.
    a = seal.SeedContext("q-1", b"f", "ab", "c").info()
    b = seal.SeedContext("q-1", b"f", "a", "bc").info()
    assert a != b


@pytest.fixture(scope="module")
def ca() -> identity.CA:
    return identity.create_ca("seal test CA")


def test_helper_vouches_for_its_key(ca: identity.CA) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    helper = identity.issue(ca, Role.HELPER, "helper-1")
    key = load_pem_private_key(helper.key_pem, password=None)
    public = seal.public_bytes(RECIPIENT.public_key())
    until = int(time.time()) + seal.HELPER_KEY_LIFETIME_SECONDS
    signature = seal.sign_helper_key("helper-1", public, key, not_after=until)  # type: ignore[arg-type]
    got = seal.verify_helper_key(
        "helper-1", public, helper.cert_pem, signature, ca.cert_pem, not_after=until
    )
    assert seal.public_bytes(got) == public
    # A key the leader swapped in, or the statement of another helper, is refused.
    leader = identity.issue(ca, Role.LEADER, "leader")
    leader_key = load_pem_private_key(leader.key_pem, password=None)
    swapped = seal.public_bytes(x25519.X25519PrivateKey.generate().public_key())
    with pytest.raises(InvalidProofError, match="not signed"):
        seal.verify_helper_key(
            "helper-1", swapped, helper.cert_pem, signature, ca.cert_pem, not_after=until
        )
    with pytest.raises(InvalidProofError, match="names"):
        seal.verify_helper_key(
            "helper-1",
            swapped,
            leader.cert_pem,
            seal.sign_helper_key("helper-1", swapped, leader_key, not_after=until),  # type: ignore[arg-type]
            ca.cert_pem,
            not_after=until,
        )
    with pytest.raises(InvalidProofError, match="names"):
        seal.verify_helper_key(
            "helper-2", public, helper.cert_pem, signature, ca.cert_pem, not_after=until
        )
    other_ca = identity.create_ca("another CA")
    with pytest.raises(InvalidProofError, match="not from this CA"):
        seal.verify_helper_key(
            "helper-1", public, helper.cert_pem, signature, other_ca.cert_pem, not_after=until
        )


# --- issue 15, item 15: the helper's seal-key statement expires ---------------------------


@pytest.fixture(scope="module")
def helper_party() -> tuple[identity.CA, identity.Identity]:
    ca = identity.create_ca("seal key CA")
    return ca, identity.issue(ca, Role.HELPER, "helper-1")


def test_a_seal_key_statement_carries_its_expiry(
    helper_party: tuple[identity.CA, identity.Identity],
) -> None:
    ca, helper = helper_party
    signing_key = load_pem_private_key(helper.key_pem, password=None)
    assert isinstance(signing_key, ec.EllipticCurvePrivateKey)
    public = seal.public_bytes(RECIPIENT.public_key())
    now = 1_900_000_000.0
    not_after = int(now) + seal.HELPER_KEY_LIFETIME_SECONDS
    signature = seal.sign_helper_key("helper-1", public, signing_key, not_after=not_after)

    def check(at: float, claimed: int = not_after) -> None:
        seal.verify_helper_key(
            "helper-1", public, helper.cert_pem, signature, ca.cert_pem, not_after=claimed, now=at
        )

    check(now)
    check(not_after - 1)
    with pytest.raises(InvalidProofError, match="expired"):
        check(not_after)
    with pytest.raises(InvalidProofError, match="not signed"):
        check(now, claimed=not_after + 86_400)  # the leader extended an old statement
