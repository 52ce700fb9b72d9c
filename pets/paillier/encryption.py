"""Paillier encryption of packed plaintexts, with gmpy2.

Paillier (EUROCRYPT 1999) encrypts ``m`` in ``Z_n`` as
``c = g^m * r^n mod n^2`` for a random unit ``r``. With python-paillier's
choice ``g = n + 1`` the first factor needs no exponentiation, since by the
binomial theorem ``(1 + n)^m = 1 + n*m (mod n^2)``; the cost of an encryption
is the single ``r^n mod n^2`` (``gmpy2.powmod``), and that part does not depend
on ``m`` at all, which is what :class:`~pets.paillier.pool.RandomnessPool`
exploits by computing it ahead of time.

Layers, outermost first:

* :func:`encrypt_vector`: validate and pack a holder's int64 vector, then
  encrypt the plaintexts, spreading large vectors over worker processes;
* :func:`encrypt_packed`: encrypt plaintext ints with fresh randomness from
  :mod:`secrets`, with a precomputed pool, or with injected ``r`` values;
* :func:`raw_encrypt`: one plaintext, one given ``r``: deterministic, for
  known-answer tests (the analogue of phe's ``raw_encrypt(plaintext, r_value)``,
  and bit-for-bit equal to it).

Ciphertexts are plain Python ints in ``[1, n^2)``, so
``phe.EncryptedNumber(public_key, c)`` accepts them unchanged.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import secrets
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import TYPE_CHECKING

import gmpy2
import numpy as np

from pets.errors import InvalidInputError
from pets.paillier.packing import PackingLayout, pack

if TYPE_CHECKING:
    from collections.abc import Sequence

    import phe

    from pets.paillier.pool import RandomnessPool

_INT_TYPES = (int, type(gmpy2.mpz(0)))

PROCESS_POOL_MIN_PLAINTEXTS = 48
"""Below this many plaintexts a temporary worker pool costs more than it saves.

Measured on 2 cores with a 2048-bit key: one encryption takes about 9 ms and
starting two forkserver workers about 0.15 s, so the break-even is near 35
plaintexts (and higher for smaller keys). A caller-supplied ``executor`` has no
start-up cost and is always used.
"""


def random_unit(n: int | gmpy2.mpz) -> gmpy2.mpz:
    """A uniformly random ``r`` in ``[1, n)`` with ``gcd(r, n) = 1``, from :mod:`secrets`.

    For an RSA-size ``n`` a non-unit is found with negligible probability (it
    would reveal a factor of ``n``), but the check costs microseconds.
    """
    n = gmpy2.mpz(n)
    while True:
        r = gmpy2.mpz(secrets.randbelow(int(n) - 1) + 1)
        if gmpy2.gcd(r, n) == 1:
            return r


def _check_plaintexts(n: gmpy2.mpz, plaintexts: Sequence[int]) -> list[gmpy2.mpz]:
    out = []
    for m in plaintexts:
        if isinstance(m, bool) or not isinstance(m, _INT_TYPES):
            raise InvalidInputError("plaintexts must be integers")
        mm = gmpy2.mpz(m)
        if not 0 <= mm < n:
            raise InvalidInputError("plaintext must be in [0, n)")
        out.append(mm)
    return out


def _check_r(n: gmpy2.mpz, r: int) -> gmpy2.mpz:
    if isinstance(r, bool) or not isinstance(r, _INT_TYPES):
        raise InvalidInputError("r values must be integers")
    rr = gmpy2.mpz(r)
    if not 0 < rr < n or gmpy2.gcd(rr, n) != 1:
        # Do not echo r: it is the encryption randomness.
        raise InvalidInputError("r value must be a unit in [1, n)")
    return rr


def raw_encrypt(public_key: phe.PaillierPublicKey, plaintext: int, r_value: int) -> int:
    """Encrypt one plaintext with a given ``r``; equals ``public_key.raw_encrypt(m, r)``.

    Deterministic, so only for tests and known-answer vectors: reusing an
    ``r`` for two plaintexts reveals their difference.
    """
    return encrypt_packed(public_key, [plaintext], r_values=[r_value])[0]


def encrypt_packed(
    public_key: phe.PaillierPublicKey,
    plaintexts: Sequence[int],
    *,
    pool: RandomnessPool | None = None,
    r_values: Sequence[int] | None = None,
) -> list[int]:
    """Encrypt plaintext ints in ``[0, n)``; return raw ciphertext ints.

    Randomness, exactly one source: ``pool`` (precomputed ``r^n``, the online
    cost is one multiplication mod ``n^2`` per plaintext; the pool must hold
    enough entries, nothing is taken otherwise), ``r_values`` (injected, for
    known-answer tests), or by default a fresh ``r`` from :mod:`secrets` per
    plaintext.
    """
    if pool is not None and r_values is not None:
        raise InvalidInputError("pass either a randomness pool or r values, not both")
    n = gmpy2.mpz(public_key.n)
    n2 = n * n
    ms = _check_plaintexts(n, plaintexts)
    if r_values is not None:
        if len(r_values) != len(ms):
            raise InvalidInputError("need exactly one r value per plaintext")
        rns = [gmpy2.powmod(_check_r(n, r), n, n2) for r in r_values]
    elif pool is not None:
        if pool.public_key != public_key:
            raise InvalidInputError("randomness pool belongs to a different public key")
        rns = pool.take(len(ms))
    else:
        rns = None
    out = []
    for i, m in enumerate(ms):
        rn = rns[i] if rns is not None else gmpy2.powmod(random_unit(n), n, n2)
        # g^m = (1 + n)^m = 1 + n*m (mod n^2), and 1 + n*m < n^2 for m < n.
        out.append(int((n * m + 1) * rn % n2))
    return out


def _encrypt_chunk(n: int, plaintexts: list[int]) -> list[int]:
    """Worker-process entry point: fresh randomness from this process's ``secrets``."""
    import phe

    return encrypt_packed(phe.PaillierPublicKey(n), plaintexts)


