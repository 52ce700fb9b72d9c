"""Known answers (tests/vectors/linkage, made by generate.py) reproduced by pets.linkage.

The files follow the shared schema (tests/vectors/README.md) and are read with
its loader; each reject case names its ``operation``, the ``step`` its error
carries and the :mod:`pets.errors` class it is.
"""

from __future__ import annotations

import numpy as np
import pytest

from pets.errors import InvalidInputError, ThresholdNotMetError
from pets.linkage import (
    BatchRejectedError,
    DigestMismatchError,
    IntersectionBelowFloorError,
    KeyShare,
    LinkageDomain,
    LinkageProofError,
    blind,
    check_digests,
    check_floor,
    derive_key_share,
    effective_floor,
    evaluate,
    finish,
    match,
    matched_set_digest,
    prepare_records,
    sum_matched,
    verify_batch,
)
from pets.linkage.dedup import one_row_per_person
from pets.linkage.dleq import composite_seed, composite_weights
from pets.linkage.normalise import normalise_one
from pets.linkage.points import decode_batch, multi_mul
from pets.zk.group import get_group
from pets.zk.rng import DeterministicRng
from tests.vectors.loader import Case, cases, error_class, load

OPRF = load("linkage/oprf.json")
JOIN = load("linkage/join.json")
NORM = load("linkage/normalise.json")
REJECT = load("linkage/reject.json")


def _rejects(operation: str) -> list[object]:
    return [p for p in cases(REJECT.reject) if p.values[0]["operation"] == operation]


DOMAIN = LinkageDomain(OPRF["domain"])
N_ROWS = len(OPRF["ids"])


def _keys() -> tuple[KeyShare, KeyShare]:
    q = OPRF["query_id"]
    leader = derive_key_share(bytes.fromhex(OPRF["leader_secret"]), "leader", DOMAIN, q)
    helper = derive_key_share(bytes.fromhex(OPRF["helper_secret"]), "helper", DOMAIN, q)
    return leader, helper


def test_domain_dst() -> None:
    assert DOMAIN.dst.decode() == OPRF["dst"]


def test_key_shares_and_public_keys() -> None:
    leader, helper = _keys()
    assert f"{leader.scalar:064x}" == OPRF["k_leader"]
    assert f"{helper.scalar:064x}" == OPRF["k_helper"]
    assert leader.public_key.hex() == OPRF["leader_public_key"]
    assert helper.public_key.hex() == OPRF["helper_public_key"]


def test_full_oprf_flow_reproduces_every_byte() -> None:
    leader, helper = _keys()
    ids = [s.encode() for s in OPRF["ids"]]
    rng = DeterministicRng(OPRF["rng_seed"].encode())
    batch, state = blind(ids, DOMAIN, rng=rng)
    assert state.order.tolist() == OPRF["order"]
    assert [f"{state.blind(i):064x}" for i in range(N_ROWS)] == OPRF["blinds"]
    assert state.blinds.hex() == "".join(OPRF["blinds"])
    assert batch.hex() == OPRF["batch"]
    mid = evaluate(batch, helper, max_rows=N_ROWS)
    assert mid.outputs.hex() == OPRF["helper_output"]
    out = evaluate(mid.outputs, leader, max_rows=N_ROWS)
    assert out.outputs.hex() == OPRF["leader_output"]
    upload = finish(out.outputs, state, DOMAIN, OPRF["query_id"], rng=rng)
    assert upload.pseudonyms.hex() == OPRF["upload_pseudonyms"]
    assert upload.records.tolist() == OPRF["upload_records"]


@pytest.mark.parametrize("backend", ["coincurve", "py_ecc"])
def test_oprf_values_on_both_zk_backends(backend: str) -> None:
    """k·H(id) recomputed with the ZK kit's group on each backend equals the vector."""
    group = get_group(backend)
    k = int(OPRF["k_leader"], 16) * int(OPRF["k_helper"], 16) % group.order
    unblinded = bytes.fromhex(OPRF["unblinded"])
    for i, hashed in enumerate(OPRF["hashed"]):
        point = group.point_from_bytes(bytes.fromhex(hashed))
        assert point == group.hash_to_point(OPRF["ids"][OPRF["order"][i]].encode(), DOMAIN.dst)
        assert (k * point).to_bytes() == unblinded[33 * i : 33 * i + 33]
        assert (
            DOMAIN.pseudonym(OPRF["query_id"], unblinded[33 * i : 33 * i + 33]).hex()
            == (OPRF["pseudonyms"][32 * i : 32 * i + 32])
        )


