"""Pure-Python reference backend built on ``py_ecc.secp256k1``.

Slow (milliseconds per multiplication) but simple and independent of
libsecp256k1: it is the reference the fast backend is tested against. Points
are affine ``(x, y)`` tuples; the identity is ``None`` (py_ecc's own ``(0, 0)``
convention is translated at the boundary). Linear combinations are summed in
Jacobian coordinates with a single final inversion.
"""

from __future__ import annotations

from collections.abc import Sequence

from py_ecc.secp256k1 import secp256k1 as _ec

from pets.zk.curve import GX, GY, N, P, decompress

Raw = tuple[int, int]


def _to_affine(jac: tuple[int, int, int]) -> Raw | None:
    if jac[1] == 0 or jac[2] == 0:  # py_ecc marks infinity with y == 0 (or z == 0)
        return None
    x, y = _ec.from_jacobian(jac)
    return (x, y)


class PyEccBackend:
    """Raw arithmetic on affine tuples via py_ecc."""

    name = "py_ecc"

    def __init__(self) -> None:
        self.generator: Raw = (GX, GY)

    def decode(self, data: bytes) -> Raw:
        point = decompress(int.from_bytes(data[1:], "big"), data[0] == 3)
        if point is None:
            raise ValueError("not a point on secp256k1")
        return point

    def encode(self, raw: Raw) -> bytes:
        return bytes([2 + (raw[1] & 1)]) + raw[0].to_bytes(32, "big")

    def from_affine(self, x: int, y: int) -> Raw:
        return (x, y)

    def add(self, a: Raw | None, b: Raw | None) -> Raw | None:
        if a is None:
            return b
        if b is None:
            return a
        return _to_affine(_ec.jacobian_add(_ec.to_jacobian(a), _ec.to_jacobian(b)))

    def neg(self, a: Raw | None) -> Raw | None:
        return None if a is None else (a[0], (P - a[1]) % P)

    def mul(self, k: int, a: Raw | None) -> Raw | None:
        k %= N
        if a is None or k == 0:
            return None
        return _to_affine(_ec.jacobian_multiply(_ec.to_jacobian(a), k))

    def mul_base(self, k: int) -> Raw | None:
        return self.mul(k, self.generator)

    def sum(self, raws: Sequence[Raw]) -> Raw | None:
        acc = (0, 0, 1)
        for raw in raws:
            acc = _ec.jacobian_add(acc, _ec.to_jacobian(raw))
        return _to_affine(acc)

    def lincomb(self, base_coeff: int, terms: Sequence[tuple[int, Raw, bytes]]) -> Raw | None:
        acc = (0, 0, 1)  # py_ecc's Jacobian identity
        if base_coeff:
            acc = _ec.jacobian_multiply(_ec.to_jacobian(self.generator), base_coeff)
        for k, raw, _enc in terms:
            acc = _ec.jacobian_add(acc, _ec.jacobian_multiply(_ec.to_jacobian(raw), k))
        return _to_affine(acc)
