"""Polynomial operations the FLP needs (draft-irtf-cfrg-vdaf-20 §6.1.2-6.1.3).

Polynomials travel in the Lagrange basis over the first ``n`` powers of the
principal ``n``-th root of unity, as the draft prescribes. This module offers:

- ``ntt``/``inv_ntt``: radix-2 number-theoretic transform with cached twiddles;
- ``lagrange_coeffs(field, n, t)``: the ``n`` basis values ``L_i(t)`` so that a
  Lagrange-basis polynomial is evaluated at ``t`` by one dot product
  (barycentric formula for roots of unity, ``L_i(t) = x_i (t^n - 1) / (n (t - x_i))``);
  the draft's division-free ``poly_eval_batched`` computes the same value;
- ``extend_values(field, vals, n)``: the draft's ``extend_values_to_power_of_2``,
  as a cached matrix from the ``len(vals)`` known points to the missing ones;
- ``double_evaluations`` and ``poly_eval`` (monomial basis).

Every result depends only on the polynomial, never on the algorithm, so these
faster forms are interoperable with the draft's listings.
"""

from __future__ import annotations

from functools import cache
from itertools import repeat
from operator import mul
from typing import Any, Literal

import gmpy2
import numpy as np
from gmpy2 import mpz

from pets.vdaf.field import Field


def next_power_of_2(n: int) -> int:
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


@cache
def _twiddles(field: Field, n: int, inverse: bool) -> list[list[Any]]:
    """Per-stage twiddle tables (as ``mpz``) for an iterative radix-2 NTT of size ``n``."""
    p = field.MODULUS
    stages = []
    m = 2
    while m <= n:
        w = field.nth_root(m)
        if inverse:
            w = field.inv(w)
        half = m // 2
        tw = [mpz(1)] * half
        for j in range(1, half):
            tw[j] = tw[j - 1] * w % p
        stages.append(tw)
        m *= 2
    return stages


@cache
def _bitrev(n: int) -> list[int]:
    bits = n.bit_length() - 1
    return [int(format(i, f"0{bits}b")[::-1], 2) if bits else 0 for i in range(n)]


def _ntt_core(field: Field, a: list[Any], n: int, inverse: bool) -> list[Any]:
    """Unreduced radix-2 DIT butterflies; entries come back as ``mpz`` congruent mod p.

    Each stage runs as list comprehensions over strided slices (one slice per
    twiddle when that is the shorter loop, else one per block), so the Python
    loop count is ``O(sqrt(n) log n)`` rather than ``O(n log n)``. Only the
    twiddle products are reduced; sums grow by at most one bit per stage.
    """
    p = field.P
    x = [a[r] for r in _bitrev(n)]
    m = 2
    for tw in _twiddles(field, n, inverse):
        h = m // 2
        if h <= n // m:
            for j in range(h):
                w = tw[j]
                top = x[j::m]
                bot = x[j + h :: m] if j == 0 else [b * w % p for b in x[j + h :: m]]
                x[j::m] = [u + v for u, v in zip(top, bot, strict=True)]
                x[j + h :: m] = [u - v for u, v in zip(top, bot, strict=True)]
        else:
            for start in range(0, n, m):
                top = x[start : start + h]
                bot = [b * w % p for b, w in zip(x[start + h : start + m], tw, strict=True)]
                x[start : start + h] = [u + v for u, v in zip(top, bot, strict=True)]
                x[start + h : start + m] = [u - v for u, v in zip(top, bot, strict=True)]
        m *= 2
    return x


def ntt(field: Field, coeffs: list[int], n: int) -> list[int]:
    """Evaluations of the polynomial ``coeffs`` at ``W_n^i`` for ``i < n``."""
    p = field.P
    a = list(coeffs) + [0] * (n - len(coeffs))
    if n == 1:
        return [a[0] % p]
    return [int(v % p) for v in _ntt_core(field, a, n, inverse=False)]


def inv_ntt(field: Field, vals: list[int], n: int) -> list[int]:
    """Monomial coefficients of the polynomial with ``vals[i] = p(W_n^i)``."""
    p = field.P
    if n == 1:
        return [vals[0] % p]
    n_inv = field.inv(n)
    return [int(v * n_inv % p) for v in _ntt_core(field, list(vals), n, inverse=True)]


@cache
def _doubling_twist(field: Field, n: int) -> list[Any]:
    """``s^i / n`` with ``s`` the principal ``2n``-th root: shifts the evaluation coset."""
    p = field.MODULUS
    s = field.nth_root(2 * n)
    n_inv = field.inv(n)
    out = [mpz(n_inv)] * n
    for i in range(1, n):
        out[i] = out[i - 1] * s % p
    return out


def double_evaluations_raw(field: Field, vals: list[int]) -> list[Any]:
    """Like :func:`double_evaluations` but unreduced (entries congruent mod p)."""
    n = len(vals)
    if n == 1:
        return [vals[0], vals[0]]
    p = field.P
    coeffs = _ntt_core(field, vals, n, inverse=True)
    twisted = [c * t % p for c, t in zip(coeffs, _doubling_twist(field, n), strict=True)]
    odd = _ntt_core(field, twisted, n, inverse=False)
    out: list[Any] = [0] * (2 * n)
    out[0::2] = vals
    out[1::2] = odd
    return out


@cache
def _doubling_matrix(field: Field, n: int) -> list[list[int]]:
    """Row ``k``: the linear map from the ``n`` values at ``W_n`` to the value at the
    ``k``-th odd point of ``W_2n`` (what :func:`double_evaluations` computes), made
    once per size by applying it to the unit vectors."""
    cols = [double_evaluations(field, [int(j == i) for j in range(n)])[1::2] for i in range(n)]
    return [[cols[i][k] for i in range(n)] for k in range(n)]


