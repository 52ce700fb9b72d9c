"""Precomputed Paillier randomness for low-latency online encryption.

A Paillier ciphertext is ``(1 + n*m) * r^n mod n^2`` and the expensive factor
``r^n mod n^2`` does not depend on the plaintext (Paillier 1999; the same
split python-paillier makes between ``raw_encrypt`` and ``obfuscate``). A data
holder can therefore compute a stock of them while idle and encrypt a query
answer with one multiplication per plaintext when it arrives.

Rules the class enforces, because breaking them breaks confidentiality:

* every entry is used at most once: :meth:`RandomnessPool.take` removes what
  it returns, and taking more than is available raises without taking
  anything (two ciphertexts with the same ``r`` reveal the difference of their
  plaintexts to anyone who divides them);
* entries come only from :mod:`secrets` (via
  :func:`~pets.paillier.encryption.random_unit`);
* a pool is never persisted, copied or shown: pickling and copying raise
  ``TypeError`` (a restored copy would replay used randomness) and the repr
  shows sizes only.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, NoReturn

import gmpy2

from pets.errors import InvalidInputError, NotReadyError
from pets.paillier.encryption import random_unit

if TYPE_CHECKING:
    import phe


class RandomnessPool:
    """A single-use stock of ``r^n mod n^2`` values for one public key.

    ``RandomnessPool(public_key, size)`` fills itself with ``size`` entries
    (``fill=False`` to defer); :meth:`refill` tops it up. Thread-safe.
    """

    __slots__ = ("_entries", "_lock", "_n", "_n2", "_public_key", "_size")

    def __init__(self, public_key: phe.PaillierPublicKey, size: int, *, fill: bool = True) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InvalidInputError("pool size must be a non-negative int")
        self._public_key = public_key
        self._n = gmpy2.mpz(public_key.n)
        self._n2 = self._n * self._n
        self._size = size
        self._entries: list[gmpy2.mpz] = []
        self._lock = threading.Lock()
        if fill:
            self.refill()

    @property
    def public_key(self) -> phe.PaillierPublicKey:
        return self._public_key

    @property
    def size(self) -> int:
        """Target number of entries that :meth:`refill` tops up to."""
        return self._size

    def __len__(self) -> int:
        """Entries available now."""
        return len(self._entries)

    def refill(self, count: int | None = None) -> int:
        """Add ``count`` fresh entries, or by default top up to :attr:`size`.

        The exponentiations run outside the lock, so other threads can keep
        taking entries meanwhile. Returns the number of entries added.
        """
        if count is None:
            count = max(0, self._size - len(self._entries))
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidInputError("refill count must be a non-negative int")
        fresh = [gmpy2.powmod(random_unit(self._n), self._n, self._n2) for _ in range(count)]
        with self._lock:
            self._entries.extend(fresh)
        return count

    def take(self, count: int = 1) -> list[gmpy2.mpz]:
        """Remove and return ``count`` entries; each is handed out only once.

        Raises :class:`NotReadyError` (and takes nothing) when fewer than
        ``count`` are available: call :meth:`refill` or encrypt without a pool.
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidInputError("count must be a non-negative int")
        with self._lock:
            available = len(self._entries)
            if count > available:
                raise NotReadyError(
                    f"randomness pool has {available} entries, {count} needed; refill it"
                )
            taken = self._entries[available - count :]
            del self._entries[available - count :]
        return taken

    def __repr__(self) -> str:
        return f"<RandomnessPool available={len(self._entries)} size={self._size}>"

    def _refuse(self, *args: object) -> NoReturn:
        raise TypeError("RandomnessPool holds one-time secrets and cannot be pickled or copied")

    __reduce__ = _refuse
    __reduce_ex__ = _refuse
    __getstate__ = _refuse
    __copy__ = _refuse
    __deepcopy__ = _refuse
