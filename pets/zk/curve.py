"""secp256k1 domain parameters (SEC 2, section 2.4.1).

Shared by both group backends and by the pure-Python hash-to-curve code, so
that every module agrees on one set of constants.
"""

from __future__ import annotations

#: Field prime p = 2^256 - 2^32 - 977.
P = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F
#: Prime group order n (the cofactor is 1, so every point but the identity generates).
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
#: Curve equation y^2 = x^3 + B (a = 0).
B = 7
#: Standard base point G.
GX = 0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798
GY = 0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8

#: Byte length of a canonical scalar and of a field element.
SCALAR_BYTES = 32
#: Byte length of a SEC1 compressed point (the identity is the single byte 0x00).
POINT_BYTES = 33


def is_on_curve(x: int, y: int) -> bool:
    """True when (x, y) is an affine point of secp256k1 with canonical coordinates."""
    return 0 <= x < P and 0 <= y < P and (y * y - x * x * x - B) % P == 0


def sqrt_mod_p(a: int) -> int | None:
    """Square root in F_p (p = 3 mod 4, so a^((p+1)/4)), or None when a is a non-residue."""
    r = pow(a, (P + 1) // 4, P)
    return r if r * r % P == a % P else None


def decompress(x: int, odd: bool) -> tuple[int, int] | None:
    """Affine point with abscissa x and the given y parity, or None if x is not on the curve."""
    if not 0 <= x < P:
        return None
    y = sqrt_mod_p((x * x * x + B) % P)
    if y is None:
        return None
    if (y & 1) != odd:
        y = P - y
    return x, y


def affine_add(p1: tuple[int, int] | None, p2: tuple[int, int] | None) -> tuple[int, int] | None:
    """Affine addition with None as the identity (used off the hot path only)."""
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    x1, y1 = p1
    x2, y2 = p2
    if x1 == x2:
        if (y1 + y2) % P == 0:
            return None
        lam = 3 * x1 * x1 * pow(2 * y1, -1, P) % P
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, P) % P
    x3 = (lam * lam - x1 - x2) % P
    return x3, (lam * (x1 - x3) - y1) % P