def _default_mp_context() -> multiprocessing.context.BaseContext:
    """forkserver where available (POSIX), else spawn; never plain fork.

    fork() in a process that runs gRPC or other threads can deadlock the child;
    forkserver and spawn start workers from a clean process. Like any
    non-fork start method this needs the usual ``if __name__ == "__main__":``
    guard in a script that calls :func:`encrypt_vector`. This module is added
    to the forkserver's preload list so workers start with gmpy2 and numpy
    already imported (the list is process-wide; it only adds imports).
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        return ctx
    return multiprocessing.get_context("spawn")


def encrypt_vector(
    public_key: phe.PaillierPublicKey,
    layout: PackingLayout,
    values: np.ndarray | Sequence[int],
    *,
    processes: int | None = None,
    pool: RandomnessPool | None = None,
    executor: Executor | None = None,
) -> list[int]:
    """Validate, pack and encrypt one holder's vector; return raw ciphertext ints.

    Values outside ``[lo, hi]`` raise :class:`InvalidInputError` before any
    encryption. With a ``pool`` the online path is used (no exponentiation).
    Otherwise the plaintexts are split across worker processes: always over
    ``executor`` when one is given (a long-lived ``ProcessPoolExecutor`` owned
    by the caller, no start-up cost), else over a temporary
    ``ProcessPoolExecutor`` with ``processes`` workers (default: CPU count)
    when there are at least :data:`PROCESS_POOL_MIN_PLAINTEXTS` plaintexts and
    ``processes`` is not 1; else serially. Each worker draws its own ``r``
    values from its own :mod:`secrets`; no randomness crosses process
    boundaries, and the order of the result is the order of the plaintexts.
    """
    layout.check_key(public_key)
    plaintexts = pack(layout, values)
    if pool is not None:
        return encrypt_packed(public_key, plaintexts, pool=pool)
    workers = processes if processes is not None else (os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidInputError("processes must be at least 1")
    count = len(plaintexts)
    if executor is None and (workers == 1 or count < PROCESS_POOL_MIN_PLAINTEXTS):
        return encrypt_packed(public_key, plaintexts)
    workers = min(workers, count)
    # A few chunks per worker balance load without much pickling overhead.
    size = max(1, math.ceil(count / (workers * 4)))
    chunks = [plaintexts[i : i + size] for i in range(0, count, size)]
    n = int(public_key.n)
    if executor is not None:
        return _gather(executor, n, chunks)
    with ProcessPoolExecutor(max_workers=workers, mp_context=_default_mp_context()) as ex:
        return _gather(ex, n, chunks)


def _gather(executor: Executor, n: int, chunks: list[list[int]]) -> list[int]:
    futures = [executor.submit(_encrypt_chunk, n, chunk) for chunk in chunks]
    out: list[int] = []
    for fut in futures:
        out.extend(fut.result())
    return out
