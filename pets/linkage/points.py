"""Batches of secp256k1 points: the wire format, its checks, and the fast arithmetic.

A *batch* is the concatenation of n points, each the 33-byte SEC 1 v2
(section 2.3.3) compressed encoding: ``0x02``/``0x03`` then x, big-endian.
Every party decodes strictly and refuses, naming the step
(:class:`~pets.linkage.errors.BatchRejectedError`):

* ``batch-length``: the length is not a multiple of 33;
* ``oversized-batch``: n > ``max_rows`` (checked before any point is parsed);
* ``identity-point``: a slot with prefix ``0x00``, the point at infinity, which
  a blinded identifier can never be (its discrete log would be 0);
* ``bad-point``: another prefix, x >= p, or an x that is not on the curve.

The identity cannot be written otherwise in a 33-byte slot and every
non-identity point of secp256k1 generates the group (cofactor 1), so a point
that decodes is never of small order.

Arithmetic uses libsecp256k1 through coincurve. Its ``PublicKey.multiply``
(``secp256k1_ec_pubkey_tweak_mul``) is *not* constant time: it runs the
variable-time ``secp256k1_ecmult`` (GLV split, wNAF), whose time follows the
scalar's GLV halves and digits. Measured on this machine: 31.8 µs for a random
scalar, 7.9 µs for k = 1, 27.6 µs for k = 2^255 + 1, and 6.2 µs for
k = n - λ (top bit set, GLV halves (0, -1)). So fixing the scalar's bit
length (drawing it from [2^255, n)) would not hide it: the leak is the GLV
halves' lengths and the digits, not the length of k. Every multiplication by
a *secret* scalar here (a server's key share k_L or k_H, a holder's blind r_i
or its inverse, the DLEQ prover's k) goes through :func:`multiply_secret`
instead: libsecp256k1's constant-time ``secp256k1_ecmult_const``, reached
through its ECDH entry point ``secp256k1_ecdh`` with a hash callback that
returns the compressed point rather than a hash (coincurve's cffi binding,
``coincurve._libsecp256k1``, is not its public API: the tests compare
:func:`multiply_secret` with ``multiply`` on edge and random scalars, so a
coincurve release that changed it fails them). It costs 41.3 µs for every
scalar (measured: k = 1, 2^255 + 1, n - λ, random), 1.3x ``multiply`` and
cheaper than blinding a variable-time multiplication (:meth:`pets.zk.group.
Group.mul_secret`: two or three of them, 65-95 µs). It is the hot path of the
protocol. :func:`map_batch` cuts a batch into chunks and can spread them over
threads, since the library calls release the GIL. :func:`multi_mul` is a
variable-time bucket (Pippenger) multi-scalar multiplication for *public*
scalars, used by the batched DLEQ proofs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
from coincurve import PublicKey
from coincurve._libsecp256k1 import ffi, lib
from coincurve.context import GLOBAL_CONTEXT

from pets.errors import InvalidInputError
from pets.linkage.domain import as_bytes
from pets.linkage.errors import BatchRejectedError
from pets.zk.curve import POINT_BYTES, P

#: Points per chunk of work: bounded memory and a unit of parallel work.
DEFAULT_CHUNK = 1024
_P_BYTES = P.to_bytes(32, "big")
#: Below this many points one multiplication per point is faster than buckets (measured);
#: from the second threshold on, 8-bit windows beat 4-bit ones.
_BUCKET_MIN = 512
_WIDE_WINDOW_MIN = 5000
T = TypeVar("T")


@ffi.callback("int(unsigned char *, const unsigned char *, const unsigned char *, void *)")
def _compressed_point(out: object, x32: object, y32: object, data: object) -> int:
    """``secp256k1_ecdh`` hash callback: write the SEC 1 compressed point, not a hash."""
    out[0] = 2 + (y32[31] & 1)  # type: ignore[index]
    ffi.memmove(out + 1, x32, 32)  # type: ignore[operator]
    return 1


def multiply_secret(point: PublicKey, scalar: bytes) -> bytes:
    """``scalar · point`` (33 bytes, compressed) in constant time, for a secret scalar in [1, n).

    libsecp256k1's ``secp256k1_ecdh`` computes the product with the
    constant-time ``secp256k1_ecmult_const`` and hands its affine coordinates
    to a callback, here :func:`_compressed_point`; the scalar never meets the
    variable-time ``multiply`` (see the module docstring).
    """
    out = ffi.new("unsigned char[33]")
    if not lib.secp256k1_ecdh(
        GLOBAL_CONTEXT.ctx, out, point.public_key, scalar, _compressed_point, ffi.NULL
    ):
        raise InvalidInputError("a secret scalar must be in [1, n)")
    return bytes(ffi.buffer(out, 33))


def batch_count(batch: bytes, max_rows: int) -> int:
    """Number of points in ``batch`` after the length and size checks."""
    batch = as_bytes(batch, "a batch")
    if len(batch) % POINT_BYTES:
        raise BatchRejectedError("batch-length", "a batch is a whole number of 33-byte points")
    n = len(batch) // POINT_BYTES
    if n > max_rows:
        raise BatchRejectedError("oversized-batch", f"more than max_rows = {max_rows} points")
    return n


def decode_point(slot: bytes, index: int) -> PublicKey:
    """Strictly decode one 33-byte slot (``index`` only names it in the error)."""
    prefix = slot[0]
    if prefix not in (2, 3):
        if prefix == 0:
            raise BatchRejectedError("identity-point", f"point {index} is the identity")
        raise BatchRejectedError("bad-point", f"point {index} is not SEC 1 compressed")
    if slot[1:] >= _P_BYTES:
        raise BatchRejectedError("bad-point", f"point {index} has x >= p")
    try:
        return PublicKey(slot)
    except ValueError:
        raise BatchRejectedError("bad-point", f"point {index} is not on secp256k1") from None


def decode_batch(batch: bytes, max_rows: int) -> list[PublicKey]:
    """All points of a batch, checked (see the module docstring)."""
    n = batch_count(batch, max_rows)
    view = bytes(batch)
    return [decode_point(view[i * 33 : i * 33 + 33], i) for i in range(n)]


def map_batch(
    fn: Callable[[int, int], T], n: int, *, chunk: int = DEFAULT_CHUNK, workers: int = 1
) -> list[T]:
    """``[fn(start, stop) for each chunk]`` in order, on up to ``workers`` threads."""
    chunk = max(1, chunk)
    bounds = [(s, min(s + chunk, n)) for s in range(0, n, chunk)]
    if workers <= 1 or len(bounds) <= 1:
        return [fn(s, e) for s, e in bounds]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda b: fn(*b), bounds))


def multiply_batch(
    batch: bytes,
    scalar: int | Callable[[int], bytes],
    *,
    max_rows: int,
    chunk: int = DEFAULT_CHUNK,
    workers: int = 1,
) -> bytes:
    """Check every point of ``batch`` and multiply it by one scalar, or each by its own.

    ``scalar`` is one scalar in [1, n) for the whole batch (a server's key
    share), or a function giving the 32-byte scalar of point ``i`` (a
    holder's inverse blinds), computed chunk by chunk so memory stays bounded.
    Both are secret: every product is :func:`multiply_secret` (constant time).
    """
    n = batch_count(batch, max_rows)
    data = bytes(batch)
    if isinstance(scalar, int):
        key = scalar.to_bytes(32, "big")
        scalar_of: Callable[[int], bytes] = lambda _: key  # noqa: E731
    else:
        scalar_of = scalar

    def run(start: int, stop: int) -> bytes:
        return b"".join(
            multiply_secret(decode_point(data[i * 33 : i * 33 + 33], i), scalar_of(i))
            for i in range(start, stop)
        )

    return b"".join(map_batch(run, n, chunk=chunk, workers=workers))


def add(a: PublicKey | None, b: PublicKey | None) -> PublicKey | None:
    """a + b with None as the identity."""
    if a is None:
        return b
    if b is None:
        return a
    return combine([a, b])


def combine(points: list[PublicKey]) -> PublicKey | None:
    """Sum of points (None if empty or if the sum is the identity)."""
    if not points:
        return None
    if len(points) == 1:
        return points[0]
    try:
        return PublicKey.combine_keys(points)
    except ValueError:  # the sum is the point at infinity
        return None


def multi_mul(points: Sequence[PublicKey], scalars: np.ndarray) -> PublicKey | None:
    """``sum(d_i · P_i)`` for public 128-bit scalars given as an (n, 16) uint8 array.

    Variable time, so for public scalars only (batched DLEQ weights). Bucket
    method (Pippenger; Bernstein et al., "Faster batch forgery identification",
    INDOCRYPT 2012, section 4) with c-bit windows (c = 4 below 5,000 points,
    else 8): per window, the points with digit j are summed in one
    libsecp256k1 ``pubkey_combine`` call, then ``sum(j · S_j)`` is formed with
    running sums. At n = 10^4 it costs about 2.3x less than one (variable-time)
    ``multiply`` per point (measured); below 512 points it is that loop.
    """
    n = len(points)
    if scalars.shape != (n, 16) or scalars.dtype != np.uint8:
        raise InvalidInputError("multi_mul needs one 16-byte scalar per point")
    if n == 0:
        return None
    if n < _BUCKET_MIN:
        parts = [
            p.multiply(bytes(16) + scalars[i].tobytes())
            for i, p in enumerate(points)
            if scalars[i].any()
        ]
        return combine(parts)
    if n < _WIDE_WINDOW_MIN:
        bits = 4
        digits = np.stack([scalars >> 4, scalars & 15], axis=2).reshape(n, 32)
    else:
        bits = 8
        digits = scalars
    buckets = 1 << bits
    objs = np.empty(n, dtype=object)
    objs[:] = list(points)
    result: PublicKey | None = None
    shift = buckets.to_bytes(32, "big")
    for w in range(digits.shape[1]):  # most significant window first
        if result is not None:
            result = result.multiply(shift)
        column = digits[:, w]
        order = np.argsort(column, kind="stable")
        counts = np.bincount(column, minlength=buckets)
        ends = np.cumsum(counts)
        running: PublicKey | None = None
        window: PublicKey | None = None
        for j in range(buckets - 1, 0, -1):
            if counts[j]:
                idx = order[ends[j] - counts[j] : ends[j]]
                running = add(running, combine(objs[idx].tolist()))
            if running is not None:
                window = add(window, running)
        result = add(result, window)
    return result