@pytest.mark.parametrize("vector", cases(OPRF.accept, step="dleq"))
def test_batched_dleq_vectors(vector: Case) -> None:
    leader, helper = _keys()
    key = helper if vector["role"] == "helper" else leader
    inputs = bytes.fromhex(OPRF["batch"] if key is helper else OPRF["helper_output"])
    context = bytes.fromhex(vector["context"])
    evaluation = evaluate(
        inputs,
        key,
        max_rows=N_ROWS,
        prove=True,
        context=context,
        rng=DeterministicRng(vector["nonce_rng_seed"].encode()),
    )
    seed = composite_seed(key.public_key, context, inputs, evaluation.outputs)
    assert seed.hex() == vector["seed"]
    weights = composite_weights(seed, N_ROWS)
    m = multi_mul(decode_batch(inputs, N_ROWS), weights)
    z = multi_mul(decode_batch(evaluation.outputs, N_ROWS), weights)
    assert m is not None and z is not None
    assert m.format().hex() == vector["composite_m"]
    assert z.format().hex() == vector["composite_z"]
    assert evaluation.proof is not None and evaluation.proof.hex() == vector["proof"]
    verify_batch(
        key.public_key,
        inputs,
        evaluation.outputs,
        evaluation.proof,
        context=context,
        max_rows=N_ROWS,
    )


@pytest.mark.parametrize("case", cases(JOIN.accept))
def test_join_vectors(case: Case) -> None:
    uploads = [bytes.fromhex(u) for u in case["uploads"]]
    result = match(uploads)
    assert result.pseudonyms.tobytes().hex() == case["matched"]
    assert [ix.tolist() for ix in result.indices] == case["indices"]
    assert matched_set_digest(case["query_id"], result).hex() == case["digest"]
    for shares, rows, expected in zip(case["shares"], result.indices, case["sums"], strict=True):
        matrix = np.array([[int(v) for v in row] for row in shares], dtype=np.uint64)
        assert sum_matched(matrix, rows).tolist() == [int(v) for v in expected]


@pytest.mark.parametrize("case", cases(NORM.accept, step="normalise"))
def test_normalisation_vectors(case: Case) -> None:
    out = normalise_one(case["input"], case["steps"])
    assert (out.decode() if out is not None else None) == case["expected"]


@pytest.mark.parametrize("case", cases(NORM.accept, step="one-row"))
def test_one_row_rule_vectors(case: Case) -> None:
    ids = [s.encode() for s in NORM["one_row_ids"]]
    values = np.array(NORM["one_row_values"], dtype=np.int64)
    distinct, out = one_row_per_person(ids, values, case["rule"])
    assert [d.decode() for d in distinct] == case["ids"]
    assert out is not None and out.tolist() == case["values"]
    records = prepare_records(NORM["one_row_ids"], values, DOMAIN, case["rule"])
    assert records.values is not None and records.values.tolist() == case["values"]


@pytest.mark.parametrize("case", _rejects("evaluate"))
def test_reject_evaluate(case: Case) -> None:
    _, helper = _keys()
    with pytest.raises(BatchRejectedError) as err:
        evaluate(bytes.fromhex(case["batch"]), helper, max_rows=case["max_rows"])
    assert err.value.step == case["step"]
    assert isinstance(err.value, error_class(case))
    assert isinstance(err.value, InvalidInputError)


@pytest.mark.parametrize("case", _rejects("verify"))
def test_reject_verify(case: Case) -> None:
    vector = OPRF.accept[0]
    context = bytes.fromhex(case.get("context", vector["context"]))
    with pytest.raises(LinkageProofError) as err:
        verify_batch(
            bytes.fromhex(OPRF["helper_public_key"]),
            bytes.fromhex(OPRF["batch"]),
            bytes.fromhex(case["outputs"]),
            bytes.fromhex(case["proof"]),
            context=context,
            max_rows=N_ROWS,
        )
    assert err.value.step == case["step"]
    assert isinstance(err.value, error_class(case))


@pytest.mark.parametrize("case", _rejects("join"))
def test_reject_join(case: Case) -> None:
    with pytest.raises(BatchRejectedError) as err:
        match([bytes.fromhex(u) for u in case["uploads"]])
    assert err.value.step == case["step"]
    assert isinstance(err.value, error_class(case))


@pytest.mark.parametrize("case", _rejects("digest"))
def test_reject_digest(case: Case) -> None:
    with pytest.raises(DigestMismatchError) as err:
        check_digests(bytes.fromhex(case["local"]), bytes.fromhex(case["remote"]))
    assert err.value.step == case["step"]
    assert isinstance(err.value, error_class(case))


@pytest.mark.parametrize("case", _rejects("floor"))
def test_reject_floor(case: Case) -> None:
    floor = effective_floor(case["server_floor"], case["query_floor"])
    pseudonyms = b"".join(i.to_bytes(16, "big") for i in range(case["size"]))
    result = match([pseudonyms, pseudonyms])
    with pytest.raises(IntersectionBelowFloorError) as err:
        check_floor(result, floor)
    assert err.value.step == case["step"]
    assert isinstance(err.value, error_class(case))
    assert isinstance(err.value, ThresholdNotMetError)
    assert str(case["size"]) not in str(err.value)
