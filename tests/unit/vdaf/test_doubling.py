"""The batched doubling of wire polynomials equals the per-polynomial NTT form.

``double_evaluations_odd_many`` (a fixed matrix applied to all wires at once,
Kronecker-packed) must give exactly what ``double_evaluations`` gives for each
wire, for both fields and every power-of-two length it is used for, including
extreme values (0 and p - 1), so the prover's bytes cannot change.
"""

from __future__ import annotations

import random

import pytest

from pets.vdaf import Field64, Field128
from pets.vdaf.field import Field
from pets.vdaf.gadgets import BATCHED_DOUBLING, Mul, ParallelSum
from pets.vdaf.poly import double_evaluations, double_evaluations_odd_many


@pytest.mark.parametrize("field", [Field64, Field128], ids=lambda f: f.name)
@pytest.mark.parametrize("n", [2, 4, 8, 16, 32])
def test_batched_doubling_matches_ntt(field: Field, n: int) -> None:
    rng = random.Random(n)
    p = field.MODULUS
    wires = [[rng.randrange(p) for _ in range(n)] for _ in range(7)]
    wires.append([p - 1] * n)
    wires.append([0] * n)
    odd = double_evaluations_odd_many(field, wires)
    for w, poly in enumerate(wires):
        assert [odd[k][w] % p for k in range(n)] == double_evaluations(field, poly)[1::2]


@pytest.mark.parametrize("n", [4, 32, 2 * BATCHED_DOUBLING])
def test_parallel_sum_mul_same_on_both_paths(n: int) -> None:
    rng = random.Random(n)
    field = Field128
    gadget = ParallelSum(Mul(), 3)
    wires = [[rng.randrange(field.MODULUS) for _ in range(n)] for _ in range(6)]
    expected = [0] * (2 * n)
    for i in range(3):
        x = double_evaluations(field, wires[2 * i])
        y = double_evaluations(field, wires[2 * i + 1])
        expected = [(s + u * v) % field.MODULUS for s, u, v in zip(expected, x, y, strict=True)]
    assert gadget.eval_poly(field, wires) == expected
