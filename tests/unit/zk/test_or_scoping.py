"""One secret in two different Or statements of one conjunction is refused (issue 15 item 14).

Each branch of an Or is its own scope with its own responses, so the same
:class:`Secret` in two *sibling* Ors was proved as two independent witnesses:
the forged proof below (x = 5 in the first Or, x = 7 in the second) verified.
The engine cannot enforce that equality without a cross-scope proof, so such
statements are refused when they are compiled; a secret shared by the
branches of *one* Or (alternatives, only one of them real) stays allowed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest

from pets.errors import InvalidInputError
from pets.zk.group import Group
from pets.zk.sigma import And, DLRep, Or, Secret
from tests.unit.zk.helpers import rng


class _Flipping(Mapping[Secret, int]):
    """A dishonest witness: ``x`` alternates between two values on every lookup."""

    def __init__(self, x: Secret, values: tuple[int, int]) -> None:
        self._x, self._values, self._calls = x, values, 0

    def __getitem__(self, key: Secret) -> int:
        if key is not self._x:
            raise KeyError(key)
        value = self._values[self._calls % 2]
        self._calls += 1
        return value

    def __contains__(self, key: object) -> bool:
        return key is self._x

    def __iter__(self) -> Iterator[Secret]:
        return iter([self._x])

    def __len__(self) -> int:
        return 1


def _two_ors(group: Group) -> tuple[And, Secret]:
    g = group.generator
    x, u, v = Secret("x"), Secret("u"), Secret("v")
    r1 = group.derive_generator("test/or-scope/1")  # nobody knows log_G of these
    r2 = group.derive_generator("test/or-scope/2")
    stmt = And(
        Or(DLRep(group.mul_base(5), x * g), DLRep(r1, u * g)),
        Or(DLRep(group.mul_base(7), x * g), DLRep(r2, v * g)),
    )
    return stmt, x


def test_secret_in_two_sibling_ors_is_refused(fast: Group) -> None:
    stmt, x = _two_ors(fast)
    with pytest.raises(InvalidInputError, match="two different Or"):
        stmt.prove(_Flipping(x, (5, 7)), rng=rng("or-scope"))
    with pytest.raises(InvalidInputError, match="two different Or"):
        stmt.verify(b"\x00" * 32 * 7)


def test_secret_in_ors_nested_in_sibling_branches_is_refused(fast: Group) -> None:
    g = fast.generator
    x, y = Secret("x"), Secret("y")
    a, b, c = (fast.derive_generator(f"test/or-scope/n{i}") for i in range(3))
    inner1 = Or(DLRep(a, x * g), DLRep(b, y * g))
    inner2 = Or(DLRep(c, x * g), DLRep(a, y * g))
    # Both inner Ors sit in the same branch of the outer Or: x would be unbound.
    stmt = Or(inner1 & inner2, DLRep(b, Secret("z") * g))
    with pytest.raises(InvalidInputError, match="two different Or"):
        stmt.proof_size  # noqa: B018 - compiling is the point


def test_secret_shared_by_branches_of_one_or_is_allowed(fast: Group) -> None:
    g, h = fast.generator, fast.derive_generator("test/or-scope/h")
    x = Secret("x")
    stmt = Or(DLRep(fast.mul_base(5), x * g), DLRep(h, x * g))
    proof = stmt.prove({x: 5}, rng=rng("one-or"))
    stmt.verify(proof)
    # Alternatives in different branches of an outer Or are alternatives too.
    outer = Or(stmt & DLRep(fast.mul_base(3), Secret("y") * g), DLRep(h, x * g))
    outer.proof_size  # noqa: B018 - compiles without error
