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

from pets.vdaf.field import Field


def next_power_of_2(n: int) -> int:
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


@cache
def _twiddles(field: Field, n: int, inverse: bool) -> list[list[int]]:
    """Per-stage twiddle tables for an iterative radix-2 NTT of size ``n``."""
    p = field.MODULUS
    stages = []
    m = 2
    while m <= n:
        w = field.nth_root(m)
        if inverse:
            w = field.inv(w)
        half = m // 2
        tw = [1] * half
        for j in range(1, half):
            tw[j] = tw[j - 1] * w % p
        stages.append(tw)
        m *= 2
    return stages


@cache
def _bitrev(n: int) -> list[int]:
    bits = n.bit_length() - 1
    return [int(format(i, f"0{bits}b")[::-1], 2) if bits else 0 for i in range(n)]


def _ntt_core(field: Field, a: list[int], n: int, inverse: bool) -> list[int]:
    p = field.MODULUS
    rev = _bitrev(n)
    x = [a[r] for r in rev]
    m = 2
    for tw in _twiddles(field, n, inverse):
        half = m // 2
        for start in range(0, n, m):
            for j in range(half):
                u = x[start + j]
                v = x[start + j + half] * tw[j] % p
                x[start + j] = (u + v) % p
                x[start + j + half] = (u - v) % p
        m *= 2
    return x


def ntt(field: Field, coeffs: list[int], n: int) -> list[int]:
    """Evaluations of the polynomial ``coeffs`` at ``W_n^i`` for ``i < n``."""
    a = list(coeffs) + [0] * (n - len(coeffs))
    if n == 1:
        return [a[0] % field.MODULUS]
    return _ntt_core(field, a, n, inverse=False)


def inv_ntt(field: Field, vals: list[int], n: int) -> list[int]:
    """Monomial coefficients of the polynomial with ``vals[i] = p(W_n^i)``."""
    if n == 1:
        return [vals[0] % field.MODULUS]
    p = field.MODULUS
    x = _ntt_core(field, list(vals), n, inverse=True)
    n_inv = field.inv(n)
    return [v * n_inv % p for v in x]


def double_evaluations(field: Field, vals: list[int]) -> list[int]:
    """``2n`` evaluations over the ``2n``-th roots from ``n`` over the ``n``-th roots."""
    n = len(vals)
    return ntt(field, inv_ntt(field, vals, n), 2 * n)


def poly_eval(field: Field, coeffs: list[int], x: int) -> int:
    """Horner evaluation of a monomial-basis polynomial."""
    p = field.MODULUS
    acc = 0
    for c in reversed(coeffs):
        acc = (acc * x + c) % p
    return acc


def lagrange_coeffs(field: Field, n: int, t: int) -> list[int]:
    """``[L_0(t), ..., L_{n-1}(t)]`` for the nodes ``W_n^i``."""
    p = field.MODULUS
    nodes = field.nth_root_powers(n)
    t %= p
    diffs = [(t - x) % p for x in nodes]
    if 0 in diffs:  # t is a node: the basis is an indicator vector
        return [1 if d == 0 else 0 for d in diffs]
    # Batch inversion (Montgomery's trick): one exponentiation for n inverses.
    prefix = [1] * n
    acc = 1
    for i, d in enumerate(diffs):
        prefix[i] = acc
        acc = acc * d % p
    inv_acc = field.inv(acc)
    invs = [0] * n
    for i in range(n - 1, -1, -1):
        invs[i] = prefix[i] * inv_acc % p
        inv_acc = inv_acc * diffs[i] % p
    scale = (pow(t, n, p) - 1) * field.inv(n) % p
    return [x * inv % p * scale % p for x, inv in zip(nodes, invs, strict=True)]


def dot(field: Field, a: list[int], b: list[int]) -> int:
    """Inner product with a single final reduction."""
    return sum(x * y for x, y in zip(a, b, strict=False)) % field.MODULUS


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
