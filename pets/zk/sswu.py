"""The simplified SWU map to secp256k1 (RFC 9380 section 6.6.2, appendix E.1), twice.

secp256k1 has A = 0, so RFC 9380 maps to the 3-isogenous curve
E': y^2 = x^3 + A'x + B' with the simplified SWU map and then applies the
3-isogeny E' -> E (section 6.6.3). Two implementations of the same function:

* :func:`map_to_curve` (the default, used by :mod:`pets.zk.hash_to_curve`):
  the straight-line map of appendix F.2 with ``sqrt_ratio`` for q = 3 mod 4
  (F.2.1.2), so one exponentiation per map instead of two or three, on
  ``gmpy2`` integers, with the isogeny's two denominators inverted together
  and :func:`add` for the final sum. About nine times faster than the
  reference (issue 16 item 3; numbers in benchmarks/test_bench_zk.py).
* :func:`map_to_curve_reference`: the direct transcription of section 6.6.2
  in plain Python integers (``is_square``, then ``sqrt``), kept as the
  independent reference.

Both are pinned to the RFC's appendix J.8.1 vectors and to each other on
10^4 random field elements and messages (``tests/unit/zk/``). Neither is
constant time: they only ever hash public inputs (generator labels,
public statements) or, for record linkage, identifiers that the holder
blinds afterwards on its own machine.
"""

from __future__ import annotations

import gmpy2

from pets.zk.curve import P, affine_add, sqrt_mod_p

# Simplified SWU parameters for E': y^2 = x^3 + A'x + B' (RFC 9380 section 8.7).
ISO_A = 0x3F8731ABDD661ADCA08A5558F0F5D272E953D363CB6F0E5D405447C01A444533
ISO_B = 1771
Z = P - 11

# 3-isogeny map constants (RFC 9380 appendix E.1), lowest degree first.
XNUM = (
    0x8E38E38E38E38E38E38E38E38E38E38E38E38E38E38E38E38E38E38DAAAAA8C7,
    0x07D3D4C80BC321D5B9F315CEA7FD44C5D595D2FC0BF63B92DFFF1044F17C6581,
    0x534C328D23F234E6E2A413DECA25CAECE4506144037C40314ECBD0B53D9DD262,
    0x8E38E38E38E38E38E38E38E38E38E38E38E38E38E38E38E38E38E38DAAAAA88C,
)
XDEN = (
    0xD35771193D94918A9CA34CCBB7B640DD86CD409542F8487D9FE6B745781EB49B,
    0xEDADC6F64383DC1DF7C4B2D51B54225406D36B641F5E41BBC52A56612A8C6D14,
    1,
)
YNUM = (
    0x4BDA12F684BDA12F684BDA12F684BDA12F684BDA12F684BDA12F684B8E38E23C,
    0xC75E0C32D5CB7C0FA9D0A54B12A0A6D5647AB046D686DA6FDFFC90FC201D71A3,
    0x29A6194691F91A73715209EF6512E576722830A201BE2018A765E85A9ECEE931,
    0x2F684BDA12F684BDA12F684BDA12F684BDA12F684BDA12F684BDA12F38E38D84,
)
YDEN = (
    0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFF93B,
    0x7A06534BB8BDB49FD5E9E6632722C2989467C1BFC8E8D978DFB425D2685C2573,
    0x6484AA716545CA2CF3A70C3FA8FE337E0A3D21162F0D6299A7BF8192BFD2A76F,
    1,
)

Affine = tuple[int, int]

# ---------------------------------------------------------------------------------------
# Reference: section 6.6.2 as written, plain integers.


