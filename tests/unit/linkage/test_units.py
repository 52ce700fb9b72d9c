"""Unit tests of the linkage core: keys, checks, proofs against dishonest servers, join inputs."""

from __future__ import annotations

import os

import numpy as np
import pytest
from coincurve import PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from pets.errors import InvalidInputError, PetsError, SchemaError
from pets.linkage import (
    BatchRejectedError,
    KeyShare,
    LinkageDomain,
    LinkageProofError,
    announcement_message,
    blind,
    derive_key_share,
    evaluate,
    finish,
    match,
    prepare_records,
    proof_context,
    sum_matched,
    verify_batch,
    verify_evaluations,
)
from pets.linkage.dedup import one_row_per_person
from pets.linkage.local import link_in_process
from pets.linkage.points import combine, multi_mul, multiply_batch, multiply_secret
from pets.zk.curve import N
from pets.zk.rng import DeterministicRng


def test_key_shares_are_separated_by_role_query_and_domain(domain: LinkageDomain) -> None:
    secret = b"s" * 32
    base = derive_key_share(secret, "leader", domain, "q1")
    assert base == derive_key_share(secret, "leader", domain, "q1")
    others = {
        derive_key_share(secret, "helper", domain, "q1").scalar,
        derive_key_share(secret, "leader", domain, "q2").scalar,
        derive_key_share(secret, "leader", LinkageDomain("other"), "q1").scalar,
        derive_key_share(b"t" * 32, "leader", domain, "q1").scalar,
    }
    assert base.scalar not in others and len(others) == 4
    assert 0 < base.scalar < N
    assert str(base.scalar) not in repr(base) and f"{base.scalar:x}" not in repr(base)


def test_key_share_input_checks(domain: LinkageDomain) -> None:
    with pytest.raises(InvalidInputError):
        derive_key_share(b"short", "leader", domain, "q")
    with pytest.raises(InvalidInputError):
        derive_key_share(b"s" * 32, "analyst", domain, "q")
    with pytest.raises(SchemaError):
        derive_key_share(b"s" * 32, "leader", domain, "")
    with pytest.raises(InvalidInputError):
        KeyShare("leader", 0)
    with pytest.raises(InvalidInputError):
        KeyShare("leader", N)


def test_announcement_binds_role_query_and_key(leader: KeyShare, domain: LinkageDomain) -> None:
    msg = announcement_message("leader", domain, "q-test", leader.public_key)
    assert msg.endswith(leader.public_key)
    assert msg != announcement_message("helper", domain, "q-test", leader.public_key)
    assert msg != announcement_message("leader", domain, "q-other", leader.public_key)


def test_domain_names_are_checked() -> None:
    for bad in ("", "UPPER", "a b", "x" * 65, "-lead"):
        with pytest.raises(SchemaError):
            LinkageDomain(bad)
    with pytest.raises(SchemaError):
        LinkageDomain("ok", ("nfkc", "soundex"))


def test_normalisation_drops_unusable_identifiers(domain: LinkageDomain) -> None:
    values = np.arange(7, dtype=np.int64).reshape(-1, 1)
    ids = ["A", None, "  ", b"\xff", 3.5, 42, " a "]
    records = prepare_records(ids, values, domain, "first")
    assert records.ids == [b"a", b"42"]
    assert records.dropped == 4
    assert records.values is not None and records.values.tolist() == [[0], [5]]


def test_one_row_rules_checks() -> None:
    with pytest.raises(InvalidInputError) as err:
        one_row_per_person([b"secret-id", b"secret-id"], None, "reject")
    assert "secret-id" not in str(err.value)
    with pytest.raises(SchemaError):
        one_row_per_person([b"a"], None, "median")
    with pytest.raises(InvalidInputError):
        one_row_per_person([b"a"], np.array([["x"]]), "sum")
    with pytest.raises(InvalidInputError):
        one_row_per_person([b"a", b"b"], np.zeros((3, 1)), "sum")
    _ids, out = one_row_per_person(
        [b"a", b"a"], np.array([[2**64 - 1], [2]], dtype=np.uint64), "sum"
    )
    assert out is not None and out.tolist() == [[1]]  # ring wrap-around


