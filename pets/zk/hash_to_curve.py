"""RFC 9380 hashing to secp256k1: suite ``secp256k1_XMD:SHA-256_SSWU_RO_``.

Implements, in pure Python and independently of the group backends:

* ``expand_message_xmd`` with SHA-256 (RFC 9380 section 5.3.1);
* ``hash_to_field`` (section 5.2) with L = 48 bytes, used both for field
  elements of F_p and, with the group order as modulus, for scalars
  (``hash_to_scalar``): 48 bytes = 384 bits reduced mod a 256-bit prime leaves
  a bias below 2^-128, which is what section 5 asks for;
* the simplified SWU map onto the 3-isogenous curve E' (section 6.6.2), the
  3-isogeny map E' -> E (appendix E.1), and point addition (section 3), with
  cofactor 1 so ``clear_cofactor`` is the identity map.

Every vector of RFC 9380 appendix J.8.1 and of K.1 (SHA-256) is checked in
``tests/unit/zk/test_hash_to_curve.py``. This code is *not* constant time: it
only ever hashes public inputs (generator labels, public statements).
"""

from __future__ import annotations

import hashlib

from pets.errors import InvalidInputError
from pets.zk.curve import N, P, affine_add, sqrt_mod_p

SUITE_ID = b"secp256k1_XMD:SHA-256_SSWU_RO_"
#: Security parameter k = 128, so L = ceil((ceil(log2(p)) + k) / 8) = 48.
L = 48
_B_IN_BYTES = 32  # SHA-256 output size
_R_IN_BYTES = 64  # SHA-256 block size

# Simplified SWU parameters for E': y^2 = x^3 + A'x + B' (RFC 9380 section 8.7).
ISO_A = 0x3F8731ABDD661ADCA08A5558F0F5D272E953D363CB6F0E5D405447C01A444533
ISO_B = 1771
Z = P - 11

# 3-isogeny map constants (RFC 9380 appendix E.1).
_XNUM = (
    0x8E38E38E38E38E38E38E38E38E38E38E38E38E38E38E38E38E38E38DAAAAA8C7,
    0x07D3D4C80BC321D5B9F315CEA7FD44C5D595D2FC0BF63B92DFFF1044F17C6581,
    0x534C328D23F234E6E2A413DECA25CAECE4506144037C40314ECBD0B53D9DD262,
    0x8E38E38E38E38E38E38E38E38E38E38E38E38E38E38E38E38E38E38DAAAAA88C,
)
_XDEN = (
    0xD35771193D94918A9CA34CCBB7B640DD86CD409542F8487D9FE6B745781EB49B,
    0xEDADC6F64383DC1DF7C4B2D51B54225406D36B641F5E41BBC52A56612A8C6D14,
    1,
)
_YNUM = (
    0x4BDA12F684BDA12F684BDA12F684BDA12F684BDA12F684BDA12F684B8E38E23C,
    0xC75E0C32D5CB7C0FA9D0A54B12A0A6D5647AB046D686DA6FDFFC90FC201D71A3,
    0x29A6194691F91A73715209EF6512E576722830A201BE2018A765E85A9ECEE931,
    0x2F684BDA12F684BDA12F684BDA12F684BDA12F684BDA12F684BDA12F38E38D84,
)
_YDEN = (
    0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFF93B,
    0x7A06534BB8BDB49FD5E9E6632722C2989467C1BFC8E8D978DFB425D2685C2573,
    0x6484AA716545CA2CF3A70C3FA8FE337E0A3D21162F0D6299A7BF8192BFD2A76F,
    1,
)


def _dst_prime(dst: bytes) -> bytes:
    """DST || I2OSP(len(DST), 1), hashing oversize tags (RFC 9380 section 5.3.3)."""
    if len(dst) > 255:
        dst = hashlib.sha256(b"H2C-OVERSIZE-DST-" + dst).digest()
    return dst + bytes([len(dst)])


def expand_message_xmd(msg: bytes, dst: bytes, len_in_bytes: int) -> bytes:
    """RFC 9380 section 5.3.1 with H = SHA-256."""
    if not dst:
        raise InvalidInputError("hash-to-curve domain separation tag must not be empty")
    ell = -(-len_in_bytes // _B_IN_BYTES)
    if ell > 255 or len_in_bytes > 65535:
        raise InvalidInputError("expand_message_xmd: requested output too long")
    dst_prime = _dst_prime(dst)
    msg_prime = bytes(_R_IN_BYTES) + msg + len_in_bytes.to_bytes(2, "big") + b"\x00" + dst_prime
    b0 = hashlib.sha256(msg_prime).digest()
    b_prev = hashlib.sha256(b0 + b"\x01" + dst_prime).digest()
    out = [b_prev]
    b0_int = int.from_bytes(b0, "big")
    for i in range(2, ell + 1):
        mixed = (b0_int ^ int.from_bytes(b_prev, "big")).to_bytes(_B_IN_BYTES, "big")
        b_prev = hashlib.sha256(mixed + bytes([i]) + dst_prime).digest()
        out.append(b_prev)
    return b"".join(out)[:len_in_bytes]


def hash_to_field(msg: bytes, dst: bytes, count: int, modulus: int = P) -> list[int]:
    """RFC 9380 section 5.2 (m = 1, L = 48): ``count`` elements of Z/modulus."""
    uniform = expand_message_xmd(msg, dst, count * L)
    return [int.from_bytes(uniform[i * L : (i + 1) * L], "big") % modulus for i in range(count)]


def hash_to_scalar(msg: bytes, dst: bytes) -> int:
    """A scalar mod the group order, without modulo bias (hash_to_field with L = 48)."""
    return hash_to_field(msg, dst, 1, N)[0]


def _is_square(a: int) -> bool:
    return a == 0 or pow(a, (P - 1) // 2, P) == 1


def map_to_curve_sswu(u: int) -> tuple[int, int]:
    """Simplified SWU map F_p -> E' (RFC 9380 section 6.6.2, straight-line form)."""
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


def iso_map(x: int, y: int) -> tuple[int, int] | None:
    """3-isogeny E' -> secp256k1 (RFC 9380 appendix E.1); None for the identity."""
    x_den = _poly(_XDEN, x)
    y_den = _poly(_YDEN, x)
    if x_den == 0 or y_den == 0:
        return None  # exceptional case: kernel of the isogeny maps to the identity
    x_out = _poly(_XNUM, x) * pow(x_den, -1, P) % P
    y_out = y * _poly(_YNUM, x) * pow(y_den, -1, P) % P
    return x_out, y_out


def map_to_curve(u: int) -> tuple[int, int] | None:
    """SSWU followed by the isogeny: one field element to a secp256k1 point."""
    return iso_map(*map_to_curve_sswu(u))


def hash_to_curve(msg: bytes, dst: bytes) -> tuple[int, int] | None:
    """RFC 9380 section 3 ``hash_to_curve`` (random-oracle encoding), affine output.

    Returns None only if the result is the identity, which happens with
    negligible probability; callers treat that as an error.
    """
    u0, u1 = hash_to_field(msg, dst, 2)
    return affine_add(map_to_curve(u0), map_to_curve(u1))
