"""Named relations: Schnorr, DLEQ, Pedersen, equality, linear, bits, ranges, membership."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pets.errors import InvalidInputError, InvalidProofError
from pets.zk.curve import N
from pets.zk.group import Group, get_group
from pets.zk.membership import MembershipRelation
from pets.zk.pedersen import (
    EqualityRelation,
    LinearRelation,
    Opening,
    OpeningRelation,
    PedersenParams,
)
from pets.zk.range_proof import (
    BitRelation,
    RangeProof,
    RangeRelation,
    decompose,
    digits,
)
from pets.zk.rng import DeterministicRng
from pets.zk.schnorr import DLEQRelation, DLogRelation
from tests.unit.zk.helpers import BACKENDS, flipped, load_vectors, rng

CTX = b"test context"


@dataclass
class Case:
    relation: object
    prove: Callable[[object, DeterministicRng], object]
    others: list[object]  # same proof must fail against each of these statements


def build(name: str, group: Group) -> Case:
    """One relation per proof type, with statements differing in one public input."""
    p = PedersenParams(group, 2)
    r = rng("inputs")
    g, h = group.generator, group.derive_generator("tests/dleq")
    c1, o1 = p.commit(42, rng=r)
    c2, o2 = p.commit(42, rng=r)
    c3, o3 = p.commit(7, rng=r)
    cb, ob = p.commit(1, rng=r)
    cv, ov = p.commit_vector([5, 9], rng=r)
    if name == "schnorr":
        return Case(
            DLogRelation(group.mul_base(9)),
            lambda rel, s: rel.prove(9, context=CTX, rng=s),
            [DLogRelation(group.mul_base(10)), DLogRelation(9 * h, h)],
        )
    if name == "dleq":
        return Case(
            DLEQRelation(group.mul_base(9), g, 9 * h, h),
            lambda rel, s: rel.prove(9, context=CTX, rng=s),
            [DLEQRelation(group.mul_base(9), g, 8 * h, h), DLEQRelation(9 * h, h, 9 * g, g)],
        )
    if name == "opening":
        return Case(
            OpeningRelation(p, c1),
            lambda rel, s: rel.prove(o1, context=CTX, rng=s),
            [OpeningRelation(p, c2), OpeningRelation(PedersenParams(group, 1), c3)],
        )
    if name == "vector-opening":
        return Case(
            OpeningRelation(p, cv, 2),
            lambda rel, s: rel.prove(ov, context=CTX, rng=s),
            [OpeningRelation(p, c1, 2), OpeningRelation(p, cv, 1)],
        )
    if name == "equality":
        return Case(
            EqualityRelation(p, c1, c2),
            lambda rel, s: rel.prove(o1, o2, context=CTX, rng=s),
            [EqualityRelation(p, c2, c1), EqualityRelation(p, c1, c3)],
        )
    if name == "linear":
        return Case(
            LinearRelation(p, [c1, c3], [2, 3], 105),
            lambda rel, s: rel.prove([o1, o3], context=CTX, rng=s),
            [
                LinearRelation(p, [c1, c3], [2, 3], 106),
                LinearRelation(p, [c1, c3], [3, 2], 105),
                LinearRelation(p, [c2, c3], [2, 3], 105),
            ],
        )
    if name == "bit":
        return Case(
            BitRelation(p, cb),
            lambda rel, s: rel.prove(ob, context=CTX, rng=s),
            [BitRelation(p, c3), BitRelation(p, cb + g)],
        )
    if name == "membership":
        return Case(
            MembershipRelation(p, c1, [7, 42, 1000]),
            lambda rel, s: rel.prove(o1, context=CTX, rng=s),
            [
                MembershipRelation(p, c1, [7, 41, 1000]),
                MembershipRelation(p, c1, [7, 42, 1001]),
                MembershipRelation(p, c3, [7, 42, 1000]),
            ],
        )
    if name == "range":
        return Case(
            RangeRelation(p, c1, 18, 149),
            lambda rel, s: rel.prove(o1, context=CTX, rng=s),
            [
                RangeRelation(p, c1, 18, 150),
                RangeRelation(p, c1, 19, 149),
                RangeRelation(p, c2, 18, 149),
                RangeRelation(p, c1, 17, 148),
            ],
        )
    raise AssertionError(name)


NAMES = ["schnorr", "dleq", "opening", "vector-opening", "equality", "linear", "bit"]
NAMES += ["membership", "range"]


@pytest.mark.parametrize("name", NAMES)
def test_backends_produce_identical_proofs_and_cross_verify(name: str) -> None:
    fast, ref = build(name, get_group("coincurve")), build(name, get_group("py_ecc"))
    pf = fast.prove(fast.relation, rng(name))
    pr = ref.prove(ref.relation, rng(name))
    assert pf.to_bytes() == pr.to_bytes()
    fast.relation.verify(pf, context=CTX)
    ref.relation.verify(pr.to_bytes(), context=CTX)


@pytest.mark.parametrize("name", NAMES)
def test_every_single_bit_flip_is_rejected(name: str) -> None:
    case = build(name, get_group("coincurve"))
    data = case.prove(case.relation, rng(name)).to_bytes()
    for bad in flipped(data):
        with pytest.raises(InvalidProofError):
            case.relation.verify(bad, context=CTX)
    with pytest.raises(InvalidProofError):
        case.relation.verify(data[:-1], context=CTX)
    with pytest.raises(InvalidProofError):
        case.relation.verify(data + b"\x00" * 32, context=CTX)


@pytest.mark.parametrize("name", NAMES)
def test_any_statement_or_context_change_is_rejected(name: str) -> None:
    case = build(name, get_group("coincurve"))
    proof = case.prove(case.relation, rng(name))
    with pytest.raises(InvalidProofError):
        case.relation.verify(proof, context=CTX + b"!")
    for other in case.others:
        with pytest.raises((InvalidProofError, InvalidInputError)):
            other.verify(proof, context=CTX)


@pytest.mark.parametrize("name", NAMES)
def test_py_ecc_rejects_a_tampered_proof(name: str) -> None:
    case = build(name, get_group("py_ecc"))
    data = case.prove(case.relation, rng(name)).to_bytes()
    with pytest.raises(InvalidProofError):
        case.relation.verify(next(flipped(data[::-1]))[::-1], context=CTX)


def test_public_inputs_change_the_challenge(fast: Group) -> None:
    """Same randomness, statements differing in one public input: different challenges."""
    p = PedersenParams(fast)
    c, o = p.commit(50, rng=rng())
    challenges = set()
    for lo, hi in ((18, 149), (18, 150), (17, 149), (0, 149)):
        proof = RangeRelation(p, c, lo, hi).prove(o, rng=rng("same"))
        challenges.add(proof.proof.scalars[0])
    for ctx in (b"a", b"b"):
        challenges.add(
            RangeRelation(p, c, 18, 149).prove(o, context=ctx, rng=rng("same")).proof.scalars[0]
        )
    for values in ([50, 1], [50, 2]):
        challenges.add(MembershipRelation(p, c, values).prove(o, rng=rng("same")).scalars[0])
    assert len(challenges) == 8


def test_invalid_witnesses_are_refused(fast: Group) -> None:
    p = PedersenParams(fast)
    c, o = p.commit(42, rng=rng())
    c7, o7 = p.commit(7, rng=rng("7"))
    with pytest.raises(InvalidInputError):
        RangeRelation(p, c, 43, 100).prove(o)
    with pytest.raises(InvalidInputError):
        RangeRelation(p, c, 0, 41).prove(o)
    with pytest.raises(InvalidInputError):
        BitRelation(p, c).prove(o)
    c2, o2 = p.commit(2, rng=rng())
    with pytest.raises(InvalidInputError):  # the committed value is 2: neither branch holds
        BitRelation(p, c2).prove(Opening(1, o2.blinding))
    with pytest.raises(InvalidInputError):
        MembershipRelation(p, c, [1, 2]).prove(o)
    with pytest.raises(InvalidInputError):
        EqualityRelation(p, c, c7).prove(o, o7)
    with pytest.raises(InvalidInputError):
        LinearRelation(p, [c, c7], [1, 1], 50).prove([o, o7])
    with pytest.raises(InvalidInputError):
        OpeningRelation(p, c).prove(Opening(41, o.blinding))
    with pytest.raises(InvalidInputError):
        DLogRelation(fast.mul_base(5)).prove(6)


def test_relation_argument_validation(fast: Group) -> None:
    p = PedersenParams(fast)
    c, _ = p.commit(1)
    for lo, hi in ((5, 4), (-1, 3), (0, 1 << 64), (0, N)):
        with pytest.raises(InvalidInputError):
            RangeRelation(p, c, lo, hi)
    with pytest.raises(InvalidInputError):
        MembershipRelation(p, c, [])
    with pytest.raises(InvalidInputError):
        MembershipRelation(p, c, range(300))
    with pytest.raises(InvalidInputError):
        LinearRelation(p, [c], [1, 2], 3)
    with pytest.raises(InvalidInputError):
        PedersenParams(fast, 0)
    with pytest.raises(InvalidInputError):
        p.commit_vector([1, 2])


def test_pedersen_commitments(group: Group) -> None:
    p = PedersenParams(group, 3)
    c, o = p.commit(5, rng=rng())
    assert p.opens(c, o) and not p.opens(c, Opening(6, o.blinding))
    cv, ov = p.commit_vector([1, 2, 3], rng=rng())
    assert p.opens(cv, ov)
    c_again, _ = p.commit(5, rng=rng())
    assert c_again == c  # deterministic under the same randomness
    assert "5" not in repr(o) and str(o.blinding) not in repr(o)
    # additively homomorphic
    d, od = p.commit(7, rng=rng("d"))
    assert p.opens(c + d, Opening(12, o.blinding + od.blinding))


def test_digits_represent_exactly_the_interval() -> None:
    for width in range(0, 300):
        ds = digits(width)
        reachable = {0}
        for d in ds:
            reachable |= {v + d for v in reachable}
        assert reachable == set(range(width + 1))
        for u in range(width + 1):
            bits = decompose(u, width)
            assert sum(b * d for b, d in zip(bits, ds, strict=True)) == u
            assert set(bits) <= {0, 1}


@pytest.mark.parametrize(
    ("lo", "hi", "value"),
    [
        (0, 0, 0),
        (5, 5, 5),
        (0, 1, 0),
        (0, 1, 1),
        (10, 11, 11),
        (0, 255, 255),
        (0, 256, 256),
        (18, 149, 18),
        (18, 149, 149),
        (0, (1 << 64) - 1, 0),
        (0, (1 << 64) - 1, (1 << 64) - 1),
        (N - 10, N - 1, N - 3),
    ],
)
def test_range_boundaries(fast: Group, lo: int, hi: int, value: int) -> None:
    p = PedersenParams(fast)
    c, o = p.commit(value, rng=rng())
    rel = RangeRelation(p, c, lo, hi)
    proof = rel.prove(o, rng=rng("p"))
    rel.verify(proof)
    rel.verify_generic(proof)
    assert RangeProof.from_bytes(proof.to_bytes(), fast) == proof


@pytest.mark.parametrize("backend", BACKENDS)
def test_small_ranges_on_both_backends(backend: str) -> None:
    group = get_group(backend)
    p = PedersenParams(group)
    for lo, hi, value in ((0, 3, 2), (10, 12, 10), (7, 7, 7)):
        c, o = p.commit(value, rng=rng())
        rel = RangeRelation(p, c, lo, hi)
        rel.verify(rel.prove(o, rng=rng("r")))


@settings(max_examples=25, deadline=None)
@given(lo=st.integers(0, 2**70), width=st.integers(0, 2**20), data=st.data())
def test_range_property(lo: int, width: int, data: st.DataObject) -> None:
    group = get_group("coincurve")
    p = PedersenParams(group)
    value = data.draw(st.integers(lo, lo + width))
    c, o = p.commit(value)
    rel = RangeRelation(p, c, lo, lo + width)
    rel.verify(rel.prove(o))
    if lo > 0:
        with pytest.raises(InvalidInputError):
            RangeRelation(p, c, value + 1, value + 1 + width).prove(o)


@settings(max_examples=20, deadline=None)
@given(values=st.lists(st.integers(0, 2**64), min_size=1, max_size=6, unique=True), data=st.data())
def test_membership_property(values: list[int], data: st.DataObject) -> None:
    group = get_group("coincurve")
    p = PedersenParams(group)
    member = data.draw(st.sampled_from(values))
    c, o = p.commit(member)
    rel = MembershipRelation(p, c, values)
    rel.verify(rel.prove(o))


def test_range_proof_parsing_is_strict(fast: Group) -> None:
    p = PedersenParams(fast)
    c, o = p.commit(20, rng=rng())
    rel = RangeRelation(p, c, 18, 149)
    data = rel.prove(o, rng=rng()).to_bytes()
    bad_inputs = [
        b"",
        bytes([65]) + data[1:],
        bytes([7]) + data[1:],
        data[:1] + b"\x04" + data[2:],  # bad prefix of the first bit commitment
        data[:1] + b"\x02" + b"\xff" * 32 + data[34:],  # x >= p
    ]
    for bad in bad_inputs:
        with pytest.raises(InvalidProofError):
            rel.verify(bad)
    proof = RangeProof.from_bytes(data, fast)
    swapped = RangeProof(proof.bit_commitments[::-1], proof.proof)
    with pytest.raises(InvalidProofError):
        rel.verify(swapped)
    other_backend = RangeProof.from_bytes(data, get_group("py_ecc"))
    with pytest.raises(InvalidProofError):
        rel.verify(other_backend)


# -- known-answer vectors ---------------------------------------------------------------

PROOFS = load_vectors("proofs.json")
_STEP_MESSAGES = {
    "challenge": ("does not verify",),
    "length": ("length", "wrong"),
    "decode": ("malformed", "non-canonical"),
    "decode-or-bit-sum": ("malformed", "add up", "bad bit commitment"),
}


def _load_make_vectors():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "vectors" / "zk" / "make_vectors.py"
    spec = importlib.util.spec_from_file_location("pets_zk_make_vectors", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("backend", BACKENDS)
def test_proof_vectors_regenerate_on_both_backends(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _load_make_vectors()
    monkeypatch.setattr(module, "get_group", lambda: get_group(backend))
    regenerated = module.proof_vectors()
    assert regenerated == PROOFS


def test_proof_vectors_reject_at_named_step() -> None:
    group = get_group("coincurve")
    p = PedersenParams(group, 2)
    r = DeterministicRng(b"statement-inputs")
    x = group.random_scalar(r)
    h = group.derive_generator("vectors/dleq-base")
    c1, _ = p.commit(42, rng=r)
    c2, _ = p.commit(42, rng=r)
    c3, _ = p.commit(7, rng=r)
    cv, _ = p.commit_vector([5, 9], rng=r)
    relations = {
        "schnorr": DLogRelation(group.mul_base(x)),
        "dleq": DLEQRelation(group.mul_base(x), group.generator, x * h, h),
        "opening": OpeningRelation(p, c1),
        "vector-opening": OpeningRelation(p, cv, 2),
        "equality": EqualityRelation(p, c1, c2),
        "linear": LinearRelation(p, [c1, c3], [2, 3], 105),
        "membership": MembershipRelation(p, c1, [7, 42, 1000]),
        "range-18-149": RangeRelation(p, c1, 18, 149),
    }
    assert {v["name"] for v in PROOFS["vectors"]} == set(relations)
    ctx = bytes.fromhex(PROOFS["context"])
    for vector in PROOFS["vectors"]:
        rel = relations[vector["name"]]
        rel.verify(bytes.fromhex(vector["proof"]), context=ctx)
        for reject in vector["rejects"]:
            with pytest.raises(InvalidProofError) as info:
                rel.verify(bytes.fromhex(reject["proof"]), context=ctx)
            message = str(info.value)
            assert any(m in message for m in _STEP_MESSAGES[reject["step"]]), (
                vector["name"],
                reject,
                message,
            )


def _count_group_calls(value: int) -> dict[str, int]:
    from pets.zk.group import Group, get_group
    from pets.zk.pedersen import PedersenParams
    from pets.zk.range_proof import RangeRelation

    params = PedersenParams(get_group("coincurve"))
    calls = {"lincomb": 0, "lincomb_secret": 0, "mul_base": 0, "sum": 0}
    originals = {name: getattr(Group, name) for name in calls}

    def counting(name: str):  # type: ignore[no-untyped-def]
        def wrapper(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            calls[name] += 1
            return originals[name](self, *args, **kwargs)

        return wrapper

    try:
        for name in calls:
            setattr(Group, name, counting(name))
        commitment, opening = params.commit(value)
        RangeRelation(params, commitment, 0, 2**16 - 1).prove(opening, context=b"t")
    finally:
        for name, fn in originals.items():
            setattr(Group, name, fn)
    return calls


def test_prover_work_does_not_depend_on_the_committed_bits() -> None:
    """Count the group operations (not time, which is noisy) a range proof makes."""
    assert _count_group_calls(0) == _count_group_calls(2**16 - 1)