def test_errors_never_echo_batch_content(helper: KeyShare) -> None:
    junk = b"\x05" + b"identifier-here!" * 2
    with pytest.raises(BatchRejectedError) as err:
        evaluate(junk, helper, max_rows=4)
    assert "identifier" not in str(err.value) and err.value.step == "bad-point"
    assert isinstance(err.value, PetsError)


def test_oversized_batch_is_refused_before_parsing(helper: KeyShare) -> None:
    with pytest.raises(BatchRejectedError) as err:
        evaluate(bytes(33 * 5), helper, max_rows=4)  # identity slots, but size comes first
    assert err.value.step == "oversized-batch"


def test_holder_checks_what_comes_back(
    domain: LinkageDomain, leader: KeyShare, helper: KeyShare
) -> None:
    batch, state = blind([b"a", b"b"], domain)
    with pytest.raises(BatchRejectedError) as err:
        finish(batch[:33], state, domain, "q")
    assert err.value.step == "batch-length"
    with pytest.raises(BatchRejectedError) as err:
        finish(batch[:33] + bytes(33), state, domain, "q")
    assert err.value.step == "identity-point"


def _verified(domain: LinkageDomain, key: KeyShare, ids: list[bytes]) -> tuple[bytes, bytes, bytes]:
    batch, _ = blind(ids, domain)
    ctx = proof_context(key.role, domain, "q-test", "holder-x")
    ev = evaluate(batch, key, max_rows=len(ids), prove=True, context=ctx)
    assert ev.proof is not None
    return batch, ev.outputs, ev.proof


@pytest.mark.parametrize("n", [1, 5, 600])
def test_dishonest_server_fails_dleq(domain: LinkageDomain, helper: KeyShare, n: int) -> None:
    ids = [b"%d" % i for i in range(n)]
    batch, outputs, proof = _verified(domain, helper, ids)
    ctx = proof_context("helper", domain, "q-test", "holder-x")
    verify_batch(helper.public_key, batch, outputs, proof, context=ctx, max_rows=n)
    # A wrong key with a proof for the announced one.
    wrong = KeyShare("helper", helper.scalar + 1)
    bad = multiply_batch(batch, wrong.scalar, max_rows=n)
    with pytest.raises(LinkageProofError):
        verify_batch(helper.public_key, batch, bad, proof, context=ctx, max_rows=n)
    # A wrong key, honestly proven, but against a key that is not the announced one.
    ev = evaluate(batch, wrong, max_rows=n, prove=True, context=ctx)
    assert ev.proof is not None
    with pytest.raises(LinkageProofError):
        verify_batch(helper.public_key, batch, ev.outputs, ev.proof, context=ctx, max_rows=n)
    # Random points in place of the outputs.
    rand = b"".join(PublicKey.from_valid_secret(os.urandom(32)).format() for _ in range(n))
    with pytest.raises(LinkageProofError):
        verify_batch(helper.public_key, batch, rand, proof, context=ctx, max_rows=n)
    # Outputs that are not points at all are refused as a batch, naming the step.
    with pytest.raises(BatchRejectedError) as err:
        verify_batch(
            helper.public_key, batch, bytes(33) + outputs[33:], proof, context=ctx, max_rows=n
        )
    assert err.value.step == "identity-point"
    # A public key that is not a point, a truncated proof.
    with pytest.raises(LinkageProofError):
        verify_batch(b"\x02" + bytes(32), batch, outputs, proof, context=ctx, max_rows=n)
    with pytest.raises(LinkageProofError):
        verify_batch(helper.public_key, batch, outputs, proof[:32], context=ctx, max_rows=n)


def test_verified_mode_end_to_end(
    domain: LinkageDomain, leader: KeyShare, helper: KeyShare
) -> None:
    ids_a = [b"%d" % i for i in range(30)]
    ids_b = [b"%d" % i for i in range(20, 50)]
    run = link_in_process(
        [ids_a, ids_b], domain, "q-test", leader=leader, helper=helper, max_rows=64, verified=True
    )
    assert run.matched.size == 10
    batch, _ = blind(ids_a, domain)
    mid = evaluate(batch, helper, max_rows=30, prove=True, context=b"h")
    out = evaluate(mid.outputs, leader, max_rows=30, prove=True, context=b"l")
    assert mid.proof is not None and out.proof is not None
    common = {
        "helper_public_key": helper.public_key,
        "helper_proof": mid.proof,
        "helper_context": b"h",
        "leader_public_key": leader.public_key,
        "leader_context": b"l",
    }
    verify_evaluations(batch, mid.outputs, out.outputs, leader_proof=out.proof, **common)
    with pytest.raises(LinkageProofError):  # the leader's proof checked against the helper's key
        verify_evaluations(batch, mid.outputs, out.outputs, leader_proof=mid.proof, **common)


