"""Adding integer noise to an aggregate share, and reading noisy sums back.

A server adds its noise vector (int64, from :meth:`NoisePlan.sample
<pets.dp.sensitivity.NoisePlan.sample>`) to its aggregate share in the
algebra of the protocol:

* the ring Z_2^64 of the additive protocol (:func:`add_to_ring_share`):
  ``z`` enters as its two's complement, ``share + z`` wraps mod 2^64;
* a prime field Z_p for Prio3 (:func:`add_to_field_share`): ``z`` enters as
  ``z mod p``; moduli below 2^64 (Field64) use numpy uint64, larger ones
  (Field128) Python ints;
* Paillier (:func:`paillier_noise`): the leader needs the noise as plaintext
  integers ``z mod n`` to encrypt and multiply into the aggregate.

Decoding (:func:`centered`) takes the sum of all shares and maps each element
to its centred representative in ``(-m/2, m/2]``: the noisy signed total, not
a value shifted by a wrap-around. :func:`check_noisy_range` then proves the
representative is the true noisy total: the exact aggregate lies in a known
range and the noise of ``K`` servers exceeds ``w`` with probability at most
2^-64 (:mod:`pets.dp.tails`), so the noisy total lies in the widened range;
if that range does not fit in ``(-m/2, m/2]`` or a value falls outside it,
:class:`~pets.errors.OverflowDetectedError` is raised — nothing is clamped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from pets.errors import InvalidInputError, OverflowDetectedError

RING_MODULUS = 1 << 64
FIELD64_MODULUS = (1 << 32) * 4294967295 + 1
"""Prio3's Field64 prime, 2^64 - 2^32 + 1 (draft-irtf-cfrg-vdaf §6.1.2)."""
FIELD128_MODULUS = (1 << 66) * 4611686018427387897 + 1
"""Prio3's Field128 prime, 2^66 · 4611686018427387897 + 1 (draft-irtf-cfrg-vdaf §6.1.2)."""

DECODE_FAILURE_LOG2 = 64
"""An honest run fails :func:`check_noisy_range` with probability at most 2^-64 per slot."""


def _noise_array(noise: np.ndarray | Sequence[int], length: int) -> np.ndarray:
    arr = np.asarray(noise)
    if arr.dtype != np.int64 or arr.ndim != 1:
        raise InvalidInputError(f"noise must be a 1-d int64 vector, got {arr.dtype} {arr.shape}")
    if arr.size != length:
        raise InvalidInputError(f"noise has {arr.size} slots, the share has {length}")
    return arr


def add_to_ring_share(
    share: np.ndarray, noise: np.ndarray, *, into: Literal["new", "noise", "share"] = "new"
) -> np.ndarray:
    """``share + noise`` in Z_2^64 as a uint64 array.

    ``into`` says where the sum goes: a new array (``share`` unchanged, the
    default); the noise vector's own memory (viewed as uint64, overwritten: a
    server drops its noise after the release anyway); or ``share``'s own memory
    (it must be writable: a server's final aggregate, which it releases and then
    drops). The last two cost no new 8 MB array per 10^6 slots.
    """
    if into not in ("new", "noise", "share"):
        raise InvalidInputError(f"into must be 'new', 'noise' or 'share', got {into!r}")
    if not isinstance(share, np.ndarray) or share.dtype != np.uint64 or share.ndim != 1:
        raise InvalidInputError("a ring share must be a 1-d uint64 vector")
    z = _noise_array(noise, share.size).view(np.uint64)
    if into == "noise":
        return np.add(z, share, out=z)
    if into == "share":
        if not share.flags.writeable:
            raise InvalidInputError("the share to add the noise into is read-only")
        return np.add(share, z, out=share)
    return share + z


def _check_modulus(modulus: int) -> None:
    if isinstance(modulus, bool) or not isinstance(modulus, int) or modulus < 3:
        raise InvalidInputError(f"modulus must be an integer >= 3, got {modulus!r}")


