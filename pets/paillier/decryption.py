"""Paillier decryption with the Chinese remainder theorem, and unpacking.

Decryption mod ``p^2`` and ``q^2`` separately, recombined with CRT, as in
section 7 of Paillier (EUROCRYPT 1999) and python-paillier's
``PaillierPrivateKey.raw_decrypt``::

    m_p = L_p(c^(p-1) mod p^2) * h_p mod p,   L_p(x) = (x - 1) / p
    m_q = L_q(c^(q-1) mod q^2) * h_q mod q
    m   = m_p + p * ((m_q - m_p) * p^-1 mod q)

Two half-size exponentiations cost about a quarter of one full one. This
module reuses phe's precomputed ``hp``, ``hq`` and ``p_inverse`` and does the
arithmetic with gmpy2, so its result equals ``private_key.raw_decrypt(c)``
exactly (a test checks it). The exponents ``p - 1`` and ``q - 1`` are secret,
so they go through ``gmpy2.powmod_sec`` (GMP's ``mpz_powm_sec``, whose timing
and memory access do not depend on the exponent); unlike phe, which uses plain
``powmod``. On a 2048-bit key that costs about 40% more (about 3.6 ms instead
of 2.5 ms per ciphertext, some 0.15 s for a 10^4-value aggregate), a price
worth paying once per query for a long-lived analyst key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gmpy2

from pets.errors import InvalidInputError
from pets.paillier.packing import PackingLayout, unpack
from pets.paillier.serialization import check_ciphertext

if TYPE_CHECKING:
    from collections.abc import Sequence

    import phe


class _CrtKey:
    """gmpy2 copies of the private key's CRT constants (never repr'd or logged)."""

    __slots__ = ("hp", "hq", "n", "n2", "p", "p2", "p_inverse", "q", "q2")

    def __init__(self, private_key: phe.PaillierPrivateKey) -> None:
        mpz = gmpy2.mpz
        self.n = mpz(private_key.public_key.n)
        self.n2 = self.n * self.n
        self.p, self.q = mpz(private_key.p), mpz(private_key.q)
        self.p2, self.q2 = self.p * self.p, self.q * self.q
        self.hp, self.hq = mpz(private_key.hp), mpz(private_key.hq)
        self.p_inverse = mpz(private_key.p_inverse)

    def __repr__(self) -> str:
        return "<_CrtKey>"

    def decrypt(self, c: gmpy2.mpz) -> int:
        p, q = self.p, self.q
        mp = (gmpy2.powmod_sec(c, p - 1, self.p2) - 1) // p * self.hp % p
        mq = (gmpy2.powmod_sec(c, q - 1, self.q2) - 1) // q * self.hq % q
        return int(mp + (mq - mp) * self.p_inverse % q * p)


def decrypt_packed(private_key: phe.PaillierPrivateKey, ciphertexts: Sequence[int]) -> list[int]:
    """Decrypt raw ciphertext ints to plaintext ints in ``[0, n)``.

    Each ciphertext is validated (range ``[1, n^2)`` and unit mod ``n``) first:
    :class:`InvalidInputError` otherwise.
    """
    key = _CrtKey(private_key)
    cs = [check_ciphertext(key.n, key.n2, c) for c in ciphertexts]
    return [key.decrypt(c) for c in cs]


def raw_decrypt(private_key: phe.PaillierPrivateKey, ciphertext: int) -> int:
    """Decrypt one raw ciphertext; equals ``private_key.raw_decrypt(ciphertext)``."""
    return decrypt_packed(private_key, [ciphertext])[0]


def decrypt_vector(
    private_key: phe.PaillierPrivateKey,
    layout: PackingLayout,
    ciphertexts: Sequence[int],
    contributors: int,
) -> list[int]:
    """Decrypt an aggregate of ``contributors`` holders and unpack it to exact sums.

    Raises :class:`InvalidInputError` for malformed ciphertexts or a wrong
    count, and :class:`~pets.errors.OverflowDetectedError` when the unpacked
    slots are inconsistent with ``contributors`` holders within ``[lo, hi]``
    (see :mod:`pets.paillier.packing` for what that can detect).
    """
    layout.check_key(private_key.public_key)
    if len(ciphertexts) != layout.num_plaintexts:
        raise InvalidInputError(
            f"expected {layout.num_plaintexts} ciphertexts, got {len(ciphertexts)}"
        )
    return unpack(layout, decrypt_packed(private_key, ciphertexts), contributors)
