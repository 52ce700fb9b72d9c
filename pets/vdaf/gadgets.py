"""FLP gadgets of draft-irtf-cfrg-vdaf-20 Appendix A: Mul, PolyEval, ParallelSum.

A gadget is the non-affine sub-circuit whose calls the prover interpolates.
``eval`` computes one call; ``eval_poly`` evaluates the gadget over Lagrange-basis
wire polynomials of length ``p`` (values at the ``p``-th roots of unity) and
returns the gadget polynomial's values at the ``n``-th roots of unity, with
``n = next_power_of_2(gadget_poly_len(DEGREE, p))``.
"""

from __future__ import annotations

from operator import mul

from pets.vdaf.field import Field
from pets.vdaf.poly import (
    double_evaluations_odd_many,
    double_evaluations_raw,
    inv_ntt,
    next_power_of_2,
    ntt,
    poly_eval,
)


def wire_poly_len(gadget_calls: int) -> int:
    """Coordinates of each wire polynomial: seed plus one per call, to a power of two."""
    return next_power_of_2(1 + gadget_calls)


def gadget_poly_len(degree: int, wire_len: int) -> int:
    """Coordinates of a gadget polynomial sent in the proof."""
    return degree * (wire_len - 1) + 1


#: Wire polynomials up to this length are doubled all at once by a fixed matrix
#: (:func:`~pets.vdaf.poly.double_evaluations_odd_many`, O(n^2) per wire in C);
#: longer ones by NTTs (O(n log n) in Python). Measured crossover: 64 (32 points: 5.6
#: vs 9.4 ms for 66 wires; 64: 27 vs 26 ms; 128: 153 vs 72 ms).
BATCHED_DOUBLING = 32


class Gadget:
    ARITY: int
    DEGREE: int

    def eval(self, field: Field, inp: list[int]) -> int:
        raise NotImplementedError

    def eval_poly(self, field: Field, wires: list[list[int]]) -> list[int]:
        raise NotImplementedError


class Mul(Gadget):
    """``Mul(x, y) = x * y`` (degree 2)."""

    ARITY = 2
    DEGREE = 2

    def eval(self, field: Field, inp: list[int]) -> int:
        return inp[0] * inp[1] % field.MODULUS

    def eval_poly(self, field: Field, wires: list[list[int]]) -> list[int]:
        p = field.P
        a = double_evaluations_raw(field, wires[0])
        b = double_evaluations_raw(field, wires[1])
        return [int(x * y % p) for x, y in zip(a, b, strict=True)]


class PolyEval(Gadget):
    """``PolyEval(x) = P(x)`` for fixed integer coefficients (degree of ``P``)."""

    ARITY = 1

    def __init__(self, coeffs: list[int], num_calls: int) -> None:
        while coeffs and coeffs[-1] == 0:
            coeffs = coeffs[:-1]
        if not coeffs:
            raise ValueError("invalid polynomial: zero length")
        self.coeffs = coeffs
        self.DEGREE = len(coeffs) - 1
        self.n = next_power_of_2(gadget_poly_len(self.DEGREE, wire_poly_len(num_calls)))

    def eval(self, field: Field, inp: list[int]) -> int:
        return poly_eval(field, [c % field.MODULUS for c in self.coeffs], inp[0])

    def eval_poly(self, field: Field, wires: list[list[int]]) -> list[int]:
        mon = inv_ntt(field, wires[0], len(wires[0]))
        xs = ntt(field, mon, self.n)
        coeffs = [c % field.MODULUS for c in self.coeffs]
        return [poly_eval(field, coeffs, x) for x in xs]


class ParallelSum(Gadget):
    """Sum of ``count`` parallel calls of a subcircuit (arity ``count * sub.ARITY``)."""

    def __init__(self, subcircuit: Gadget, count: int) -> None:
        self.subcircuit = subcircuit
        self.count = count
        self.ARITY = subcircuit.ARITY * count
        self.DEGREE = subcircuit.DEGREE

    def eval(self, field: Field, inp: list[int]) -> int:
        a = self.subcircuit.ARITY
        if isinstance(self.subcircuit, Mul):
            return sum(map(mul, inp[0 : 2 * self.count : 2], inp[1 : 2 * self.count : 2])) % (
                field.MODULUS
            )
        return (
            sum(self.subcircuit.eval(field, inp[i * a : (i + 1) * a]) for i in range(self.count))
            % field.MODULUS
        )

    def eval_poly(self, field: Field, wires: list[list[int]]) -> list[int]:
        p = field.P
        size = next_power_of_2(gadget_poly_len(self.DEGREE, len(wires[0])))
        a = self.subcircuit.ARITY
        if isinstance(self.subcircuit, Mul) and size == 2 * len(wires[0]) <= 2 * BATCHED_DOUBLING:
            # Point by point: the sum over calls of (even wire) * (odd wire), one
            # reduction per point; the wires' values at the new (odd) points come from
            # one batched doubling of every wire (double_evaluations_odd_many).
            # Wire values are reduced (the prover's), as the batched doubling requires.
            odd = double_evaluations_odd_many(field, wires)
            out = [0] * size
            out[0::2] = [
                sum(map(mul, col[0::2], col[1::2])) % p for col in zip(*wires, strict=True)
            ]
            out[1::2] = [sum(map(mul, row[0::2], row[1::2])) % p for row in odd]
            return [int(x) for x in out]
        if isinstance(self.subcircuit, Mul):
            acc = [0] * size
            for i in range(self.count):
                x = [u % p for u in double_evaluations_raw(field, wires[2 * i])]
                y = [v % p for v in double_evaluations_raw(field, wires[2 * i + 1])]
                acc = [s + u * v for s, u, v in zip(acc, x, y, strict=True)]
            return [int(s % p) for s in acc]
        acc = [0] * size
        for i in range(self.count):
            cur = self.subcircuit.eval_poly(field, wires[i * a : (i + 1) * a])
            acc = [s + c for s, c in zip(acc, cur, strict=False)]
        return [s % p for s in acc]
