"""RFC 9380 hashing to secp256k1: suite ``secp256k1_XMD:SHA-256_SSWU_RO_``.

Implements, independently of the group backends:

* ``expand_message_xmd`` with SHA-256 (RFC 9380 section 5.3.1);
* ``hash_to_field`` (section 5.2) with L = 48 bytes, used both for field
  elements of F_p and, with the group order as modulus, for scalars
  (``hash_to_scalar``): 48 bytes = 384 bits reduced mod a 256-bit prime leaves
  a bias below 2^-128, which is what section 5 asks for;
* ``hash_to_curve`` (section 3): two field elements, each through the
  simplified SWU map onto the 3-isogenous curve E' (section 6.6.2) and the
  3-isogeny E' -> E (appendix E.1), then added; the cofactor is 1, so
  ``clear_cofactor`` is the identity map.

The maps live in :mod:`pets.zk.sswu`: :func:`hash_to_curve` uses its gmpy2
straight-line form (about 60 us per call, against about 550 us for the
pure-Python :func:`hash_to_curve_reference`; issue 16 item 3). Both pass every
vector of RFC 9380 appendix J.8.1, and K.1 (SHA-256) checks
``expand_message_xmd`` (``tests/unit/zk/test_hash_to_curve*.py``). This
code is *not* constant time: see :mod:`pets.zk.sswu`.
"""

from __future__ import annotations

import hashlib

from pets.errors import InvalidInputError
from pets.zk.curve import N, P
from pets.zk.sswu import (
    ISO_A,
    ISO_B,
    Z,
    add_reference,
    iso_map,
    map_and_add,
    map_to_curve,
    map_to_curve_reference,
    map_to_curve_sswu,
)

__all__ = [
    "ISO_A",
    "ISO_B",
    "SUITE_ID",
    "L",
    "P",
    "Z",
    "expand_message_xmd",
    "hash_to_curve",
    "hash_to_curve_reference",
    "hash_to_field",
    "hash_to_scalar",
    "iso_map",
    "map_to_curve",
    "map_to_curve_reference",
    "map_to_curve_sswu",
]

SUITE_ID = b"secp256k1_XMD:SHA-256_SSWU_RO_"
#: Security parameter k = 128, so L = ceil((ceil(log2(p)) + k) / 8) = 48.
L = 48
_B_IN_BYTES = 32  # SHA-256 output size
_R_IN_BYTES = 64  # SHA-256 block size


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


def hash_to_curve(msg: bytes, dst: bytes) -> tuple[int, int] | None:
    """RFC 9380 section 3 ``hash_to_curve`` (random-oracle encoding), affine output.

    The fast gmpy2 path (:func:`pets.zk.sswu.map_and_add`). Returns None only
    if the result is the identity, which happens with negligible probability;
    callers treat that as an error.
    """
    u0, u1 = hash_to_field(msg, dst, 2)
    return map_and_add(u0, u1)


def hash_to_curve_reference(msg: bytes, dst: bytes) -> tuple[int, int] | None:
    """The same function through the pure-Python reference map (tests and benchmarks)."""
    u0, u1 = hash_to_field(msg, dst, 2)
    return add_reference(map_to_curve_reference(u0), map_to_curve_reference(u1))
