"""Homomorphic aggregation: multiply ciphertexts index by index mod ``n^2``.

The product of Paillier ciphertexts decrypts to the sum of their plaintexts
mod ``n`` (Paillier 1999; ``EncryptedNumber.__add__`` in python-paillier is
this multiplication). The leader never sees a plaintext and never needs the
private key.

Two interfaces:

* :func:`aggregate`: fold one holder's list of ciphertext ints into a running
  list, in place.
* :class:`Accumulator`: the streaming form, the one the leader serves
  (:mod:`pets.protocols.paillier`). It keeps only the
  running product per ciphertext index (as gmpy2 ``mpz``), so its memory is
  ``length`` ciphertexts whatever the number of holders. Each holder's stream
  is read through a :class:`Contribution` (chunks of any size and boundaries;
  each ciphertext is parsed and validated as soon as its last byte arrives) and
  folded in only once complete, so an aborted or malformed stream leaves the
  aggregate untouched. Up to ``max_contributions`` contributions are accepted
  (use the layout's ``max_holders``: beyond it packed slots may carry).
  :meth:`Accumulator.from_bytes` restores one from :meth:`Accumulator.to_bytes`
  (the leader's durable copy).

Products are not re-randomised: the aggregate is the product of ciphertexts
that were each randomised by their holder, and only the analyst decrypts it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import gmpy2

from pets.errors import InvalidInputError, NotReadyError
from pets.paillier.serialization import (
    check_ciphertext,
    ciphertext_width,
    ciphertexts_from_bytes,
    ciphertexts_to_bytes,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    import phe


def aggregate(
    public_key: phe.PaillierPublicKey,
    accumulator: list[int] | None,
    ciphertexts: Sequence[int],
) -> list[int]:
    """Fold ``ciphertexts`` into ``accumulator`` (index-wise product mod ``n^2``).

    With ``accumulator=None`` returns a new list (the first contribution);
    otherwise updates ``accumulator`` in place and returns it. Every incoming
    ciphertext is validated first (range ``[1, n^2)``, unit mod ``n``), so a bad
    one raises :class:`InvalidInputError` and leaves ``accumulator`` unchanged.
    """
    n = gmpy2.mpz(public_key.n)
    n2 = n * n
    cs = [check_ciphertext(n, n2, c) for c in ciphertexts]
    if accumulator is None:
        return [int(c) for c in cs]
    if len(accumulator) != len(cs):
        raise InvalidInputError(
            f"contribution has {len(cs)} ciphertexts, the aggregate has {len(accumulator)}"
        )
    for i, c in enumerate(cs):
        accumulator[i] = int(gmpy2.mpz(accumulator[i]) * c % n2)
    return accumulator


class Contribution:
    """One holder's ciphertext stream, re-aligned from chunks of any size.

    Obtained from :meth:`Accumulator.begin`; feed it with :meth:`feed`, then
    hand it to :meth:`Accumulator.add`. Holds at most ``length`` ciphertexts.
    """

    __slots__ = ("_buffer", "_ciphertexts", "_length", "_n", "_n2", "_width")

    def __init__(self, public_key: phe.PaillierPublicKey, length: int) -> None:
        self._n = gmpy2.mpz(public_key.n)
        self._n2 = self._n * self._n
        self._width = ciphertext_width(public_key)
        self._length = length
        self._buffer = bytearray()
        self._ciphertexts: list[gmpy2.mpz] = []

    @property
    def received(self) -> int:
        """Complete ciphertexts received so far."""
        return len(self._ciphertexts)

    @property
    def pending_bytes(self) -> int:
        """Bytes of a ciphertext whose remaining bytes have not arrived yet."""
        return len(self._buffer)

    @property
    def complete(self) -> bool:
        return len(self._ciphertexts) == self._length and not self._buffer

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        """Append bytes; parse and validate every ciphertext they complete."""
        width = self._width
        data = memoryview(chunk).cast("B")
        pos = 0
        if self._buffer:
            need = width - len(self._buffer)
            self._buffer += data[:need]
            pos = min(need, len(data))
            if len(self._buffer) < width:
                return
            self._append(bytes(self._buffer))
            self._buffer.clear()
        end = pos + (len(data) - pos) // width * width
        for i in range(pos, end, width):
            self._append(data[i : i + width])
        self._buffer += data[end:]
        if len(self._ciphertexts) == self._length and self._buffer:
            raise InvalidInputError("contribution is longer than the vector")

    def _append(self, raw: bytes | memoryview) -> None:
        if len(self._ciphertexts) >= self._length:
            raise InvalidInputError("contribution is longer than the vector")
        self._ciphertexts.append(check_ciphertext(self._n, self._n2, int.from_bytes(raw, "big")))

    def ciphertexts(self) -> list[gmpy2.mpz]:
        """The parsed ciphertexts; :class:`InvalidInputError` unless complete."""
        if not self.complete:
            raise InvalidInputError(
                f"incomplete contribution: {len(self._ciphertexts)} of {self._length} "
                "ciphertexts (or a trailing partial one)"
            )
        return self._ciphertexts


class Accumulator:
    """Running index-wise product of many holders' ciphertext vectors.

    ``Accumulator(public_key, length, max_contributions=layout.max_holders)``.
    Concurrent streams: ``c = acc.begin(); c.feed(...); ...; acc.add(c)`` per
    holder (``add`` is thread-safe). A single sequential stream of whole
    vectors back to back may instead go through :meth:`feed`, which folds each
    vector when its last ciphertext arrives.
    """

    def __init__(
        self,
        public_key: phe.PaillierPublicKey,
        length: int,
        *,
        max_contributions: int | None = None,
    ) -> None:
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise InvalidInputError("accumulator length must be a positive int")
        self._public_key = public_key
        self._n2 = gmpy2.mpz(public_key.n) ** 2
        self._length = length
        self._max = max_contributions
        self._products: list[gmpy2.mpz] = [gmpy2.mpz(1)] * length
        self._contributors = 0
        self._lock = threading.Lock()
        self._stream: Contribution | None = None

    @classmethod
    def from_bytes(
        cls,
        public_key: phe.PaillierPublicKey,
        length: int,
        data: bytes | bytearray | memoryview,
        *,
        contributors: int,
        max_contributions: int | None = None,
    ) -> Accumulator:
        """An accumulator restored from :meth:`to_bytes` over ``contributors``
        contributions; every ciphertext is checked again (range, unit mod ``n``)."""
        if isinstance(contributors, bool) or not isinstance(contributors, int) or contributors < 1:
            raise InvalidInputError("a restored aggregate needs a positive contributor count")
        products = ciphertexts_from_bytes(public_key, bytes(data))
        if len(products) != length:
            raise InvalidInputError(f"aggregate has {len(products)} ciphertexts, expected {length}")
        acc = cls(public_key, length, max_contributions=max_contributions)
        acc._products = [gmpy2.mpz(c) for c in products]
        acc._contributors = contributors
        return acc

    @property
    def contributors(self) -> int:
        """Number of complete contributions folded in."""
        return self._contributors

    @property
    def length(self) -> int:
        return self._length

    @property
    def max_contributions(self) -> int | None:
        return self._max

    def begin(self) -> Contribution:
        """A fresh reader for one holder's byte stream."""
        return Contribution(self._public_key, self._length)

    def add(self, contribution: Contribution | Sequence[int]) -> None:
        """Fold one complete contribution (a :class:`Contribution` or ciphertext ints)."""
        if isinstance(contribution, Contribution):
            cs = contribution.ciphertexts()
        else:
            n = gmpy2.mpz(self._public_key.n)
            cs = [check_ciphertext(n, self._n2, c) for c in contribution]
            if len(cs) != self._length:
                raise InvalidInputError(
                    f"contribution has {len(cs)} ciphertexts, expected {self._length}"
                )
        n2 = self._n2
        with self._lock:
            if self._max is not None and self._contributors >= self._max:
                raise InvalidInputError(
                    f"more than max_contributions={self._max} contributions: slots could carry"
                )
            products = self._products
            for i, c in enumerate(cs):
                products[i] = products[i] * c % n2
            self._contributors += 1

    def merge(self, other: Accumulator) -> None:
        """Fold in another accumulator of the same key and length (index-wise product
        mod n^2, contributor counts added): merging replicas' shards (issue 14)."""
        if other._length != self._length or other._n2 != self._n2:
            raise InvalidInputError("only an accumulator of the same key and length merges")
        n2 = self._n2
        with self._lock:
            pairs = zip(self._products, other._products, strict=True)
            self._products = [a * b % n2 for a, b in pairs]
            self._contributors += other._contributors

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        """Sequential mode: bytes of whole vectors back to back, any chunking.

        On an invalid ciphertext the partial vector is discarded and the error
        raised; the stream is then unusable (its alignment is unknown).
        """
        data = memoryview(chunk).cast("B")
        width = ciphertext_width(self._public_key)
        while len(data):
            if self._stream is None:
                self._stream = self.begin()
            stream = self._stream
            # Feed no further than the end of the current vector.
            missing = (self._length - stream.received) * width - stream.pending_bytes
            part, data = data[:missing], data[missing:]
            try:
                stream.feed(part)
            except InvalidInputError:
                # Alignment is lost: the caller must abandon this stream.
                self._stream = None
                raise
            if stream.complete:
                self._stream = None
                self.add(stream)

    def ciphertexts(self) -> list[int]:
        """The aggregate ciphertexts as ints (for ``decrypt_vector`` or phe)."""
        with self._lock:
            if self._stream is not None:
                raise NotReadyError("a fed vector is incomplete")
            if self._contributors == 0:
                raise NotReadyError("no contributions have been aggregated")
            return [int(c) for c in self._products]

    def to_bytes(self) -> bytes:
        """The aggregate ciphertexts in the fixed-width wire format."""
        return ciphertexts_to_bytes(self._public_key, self.ciphertexts())