def add_to_field_share(
    share: np.ndarray | Sequence[int], noise: np.ndarray, modulus: int
) -> np.ndarray | list[int]:
    """``share + noise`` in Z_modulus.

    With a modulus below 2^64 and a uint64 ``share`` the result is a uint64
    array; otherwise ``share`` is a sequence of Python ints in ``[0, modulus)``
    and the result a list of them.
    """
    _check_modulus(modulus)
    if isinstance(share, np.ndarray) and share.dtype == np.uint64 and modulus < RING_MODULUS:
        z = _noise_array(noise, share.size)
        if share.size and int(share.max()) >= modulus:
            raise InvalidInputError("a field share element is not reduced modulo the prime")
        p = np.uint64(modulus)
        zr = np.where(z < 0, p - (-z).astype(np.uint64) % p, z.astype(np.uint64) % p) % p
        total = share + zr  # may wrap past 2^64: both summands are < p < 2^64
        wrapped = total < share
        out = np.where(wrapped, total + np.uint64(RING_MODULUS - modulus), total)
        return np.where(~wrapped & (out >= p), out - p, out)
    values = [int(v) for v in share]
    z = _noise_array(noise, len(values))
    out_list = []
    for v, n in zip(values, z.tolist(), strict=True):
        if not 0 <= v < modulus:
            raise InvalidInputError("a field share element is not reduced modulo the prime")
        out_list.append((v + n) % modulus)
    return out_list


def paillier_noise(noise: np.ndarray, modulus: int) -> list[int]:
    """The noise as Paillier plaintexts ``z mod n`` (``n`` the public modulus)."""
    _check_modulus(modulus)
    z = _noise_array(noise, len(noise))
    return [v % modulus for v in z.tolist()]


def check_noise_bound(noise: np.ndarray, bound: int) -> None:
    """Refuse a noise vector with an element beyond ``[-bound, bound]`` (nothing is clamped).

    With ``bound = NoisePlan.tail_bound(1)`` this fails with probability at
    most 2^-64 per slot; the caller then draws no new noise for the same
    release (that would bias it) but fails the release.
    """
    z = _noise_array(noise, len(noise))
    if z.size and int(np.abs(z.astype(object)).max()) > bound:
        raise OverflowDetectedError(f"a noise draw exceeds the encodable range [-{bound}, {bound}]")


def centered(values: np.ndarray | Sequence[int], modulus: int = RING_MODULUS) -> list[int]:
    """Each element's centred representative in ``(-m/2, m/2]`` as a Python int.

    uint64 ring elements (``modulus = 2^64``) are read as two's complement
    (``[-2^63, 2^63)``, the same thing up to the single element ``2^63``).
    """
    _check_modulus(modulus)
    if isinstance(values, np.ndarray) and values.dtype == np.uint64 and modulus == RING_MODULUS:
        return [int(v) for v in values.view(np.int64).tolist()]
    half = modulus // 2
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | np.integer):
            raise InvalidInputError(f"aggregate elements must be integers, got {type(v).__name__}")
        x = int(v)
        if not 0 <= x < modulus:
            raise InvalidInputError("an aggregate element is not reduced modulo the modulus")
        out.append(x - modulus if x > half else x)
    return out


def check_noisy_range(
    label: str, value: int, low: int, high: int, margin: int, modulus: int = RING_MODULUS
) -> None:
    """Prove a centred noisy total is exact: ``low - margin <= value <= high + margin``.

    ``[low, high]`` is the range of the exact aggregate, ``margin`` a tail bound
    of the summed noise at failure probability 2^-64. Raises
    :class:`OverflowDetectedError` if that widened range does not fit the
    centred range of the modulus (the total may have wrapped) or ``value``
    lies outside it (it wrapped, a contribution broke its bounds, or a server
    added noise far beyond its law).
    """
    lo, hi = low - margin, high + margin
    if lo <= -(modulus // 2) or hi > modulus // 2 - (1 if modulus % 2 == 0 else 0):
        raise OverflowDetectedError(
            f"slot {label}: the noisy aggregate can reach [{lo}, {hi}], beyond the "
            f"modulus' signed range; narrow the bounds or lower the scale"
        )
    if not lo <= value <= hi:
        raise OverflowDetectedError(
            f"slot {label}: the noisy aggregate lies outside [{lo}, {hi}], the range the "
            "data and the noise allow; it wrapped around or a share cannot be trusted"
        )