def _is_square(a: int) -> bool:
    return a == 0 or pow(a, (P - 1) // 2, P) == 1


def map_to_curve_sswu(u: int) -> Affine:
    """Simplified SWU map F_p -> E' (RFC 9380 section 6.6.2), reference form."""
    u2 = u * u % P
    tv1 = (Z * Z * u2 * u2 + Z * u2) % P
    tv1 = pow(tv1, -1, P) if tv1 else 0  # inv0
    if tv1 == 0:
        x1 = ISO_B * pow(Z * ISO_A, -1, P) % P
    else:
        x1 = (-ISO_B * pow(ISO_A, -1, P) * (1 + tv1)) % P
    gx1 = (x1 * x1 * x1 + ISO_A * x1 + ISO_B) % P
    if _is_square(gx1):
        x, y = x1, sqrt_mod_p(gx1)
    else:
        x = Z * u2 * x1 % P
        y = sqrt_mod_p((x * x * x + ISO_A * x + ISO_B) % P)
    assert y is not None  # exactly one of gx1, gx2 is a square (section 6.6.2)
    if (u & 1) != (y & 1):  # sgn0 for m = 1 is the parity
        y = P - y
    return x, y


def _poly(coeffs: tuple[int, ...], x: int) -> int:
    acc = 0
    for c in reversed(coeffs):
        acc = (acc * x + c) % P
    return acc


def iso_map(x: int, y: int) -> Affine | None:
    """3-isogeny E' -> secp256k1 (RFC 9380 appendix E.1); None for the identity."""
    x_den = _poly(XDEN, x)
    y_den = _poly(YDEN, x)
    if x_den == 0 or y_den == 0:
        return None  # exceptional case: kernel of the isogeny maps to the identity
    x_out = _poly(XNUM, x) * pow(x_den, -1, P) % P
    y_out = y * _poly(YNUM, x) * pow(y_den, -1, P) % P
    return x_out, y_out


def map_to_curve_reference(u: int) -> Affine | None:
    """SSWU then the isogeny, reference form: one field element to a secp256k1 point."""
    return iso_map(*map_to_curve_sswu(u))


def add_reference(p1: Affine | None, p2: Affine | None) -> Affine | None:
    """Affine addition, reference form (None is the identity)."""
    return affine_add(p1, p2)


# ---------------------------------------------------------------------------------------
# Fast: appendix F.2 straight-line form on gmpy2 integers.

_MP = gmpy2.mpz(P)
_A = gmpy2.mpz(ISO_A)
_B = gmpy2.mpz(ISO_B)
_Z = gmpy2.mpz(Z)
_C1 = gmpy2.mpz((P - 3) // 4)  # sqrt_ratio constants for q = 3 mod 4 (F.2.1.2)
_C2 = gmpy2.mpz(sqrt_mod_p(P - Z) or 0)  # sqrt(-Z); -Z = 11 is a square mod p
assert _C2 * _C2 % _MP == (P - Z) % P
_XNUM = tuple(gmpy2.mpz(c) for c in XNUM)
_XDEN = tuple(gmpy2.mpz(c) for c in XDEN)
_YNUM = tuple(gmpy2.mpz(c) for c in YNUM)
_YDEN = tuple(gmpy2.mpz(c) for c in YDEN)


def _sqrt_ratio(u: gmpy2.mpz, v: gmpy2.mpz) -> tuple[bool, gmpy2.mpz]:
    """(u/v is square, sqrt(u/v) or sqrt(Z*u/v)): RFC 9380 F.2.1.2."""
    tv1 = v * v % _MP
    tv2 = u * v % _MP
    tv1 = tv1 * tv2 % _MP
    y1 = gmpy2.powmod(tv1, _C1, _MP) * tv2 % _MP
    tv3 = y1 * y1 % _MP * v % _MP
    if tv3 == u % _MP:
        return True, y1
    return False, y1 * _C2 % _MP


def _sswu(u: gmpy2.mpz) -> tuple[gmpy2.mpz, gmpy2.mpz, gmpy2.mpz]:
    """Simplified SWU (F.2) returning (x numerator, x denominator, y) on E'."""
    tv1 = _Z * (u * u % _MP) % _MP
    tv2 = (tv1 * tv1 + tv1) % _MP
    tv3 = _B * (tv2 + 1) % _MP
    tv4 = _A * ((_MP - tv2) if tv2 else _Z) % _MP  # A * CMOV(Z, -tv2, tv2 != 0)
    tv2 = tv3 * tv3 % _MP
    tv6 = tv4 * tv4 % _MP
    tv2 = (tv2 + _A * tv6) % _MP * tv3 % _MP
    tv6 = tv6 * tv4 % _MP
    tv2 = (tv2 + _B * tv6) % _MP
    is_square, y1 = _sqrt_ratio(tv2, tv6)
    if is_square:
        x_num, y = tv3, y1
    else:
        x_num, y = tv1 * tv3 % _MP, tv1 * u % _MP * y1 % _MP
    if (u & 1) != (y & 1):  # sgn0(u) == sgn0(y), m = 1
        y = (_MP - y) % _MP
    return x_num, tv4, y


def _horner(coeffs: tuple[gmpy2.mpz, ...], x: gmpy2.mpz) -> gmpy2.mpz:
    acc = coeffs[-1]
    for c in reversed(coeffs[:-1]):
        acc = (acc * x + c) % _MP
    return acc


def _map(u: int) -> tuple[gmpy2.mpz, gmpy2.mpz] | None:
    x_num, x_den_sswu, y = _sswu(gmpy2.mpz(u))
    x = x_num * gmpy2.invert(x_den_sswu, _MP) % _MP  # tv4 != 0 always (A, Z != 0)
    x_den = _horner(_XDEN, x)
    y_den = _horner(_YDEN, x)
    both = x_den * y_den % _MP
    if not both:
        return None  # kernel of the isogeny: the identity
    inv = gmpy2.invert(both, _MP)
    return (
        _horner(_XNUM, x) * (inv * y_den % _MP) % _MP,
        y * _horner(_YNUM, x) % _MP * (inv * x_den % _MP) % _MP,
    )


def map_to_curve(u: int) -> Affine | None:
    """SSWU then the isogeny (fast form): one field element to a secp256k1 point, or None."""
    point = _map(u)
    return None if point is None else (int(point[0]), int(point[1]))


def _add(
    p1: tuple[gmpy2.mpz, gmpy2.mpz] | None, p2: tuple[gmpy2.mpz, gmpy2.mpz] | None
) -> Affine | None:
    if p1 is None:
        return None if p2 is None else (int(p2[0]), int(p2[1]))
    if p2 is None:
        return int(p1[0]), int(p1[1])
    x1, y1 = p1
    x2, y2 = p2
    if x1 == x2:
        if (y1 + y2) % _MP == 0:
            return None
        lam = 3 * x1 * x1 % _MP * gmpy2.invert(2 * y1, _MP) % _MP
    else:
        lam = (y2 - y1) * gmpy2.invert(x2 - x1, _MP) % _MP
    x3 = (lam * lam - x1 - x2) % _MP
    return int(x3), int((lam * (x1 - x3) - y1) % _MP)


def map_and_add(u0: int, u1: int) -> Affine | None:
    """map_to_curve(u0) + map_to_curve(u1), staying in gmpy2 until the end (fast form)."""
    return _add(_map(u0), _map(u1))


def add(p1: Affine | None, p2: Affine | None) -> Affine | None:
    """Affine addition (fast form; None is the identity)."""
    return _add(
        None if p1 is None else (gmpy2.mpz(p1[0]), gmpy2.mpz(p1[1])),
        None if p2 is None else (gmpy2.mpz(p2[0]), gmpy2.mpz(p2[1])),
    )