@pytest.mark.parametrize("n", [0, 1, 511, 512, 2100, 5000])
def test_multi_mul_equals_naive(n: int) -> None:
    points = [PublicKey.from_valid_secret(os.urandom(32)) for _ in range(n)]
    weights = np.frombuffer(os.urandom(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    if n > 2:
        weights[0] = 0  # a zero weight
        weights[1] = 255
    naive = combine(
        [
            p.multiply(bytes(16) + weights[i].tobytes())
            for i, p in enumerate(points)
            if weights[i].any()
        ]
    )
    got = multi_mul(points, weights)
    assert (got.format() if got else None) == (naive.format() if naive else None)


def test_multi_mul_handles_cancellation() -> None:
    p = PublicKey.from_valid_secret(os.urandom(32))
    enc = p.format()
    neg = PublicKey(bytes([enc[0] ^ 1]) + enc[1:])
    w = np.zeros((2, 16), dtype=np.uint8)
    w[:, 15] = 7
    assert multi_mul([p, neg], w) is None
    assert multi_mul([p] * 40 + [neg] * 40, np.tile(w[:1], (80, 1))) is None


def test_chunks_and_threads_give_the_same_bytes(domain: LinkageDomain, helper: KeyShare) -> None:
    ids = [b"%d" % i for i in range(50)]
    batch, _ = blind(ids, domain, rng=DeterministicRng(b"t"), chunk=7, workers=2)
    again, _ = blind(ids, domain, rng=DeterministicRng(b"t"))
    assert batch == again
    one = evaluate(batch, helper, max_rows=50).outputs
    assert evaluate(batch, helper, max_rows=50, chunk=3, workers=2).outputs == one
    assert (
        b"".join(
            evaluate(batch[i : i + 33 * 8], helper, max_rows=8).outputs
            for i in range(0, len(batch), 33 * 8)
        )
        == one
    )  # streaming a batch in chunks gives the same bytes


def test_join_input_checks() -> None:
    with pytest.raises(InvalidInputError):
        match([b"A" * 16])
    with pytest.raises(InvalidInputError):
        match([np.zeros(2, dtype="S8"), b""])
    empty = match([b"", b"A" * 16])
    assert empty.size == 0 and [ix.tolist() for ix in empty.indices] == [[], []]
    assert "1" not in repr(match([b"A" * 16, b"A" * 16]))


def test_sum_matched_input_checks() -> None:
    shares = np.zeros((3, 2), dtype=np.uint64)
    for rows in ([3], [-1]):
        with pytest.raises(InvalidInputError):
            sum_matched(shares, np.array(rows))
    with pytest.raises(InvalidInputError):
        sum_matched(shares.astype(np.int64), np.array([0]))
    with pytest.raises(InvalidInputError):
        sum_matched(shares, np.array([0.5]))
    assert sum_matched(shares, np.zeros(0, dtype=np.int64)).tolist() == [0, 0]


def test_empty_batches(domain: LinkageDomain, leader: KeyShare, helper: KeyShare) -> None:
    batch, state = blind([], domain)
    assert batch == b""
    ev = evaluate(batch, helper, max_rows=10, prove=True, context=b"c")
    assert ev.outputs == b"" and ev.proof == b""
    verify_batch(helper.public_key, b"", b"", b"", context=b"c", max_rows=10)
    with pytest.raises(LinkageProofError):
        verify_batch(helper.public_key, b"", b"", bytes(64), context=b"c", max_rows=10)
    upload = finish(b"", state, domain, "q")
    assert upload.pseudonyms == b"" and upload.records.size == 0


def test_blind_wants_bytes(domain: LinkageDomain) -> None:
    with pytest.raises(InvalidInputError):
        blind(["text-id"], domain)  # type: ignore[list-item]
    with pytest.raises(InvalidInputError) as err:
        blind([b"same-id", b"same-id"], domain)
    assert "same-id" not in str(err.value)


def test_core_is_pure() -> None:
    """No network, files, subprocesses or logging anywhere in pets.linkage."""
    import ast
    from pathlib import Path

    import pets.linkage

    forbidden = {"logging", "socket", "grpc", "subprocess", "os", "pathlib", "io", "shutil"}
    for path in Path(pets.linkage.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module.split(".")[0]]
            assert not set(names) & forbidden, f"{path.name} imports {names}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in {"open", "print"}, f"{path.name} calls {node.func.id}"


def test_batch_admission_and_signing_message(domain: LinkageDomain) -> None:
    from pets.linkage import BatchAdmission, batch_message

    admission = BatchAdmission()
    admission.admit("q1", "hospital-a")
    admission.admit("q1", "ltc-b")
    admission.admit("q2", "hospital-a")
    assert ("q1", "hospital-a") in admission
    with pytest.raises(BatchRejectedError) as err:
        admission.admit("q1", "hospital-a")
    assert err.value.step == "repeated-batch"
    admission.forget("q1")
    assert ("q1", "hospital-a") not in admission
    batch = bytes(66)
    msg = batch_message(domain, "q1", "hospital-a", batch)
    assert msg != batch_message(domain, "q2", "hospital-a", batch)
    assert msg != batch_message(domain, "q1", "hospital-b", batch)
    assert msg != batch_message(domain, "q1", "hospital-a", bytes(33))
    assert msg != batch_message(LinkageDomain("other"), "q1", "hospital-a", batch)


def test_wrong_types_raise_pets_errors(domain: LinkageDomain, helper: KeyShare) -> None:
    from pets.linkage import batch_message, check_digests

    calls = [
        lambda: evaluate("not bytes", helper, max_rows=4),  # type: ignore[arg-type]
        lambda: derive_key_share("a text secret of 32 characters!!", "leader", domain, "q"),  # type: ignore[arg-type]
        lambda: match(["x" * 16, b"A" * 16]),  # type: ignore[list-item]
        lambda: check_digests("a", b"a"),  # type: ignore[arg-type]
        lambda: verify_batch("k", b"", b"", b"", context=b"", max_rows=1),  # type: ignore[arg-type]
        lambda: batch_message(domain, "q", "h", "batch"),  # type: ignore[arg-type]
        lambda: domain.pseudonym("q", b"short"),
        lambda: domain.pseudonym(7, bytes(33)),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(InvalidInputError):
            call()


# -- constant-time multiplication (pets.linkage.points.multiply_secret) ----------------

_LAMBDA = 0x5363AD4CC05C30E0A5261C028812645A122E22EA20816678DF02967C1B23BD72


@pytest.mark.parametrize(
    "k",
    [1, 2, 2**255 + 1, N - _LAMBDA, _LAMBDA, N - 1],
    ids=["1", "2", "2^255+1", "n-lambda", "lambda", "n-1"],
)
def test_multiply_secret_matches_multiply_on_edge_scalars(k: int) -> None:
    point = PublicKey.from_valid_secret(b"\x07" * 32)
    kb = k.to_bytes(32, "big")
    assert multiply_secret(point, kb) == point.multiply(kb).format()


@settings(max_examples=50, deadline=None)
@given(k=st.integers(min_value=1, max_value=N - 1), s=st.integers(min_value=1, max_value=N - 1))
def test_multiply_secret_matches_multiply(k: int, s: int) -> None:
    point = PublicKey.from_valid_secret(s.to_bytes(32, "big"))
    kb = k.to_bytes(32, "big")
    assert multiply_secret(point, kb) == point.multiply(kb).format()


@pytest.mark.parametrize("k", [0, N], ids=["0", "n"])
def test_multiply_secret_refuses_out_of_range_scalars(k: int) -> None:
    with pytest.raises(InvalidInputError, match=r"\[1, n\)"):
        multiply_secret(PublicKey.from_valid_secret(b"\x07" * 32), k.to_bytes(32, "big"))
