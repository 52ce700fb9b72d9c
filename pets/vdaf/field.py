"""The NTT-friendly prime fields of draft-irtf-cfrg-vdaf-20 §6.1 (Field64, Field128).

Elements are plain Python ``int`` values in ``[0, MODULUS)`` held in ``list``\\s:
for the short vectors of one report (tens to a few thousand elements) CPython's
own big-int arithmetic beats numpy multi-limb emulation and gmpy2 (measured on
the target machine: 180 ns per 128-bit mul-mod for ``int``, ~330 ns for gmpy2
``mpz`` once the call overhead is counted; see docs/PRIO3.md). Encoding and
decoding, the byte-heavy part, run in C: a vector is split into its
``ENCODED_SIZE``-byte words by numpy and each word converted by
``int.from_bytes``.

Encoding is the draft's ``encode_vec``/``decode_vec`` (§6.1.1): each element
as ``ENCODED_SIZE`` little-endian bytes; decoding rejects a length that is not
a multiple of ``ENCODED_SIZE`` and any value ``>= MODULUS`` (non-canonical).
"""

from __future__ import annotations

from functools import cache
from itertools import repeat
from typing import Literal

import gmpy2
import numpy as np

_U64 = np.dtype("<u8")


class Field:
    """A prime field with a power-of-two multiplicative subgroup (draft §6.1.2)."""

    name: str
    MODULUS: int
    ENCODED_SIZE: int
    GEN_ORDER: int
    GENERATOR: int

    def __init__(self, name: str, modulus: int, encoded_size: int, gen_order: int, gen: int):
        self.name = name
        self.MODULUS = modulus
        self.ENCODED_SIZE = encoded_size
        self.GEN_ORDER = gen_order
        self.GENERATOR = gen
        # Rejection-sampling mask of XOF.next_vec: next_power_of_2(MODULUS) - 1.
        self.SAMPLE_MASK = (1 << modulus.bit_length()) - 1
        # The modulus as an mpz: ``x * y % P`` runs ~2.4x faster than with an
        # int modulus (gmpy2 reduces natively, mixed int operands included).
        # Hot loops reduce by ``P``; values leaving the core are ``int``.
        self.P = gmpy2.mpz(modulus)

    def __repr__(self) -> str:
        return self.name

    # -- arithmetic helpers -------------------------------------------------

    def inv(self, x: int) -> int:
        """Multiplicative inverse of a non-zero element (gmpy2: ~10x ``pow(x, -1, p)``)."""
        if x % self.MODULUS == 0:
            raise ZeroDivisionError("inverse of zero")
        return int(gmpy2.invert(x, self.MODULUS))

    def neg(self, x: int) -> int:
        return (-x) % self.MODULUS

    def nth_root(self, n: int) -> int:
        """Principal ``n``-th root of unity, ``gen ** (GEN_ORDER // n)`` (draft §6.1.2)."""
        return _nth_root(self, n)

    def nth_root_powers(self, n: int) -> list[int]:
        return _root_powers(self, n)

    def vec_add(self, a: list[int], b: list[int]) -> list[int]:
        p = self.MODULUS
        return [(x + y) % p for x, y in zip(a, b, strict=True)]

    def vec_sub(self, a: list[int], b: list[int]) -> list[int]:
        p = self.MODULUS
        return [(x - y) % p for x, y in zip(a, b, strict=True)]

    # -- encoding ------------------------------------------------------------

    def encode_vec(self, vec: list[int]) -> bytes:
        """Little-endian encoding of every element (draft §6.1.1 ``encode_vec``)."""
        if self.ENCODED_SIZE == 8:
            return np.array(vec, dtype=_U64).tobytes()
        size = self.ENCODED_SIZE
        return b"".join([x.to_bytes(size, "little") for x in vec])

    def decode_vec(self, data: bytes) -> list[int] | None:
        """Decode a vector; ``None`` if the length or any element is not canonical.

        Returning ``None`` (rather than raising) lets each protocol step raise
        its own :class:`~pets.vdaf.errors.VdafDecodeError` naming itself.
        """
        size = self.ENCODED_SIZE
        if len(data) % size:
            return None
        if not data:
            return []
        out = self._to_ints(data)
        if max(out) >= self.MODULUS:
            return None
        return out

    def is_canonical(self, data: bytes) -> bool:
        """Is ``data`` a whole number of elements, each ``< MODULUS``? (``decode_vec``'s
        checks, vectorised, without building the elements.)"""
        size = self.ENCODED_SIZE
        if len(data) % size:
            return False
        if not data:
            return True
        words = np.frombuffer(data, dtype=_U64)
        if size == 8:
            return bool(words.max() < self.MODULUS)
        hi = words[1::2]
        p_hi, p_lo = self.MODULUS >> 64, self.MODULUS & ((1 << 64) - 1)
        if hi.max() < p_hi:  # the usual case, one reduction: every element < p_hi * 2^64
            return True
        lo = words[0::2]
        return not bool(np.any((hi > p_hi) | ((hi == p_hi) & (lo >= p_lo))))

    def words_to_elems(self, data: bytes) -> tuple[list[int], int]:
        """XOF sampling of ``data``: (elements ``< MODULUS`` in order, number rejected).

        Implements the masking and rejection of the draft's ``next_vec``
        (§6.2) for a whole buffer at once.
        """
        p = self.MODULUS
        # SAMPLE_MASK is 2^64 - 1 or 2^128 - 1, exactly ENCODED_SIZE bytes:
        # masking is the identity for both fields.
        vals = self._to_ints(data)
        if not vals or max(vals) < p:
            return vals, 0
        kept = [v for v in vals if v < p]
        return kept, len(vals) - len(kept)

    def _to_ints(self, data: bytes) -> list[int]:
        """Little-endian ``ENCODED_SIZE``-byte words of ``data`` as ints (no range check).

        Field64 reads numpy ``uint64`` words. Field128 splits the buffer into
        16-byte ``bytes`` objects in C (a numpy ``S16`` view; its ``tolist``
        drops trailing zero bytes, which are the high-order zeros of a
        little-endian number, so the value is unchanged) and converts each with
        ``int.from_bytes``: 33 vs 71 us for 575 elements against combining two
        ``uint64`` halves, and ahead from about 8 elements. Only a few elements
        go through a Python loop.
        """
        size = self.ENCODED_SIZE
        if len(data) <= 4 * size:
            return [int.from_bytes(data[i : i + size], "little") for i in range(0, len(data), size)]
        if size == 8:
            return np.frombuffer(data, dtype=_U64).tolist()  # type: ignore[no-any-return]
        words = np.frombuffer(data, dtype=f"S{size}").tolist()
        little: Literal["little"] = "little"
        return list(map(int.from_bytes, words, repeat(little, len(words))))


_P64 = 2**32 * 4294967295 + 1
_P128 = 2**66 * 4611686018427387897 + 1
Field64 = Field("Field64", _P64, 8, 2**32, pow(7, 4294967295, _P64))
Field128 = Field("Field128", _P128, 16, 2**66, pow(7, 4611686018427387897, _P128))

FIELDS = {"Field64": Field64, "Field128": Field128}


@cache
def _nth_root(field: Field, n: int) -> int:
    if n <= 0 or n & (n - 1) or n > field.GEN_ORDER:
        raise ValueError("n must be a power of two no larger than GEN_ORDER")
    return pow(field.GENERATOR, field.GEN_ORDER // n, field.MODULUS)


@cache
def _root_powers(field: Field, n: int) -> list[int]:
    w = _nth_root(field, n)
    p = field.MODULUS
    out = [1] * n
    for i in range(1, n):
        out[i] = out[i - 1] * w % p
    return out
