"""Fixed-point values in the ring Z_2^64.

Additive secret sharing works in the ring of integers modulo 2^64, which numpy
represents natively as ``uint64`` with wrap-around arithmetic: shares are
added with plain ``np.add`` and no reduction step. Real values enter the ring
in two steps, each a separate function so either can be tested alone:

1. *fixed point*: a value ``v`` is clipped to its declared bounds ``[lo, hi]``
   and scaled to the integer ``round(v * scale)`` (int64, round half to even);
2. *ring*: a signed int64 is reinterpreted as its two's complement uint64.

A sum of ``n`` clipped terms lies in ``[n*lo, n*hi]``. It is exact in the ring
as long as that interval fits in the signed 64-bit range; :func:`check_sum`
turns that observation into an error: a sum that *may* have wrapped around is
never decoded into a silently wrong number.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pets.errors import InvalidInputError, OverflowDetectedError

RING_BITS = 64
RING_MODULUS = 1 << RING_BITS
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
# Largest magnitude that float64 represents exactly; scaled values beyond it
# would lose integer precision before they reach the ring.
FLOAT_EXACT_MAX = 1 << 53


def clip(values: np.ndarray | Sequence[float], lo: float, hi: float) -> np.ndarray:
    """Clip ``values`` to ``[lo, hi]`` (float64 result); NaN is rejected."""
    if not lo <= hi:
        raise InvalidInputError(f"clipping bounds are inverted: lo={lo} > hi={hi}")
    arr = np.asarray(values, dtype=np.float64)
    if np.isnan(arr).any():
        raise InvalidInputError("value is NaN; only finite numbers can be encoded")
    return np.clip(arr, lo, hi)


def to_fixed(values: np.ndarray | Sequence[float], scale: int) -> np.ndarray:
    """Scale real values to int64 fixed point: ``round(v * scale)``.

    Raises :class:`InvalidInputError` for a non-positive scale, non-finite
    values, or a scaled magnitude beyond 2^53 (not exactly representable).
    """
    if scale < 1:
        raise InvalidInputError(f"fixed-point scale must be a positive integer, got {scale}")
    arr = np.asarray(values, dtype=np.float64) * float(scale)
    if not np.isfinite(arr).all():
        raise InvalidInputError("value is not finite; only finite numbers can be encoded")
    scaled = np.rint(arr)
    if scaled.size and float(np.abs(scaled).max()) > FLOAT_EXACT_MAX:
        raise InvalidInputError(
            f"scaled value exceeds 2^53 (scale={scale}); lower the scale or the bounds"
        )
    return scaled.astype(np.int64)


def from_fixed(total: int, scale: int) -> float:
    """Undo the fixed-point scaling of an exact integer ``total``."""
    return total / scale


def encode(values: np.ndarray | Sequence[float], lo: float, hi: float, scale: int) -> np.ndarray:
    """Clip, scale and map into the ring: the ``uint64`` vector a holder shares."""
    return to_ring(to_fixed(clip(values, lo, hi), scale))


def to_ring(values: np.ndarray) -> np.ndarray:
    """Reinterpret signed int64 values as their two's complement in Z_2^64."""
    arr = np.asarray(values)
    if arr.dtype == np.uint64:
        return arr
    if arr.dtype != np.int64:
        if arr.dtype.kind not in "iu":
            raise InvalidInputError(f"ring values must be integers, got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
    return arr.view(np.uint64)


def from_ring(values: np.ndarray) -> np.ndarray:
    """Read ring elements as signed int64 (the centred representative)."""
    arr = np.asarray(values)
    if arr.dtype != np.uint64:
        raise InvalidInputError(f"ring values must be uint64, got dtype {arr.dtype}")
    return arr.view(np.int64)


def check_sum(total: int, terms: int, lo: int, hi: int) -> int:
    """Validate a signed ring sum of ``terms`` values each within ``[lo, hi]``.

    Returns ``total`` unchanged when it is provably exact. Raises
    :class:`OverflowDetectedError` when ``terms * [lo, hi]`` does not fit in the
    signed 64-bit range (the ring sum may have wrapped), or when ``total`` lies
    outside ``[terms*lo, terms*hi]`` (it did wrap, or a term broke its bounds).
    """
    if terms < 0:
        raise InvalidInputError(f"number of terms must be non-negative, got {terms}")
    low, high = terms * lo, terms * hi
    if low < INT64_MIN or high > INT64_MAX:
        raise OverflowDetectedError(
            f"a sum of {terms} values in [{lo}, {hi}] may exceed the 64-bit ring; "
            "narrow the bounds, lower the scale, or split the query"
        )
    if not low <= total <= high:
        raise OverflowDetectedError(
            f"aggregate is outside the range [{low}, {high}] that {terms} clipped "
            "values allow; it wrapped around or a contribution broke its bounds"
        )
    return total
