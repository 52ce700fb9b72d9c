"""Seed expansion: a 32-byte seed into a pseudorandom ``uint64`` mask.

The helpers of the additive protocol never receive a vector, only a seed;
both the holder and the helper expand it into the same mask. The expansion
is a stream cipher keystream (AES-256-CTR or ChaCha20 from ``cryptography``)
written straight into a preallocated numpy buffer with ``update_into`` — no
intermediate ``bytes`` object, so expanding 10^6 values costs one pass over
8 MB at several GB/s.

Each seed is drawn fresh from ``os.urandom`` for one contribution and used as
the cipher *key*; the counter therefore always starts at zero (a fixed,
all-zero nonce is safe because no key is ever used for a second stream). The
keystream is uniform over bytes, so every ``uint64`` of the mask is uniform in
Z_2^64, which is what makes a masked share independent of the value
(Prio, Corrigan-Gibbs & Boneh 2017, §2; DAP draft-ietf-ppm-dap §4).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from enum import StrEnum

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from pets import lengthprefix
from pets.errors import InvalidInputError

SEED_BYTES = 32
_ZERO_NONCE = bytes(16)
_CTR_ZERO = modes.CTR(_ZERO_NONCE)  # immutable: one object for every AES-CTR expansion
#: Masks up to this many values (4 KB) are made from a keystream of zeros in one
#: ``update`` call instead of a zeroed numpy buffer encrypted in place: same bytes,
#: about half the fixed cost, which dominates for a holder's short vectors.
SMALL_EXPANSION_VALUES = 512


class PrgAlgorithm(StrEnum):
    """Stream ciphers usable as the PRG; both sides of a query must agree."""

    AES_256_CTR = "aes-256-ctr"
    CHACHA20 = "chacha20"


DEFAULT_ALGORITHM = PrgAlgorithm.AES_256_CTR


def new_seed() -> bytes:
    """A fresh 32-byte seed from the operating system's CSPRNG."""
    return os.urandom(SEED_BYTES)


def derive_seed(key: bytes, *context: bytes) -> bytes:
    """A seed derived from a long-term 32-byte secret ``key`` and a context.

    HMAC-SHA256 as a PRF (RFC 2104): seeds for distinct contexts are
    independent and unpredictable without ``key``. A data holder derives its
    seeds for (query, helper) this way so that re-sharding the same vector
    after a crash gives byte-identical shares, which the servers accept as a
    re-send rather than a conflicting contribution.
    """
    if len(key) != SEED_BYTES:
        raise InvalidInputError(f"seed key must be exactly {SEED_BYTES} bytes")
    mac = hmac.new(key, b"pets/v1/holder-seed", hashlib.sha256)
    for part in context:
        mac.update(lengthprefix.encode(part))
    return mac.digest()


def _cipher(seed: bytes, algorithm: PrgAlgorithm) -> Cipher:
    if algorithm == PrgAlgorithm.AES_256_CTR:
        return Cipher(algorithms.AES(seed), _CTR_ZERO)
    if algorithm == PrgAlgorithm.CHACHA20:
        return Cipher(algorithms.ChaCha20(seed, _ZERO_NONCE), mode=None)
    raise InvalidInputError(f"unknown PRG algorithm {algorithm!r}")


def expand(
    seed: bytes,
    length: int,
    out: np.ndarray | None = None,
    *,
    algorithm: PrgAlgorithm | str = DEFAULT_ALGORITHM,
) -> np.ndarray:
    """Expand ``seed`` into ``length`` pseudorandom ``uint64`` values.

    With ``out`` (a C-contiguous ``uint64`` array of exactly ``length``
    elements) the mask is written into it and no memory is allocated; the
    same array is returned. Deterministic: one seed, one mask.
    """
    if not isinstance(seed, bytes | bytearray | memoryview) or len(seed) != SEED_BYTES:
        raise InvalidInputError(f"PRG seed must be exactly {SEED_BYTES} bytes")
    if length < 0:
        raise InvalidInputError(f"mask length must be non-negative, got {length}")
    if type(algorithm) is not PrgAlgorithm:
        algorithm = PrgAlgorithm(algorithm)
    if out is None and length <= SMALL_EXPANSION_VALUES:
        # The keystream of ``8 * length`` zero bytes, in a writable buffer of its own.
        keystream = _cipher(bytes(seed), algorithm).encryptor().update(bytes(8 * length))
        return np.frombuffer(bytearray(keystream), dtype=np.uint64)
    if out is None:
        out = np.zeros(length, dtype=np.uint64)
    else:
        if out.dtype != np.uint64 or out.shape != (length,) or not out.flags.c_contiguous:
            raise InvalidInputError(
                f"output buffer must be a contiguous uint64 array of length {length}"
            )
        out.fill(0)
    if length:
        buf = out.data.cast("B")
        # Encrypting zeros in place yields the bare keystream.
        _cipher(bytes(seed), algorithm).encryptor().update_into(buf, buf)
    return out
