"""Generic sigma engine: AND / OR composition, scoping, strict proofs."""

from __future__ import annotations

import pytest

from pets.errors import InvalidInputError, InvalidProofError
from pets.zk.curve import N
from pets.zk.group import Group, get_group
from pets.zk.schnorr import DLogRelation
from pets.zk.sigma import And, DLRep, Or, Secret, SigmaProof
from tests.unit.zk.helpers import flipped, rng


def _setup(group: Group):
    g, h = group.generator, group.derive_generator("sigma/h")
    x, r = Secret("x"), Secret("r")
    y = group.mul_base(11)
    c = 11 * h + group.mul_base(5)
    return g, h, x, r, y, c


def test_and_shares_secrets_and_verifies(group: Group) -> None:
    g, h, x, r, y, c = _setup(group)
    stmt = DLRep(y, x * g) & DLRep(c, x * h + r * g)
    proof = stmt.prove({x: 11, r: 5}, rng=rng())
    stmt.verify(proof)
    stmt.verify(proof.to_bytes())
    assert stmt.proof_size == 3 == len(proof.scalars)
    with pytest.raises(InvalidInputError):  # x differs between the two equations
        (DLRep(y, x * g) & DLRep(12 * h + group.mul_base(5), x * h + r * g)).prove({x: 11, r: 5})


def test_or_hides_which_branch_and_both_branches_prove(group: Group) -> None:
    g, _h, _x, _r, y, _c = _setup(group)
    a, b = Secret("a"), Secret("b")
    stmt = DLRep(y, a * g) | DLRep(group.mul_base(99), b * g)
    p1 = stmt.prove({a: 11}, rng=rng("1"))
    p2 = stmt.prove({b: 99}, rng=rng("2"))
    for p in (p1, p2):
        stmt.verify(p)
        assert len(p.to_bytes()) == 32 * stmt.proof_size == 32 * 4
    with pytest.raises(InvalidInputError):
        stmt.prove({a: 12, b: 98})


def test_nested_composition(fast: Group) -> None:
    g, h, x, _r, y, c = _setup(fast)
    a, b, d = Secret("a"), Secret("b"), Secret("d")
    inner = DLRep(c, a * h + b * g) | (DLRep(y, d * g) & DLRep(11 * h, d * h))
    stmt = DLRep(fast.mul_base(3), x * g) & (inner | DLRep(fast.mul_base(4), Secret() * g))
    for witness in ({x: 3, a: 11, b: 5}, {x: 3, d: 11}):
        proof = stmt.prove(witness, rng=rng())
        stmt.verify(proof)
        for bad in flipped(proof.to_bytes(), 7):
            with pytest.raises(InvalidProofError):
                stmt.verify(bad)


def test_secret_inside_and_outside_an_or_is_refused(fast: Group) -> None:
    g, h, x, r, y, c = _setup(fast)
    with pytest.raises(InvalidInputError):
        (DLRep(y, x * g) & (DLRep(c, x * h) | DLRep(c, r * g))).prove({x: 1})
    with pytest.raises(InvalidInputError):
        Or(DLRep(y, x * g))
    with pytest.raises(InvalidInputError):
        DLRep(y, [])
    with pytest.raises(InvalidInputError):
        And()


def test_points_from_two_backends_refused() -> None:
    a, b = get_group("coincurve"), get_group("py_ecc")
    x = Secret()
    with pytest.raises(InvalidInputError):
        DLRep(a.generator, x * b.generator).prove({x: 1})


def test_byte_identical_across_backends() -> None:
    proofs = []
    for name in ("coincurve", "py_ecc"):
        group = get_group(name)
        g, h, x, r, y, c = _setup(group)
        stmt = (DLRep(y, x * g) & DLRep(c, x * h + r * g)) | DLRep(h, Secret() * g)
        proofs.append(stmt.prove({x: 11, r: 5}, context=b"ctx", rng=rng("same")).to_bytes())
    assert proofs[0] == proofs[1]


def test_every_byte_and_context_and_statement_change_rejected(fast: Group) -> None:
    g, h, x, r, y, c = _setup(fast)
    stmt = DLRep(y, x * g) & DLRep(c, x * h + r * g)
    proof = stmt.prove({x: 11, r: 5}, context=b"ctx", rng=rng())
    data = proof.to_bytes()
    for bad in flipped(data):
        with pytest.raises(InvalidProofError):
            stmt.verify(bad, context=b"ctx")
    with pytest.raises(InvalidProofError):
        stmt.verify(proof, context=b"ctx2")
    for other in (
        DLRep(y, x * g) & DLRep(c, x * h + r * h),
        DLRep(y + g, x * g) & DLRep(c, x * h + r * g),
        DLRep(c, x * h + r * g) & DLRep(y, x * g),
    ):
        with pytest.raises(InvalidProofError):
            other.verify(proof, context=b"ctx")


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00" * 31, b"\x00" * 33, N.to_bytes(32, "big"), b"\xff" * 64, "text"],
    ids=["empty", "31", "33", "n", "big", "str"],
)
def test_malformed_proof_bytes(data: bytes) -> None:
    with pytest.raises(InvalidProofError):
        SigmaProof.from_bytes(data)  # type: ignore[arg-type]


def test_wrong_proof_length_rejected(fast: Group) -> None:
    rel = DLogRelation(fast.mul_base(7))
    proof = rel.prove(7)
    with pytest.raises(InvalidProofError):
        rel.verify(SigmaProof((*proof.scalars, 1)))
    with pytest.raises(InvalidProofError):
        rel.verify(proof.to_bytes()[:32])


def test_relations_compose_with_operators(fast: Group) -> None:
    a, b = DLogRelation(fast.mul_base(3)), DLogRelation(fast.mul_base(4))
    both = a & b
    both.verify(both.prove({a.secret: 3, b.secret: 4}))
    either = a | b
    either.verify(either.prove({b.secret: 4}))
    mixed = a & DLRep(fast.mul_base(5), Secret() * fast.generator)
    assert isinstance(mixed, And)