def double_evaluations_odd_many(field: Field, polys: list[list[Any]]) -> list[list[int]]:
    """The odd points of :func:`double_evaluations` for many polynomials of one length
    ``n`` at once, by point: ``out[k][w]`` is polynomial ``w`` at the ``k``-th odd point,
    congruent mod p (not reduced, below ``n p^2``). Inputs must lie in ``[0, p)``.

    The doubling is a fixed ``n x n`` matrix, so each output row is one dot product
    of that row with the input columns, and a column of all polynomials packs into
    one integer (Kronecker substitution: a slot per polynomial, wide enough that the
    slots' sums never carry): ``n^2`` big-int products in C instead of two NTTs per
    polynomial in Python (64 wires of 16 points: about 0.35 ms instead of 2.5 ms).
    """
    n, count = len(polys[0]), len(polys)
    rows = _doubling_matrix(field, n)
    width = (16 * field.ENCODED_SIZE + n.bit_length() + 8) // 8  # bytes per slot
    little: Literal["little"] = "little"
    packed = [
        int.from_bytes(b"".join([int(v).to_bytes(width, little) for v in col]), little)
        for col in zip(*polys, strict=True)
    ]
    out = []
    for row in rows:
        raw = sum(map(mul, row, packed)).to_bytes(width * count, little)
        slots = np.frombuffer(raw, dtype=f"S{width}").tolist()
        out.append(list(map(int.from_bytes, slots, repeat(little, count))))
    return out


def double_evaluations(field: Field, vals: list[int]) -> list[int]:
    """``2n`` evaluations over the ``2n``-th roots from ``n`` over the ``n``-th roots.

    The draft's ``double_evaluations`` (§6.1.3): the even points are the input;
    the odd points are the polynomial on the coset ``s W_n`` (one inverse NTT,
    a twist by ``s^i / n``, one forward NTT of size ``n``).
    """
    p = field.P
    return [int(v % p) for v in double_evaluations_raw(field, vals)]


def poly_eval(field: Field, coeffs: list[int], x: int) -> int:
    """Horner evaluation of a monomial-basis polynomial."""
    p = field.MODULUS
    acc = 0
    for c in reversed(coeffs):
        acc = (acc * x + c) % p
    return acc


@cache
def _mpz_nodes(field: Field, n: int) -> list[Any]:
    return [mpz(x) for x in field.nth_root_powers(n)]


def lagrange_coeffs_multi(field: Field, sizes: tuple[int, ...], t: int) -> list[list[int]]:
    """``[L_0(t), ..., L_{n-1}(t)]`` over the nodes ``W_n``, for each ``n`` in ``sizes``.

    All sizes are powers of two, so every node set is a subset of the largest
    one and a single batch inversion (Montgomery's trick) of ``t - x`` over the
    largest set serves them all. Arithmetic runs on gmpy2 ``mpz`` (about twice
    CPython's speed for 128-bit products on the target machine).
    """
    p = field.P
    big = max(sizes)
    nodes = _mpz_nodes(field, big)
    tt = mpz(t % p)
    diffs = [(tt - x) % p for x in nodes]
    if 0 in diffs:
        if len(sizes) > 1:  # t is a node of the largest set, maybe not of the others
            return [lagrange_coeffs_multi(field, (n,), t)[0] for n in sizes]
        return [[1 if d == 0 else 0 for d in diffs]]  # t is a node: indicator vector
    prefix = [mpz(1)] * big
    acc = mpz(1)
    for i, d in enumerate(diffs):
        prefix[i] = acc
        acc = acc * d % p
    inv_acc = gmpy2.invert(acc, p)
    invs = [mpz(0)] * big
    for i in range(big - 1, -1, -1):
        invs[i] = prefix[i] * inv_acc % p
        inv_acc = inv_acc * diffs[i] % p
    out = []
    for n in sizes:
        step = big // n
        scale = (gmpy2.powmod(tt, n, p) - 1) * gmpy2.invert(n, p) % p
        xs = nodes[::step]
        out.append([x * i * scale % p for x, i in zip(xs, invs[::step], strict=True)])
    return out


def lagrange_coeffs(field: Field, n: int, t: int) -> list[int]:
    """``[L_0(t), ..., L_{n-1}(t)]`` for the nodes ``W_n^i``."""
    return lagrange_coeffs_multi(field, (n,), t)[0]


def dot(field: Field, a: list[Any], b: list[Any]) -> Any:
    """Inner product with a single final reduction (``int`` or ``mpz``)."""
    return sum(map(mul, a, b)) % field.P


@cache
def _extension_matrix(field: Field, known: int, n: int) -> list[list[int]]:
    """Rows ``k = known..n-1``: ``L_i(x_k)`` over the first ``known`` nodes of ``W_n``."""
    p = field.MODULUS
    x = field.nth_root_powers(n)
    # Barycentric weights w_i = 1 / prod_{j != i} (x_i - x_j).
    w = []
    for i in range(known):
        prod = 1
        for j in range(known):
            if j != i:
                prod = prod * (x[i] - x[j]) % p
        w.append(field.inv(prod))
    rows = []
    for k in range(known, n):
        ell = 1
        for j in range(known):
            ell = ell * (x[k] - x[j]) % p
        rows.append([ell * w[i] % p * field.inv((x[k] - x[i]) % p) % p for i in range(known)])
    return rows


def extend_values(field: Field, vals: list[int], n: int) -> list[int]:
    """The draft's ``extend_values_to_power_of_2``: values at all ``n`` nodes of ``W_n``."""
    known = len(vals)
    if known == n:
        return list(vals)
    return list(vals) + [dot(field, row, vals) for row in _extension_matrix(field, known, n)]
