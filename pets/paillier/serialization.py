"""Fixed-width ciphertext serialisation.

A ciphertext is an integer in ``[1, n^2)``, written as ``2 * key_bytes``
unsigned big-endian bytes, where ``key_bytes = ceil(bits(n) / 8)``. Every
ciphertext of a key has the same width, so a stream of them can be cut at
any byte boundary (gRPC chunks of about 1 MB) and re-aligned by counting, and
the leader can fold each ciphertext as soon as its bytes have arrived.

Decoding is strict: a length that is not a multiple of the width, a value
``>= n^2``, zero, or (by default) a value sharing a factor with ``n`` is
rejected with :class:`~pets.errors.InvalidInputError`. Such values are not
Paillier ciphertexts; multiplying one into an aggregate would silently destroy
it (a non-unit makes the whole product undecryptable).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gmpy2

from pets.errors import InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Sequence

    import phe


def ciphertext_width(public_key: phe.PaillierPublicKey) -> int:
    """Bytes per serialised ciphertext: ``2 * ceil(bits(n) / 8)``."""
    return 2 * ((int(public_key.n).bit_length() + 7) // 8)


def check_ciphertext(
    n: gmpy2.mpz, n2: gmpy2.mpz, value: int | gmpy2.mpz, *, check_coprime: bool = True
) -> gmpy2.mpz:
    """Return ``value`` as an mpz if it is a valid ciphertext mod ``n^2``, else raise."""
    c = gmpy2.mpz(value)
    if not 0 < c < n2:
        raise InvalidInputError("ciphertext out of range: must be in [1, n^2)")
    if check_coprime and gmpy2.gcd(c, n) != 1:
        raise InvalidInputError("ciphertext is not a unit mod n^2")
    return c


def ciphertexts_to_bytes(public_key: phe.PaillierPublicKey, ciphertexts: Sequence[int]) -> bytes:
    """Concatenate fixed-width big-endian encodings of raw ciphertext ints."""
    width = ciphertext_width(public_key)
    n2 = int(public_key.nsquare)
    parts = []
    for c in ciphertexts:
        value = int(c)
        if not 0 < value < n2:
            raise InvalidInputError("ciphertext out of range: must be in [1, n^2)")
        parts.append(value.to_bytes(width, "big"))
    return b"".join(parts)


def parse_ciphertexts(
    public_key: phe.PaillierPublicKey,
    data: bytes | bytearray | memoryview,
    *,
    check_coprime: bool = True,
) -> list[gmpy2.mpz]:
    """Like :func:`ciphertexts_from_bytes` but returns gmpy2 ``mpz`` values (for folding)."""
    width = ciphertext_width(public_key)
    view = memoryview(data).cast("B")
    if len(view) % width:
        raise InvalidInputError(
            f"ciphertext bytes length {len(view)} is not a multiple of the width {width}"
        )
    n = gmpy2.mpz(public_key.n)
    n2 = n * n
    return [
        check_ciphertext(
            n, n2, int.from_bytes(view[i : i + width], "big"), check_coprime=check_coprime
        )
        for i in range(0, len(view), width)
    ]


def ciphertexts_from_bytes(
    public_key: phe.PaillierPublicKey,
    data: bytes | bytearray | memoryview,
    *,
    check_coprime: bool = True,
) -> list[int]:
    """Decode and validate bytes written by :func:`ciphertexts_to_bytes`."""
    return [int(c) for c in parse_ciphertexts(public_key, data, check_coprime=check_coprime)]
