"""The XOFs of draft-irtf-cfrg-vdaf-20 §6.2.

- :class:`XofTurboShake128` (§6.2.1) on pycryptodome's TurboSHAKE128
  (RFC 9861; neither ``hashlib`` nor ``cryptography`` has it). The draft's
  ``next`` re-hashes and slices; the absorb-then-squeeze API is equivalent.
- :class:`XofFixedKeyAes128` (§6.2.2) on ``cryptography``'s AES-128-ECB with the
  fixed key derived by TurboSHAKE128 (domain byte 2). Prio3 does not use it;
  it is here because the draft defines it and its vectors must pass.

``next_vec`` is the draft's rejection sampler (§6.2): elements are read
``ENCODED_SIZE`` bytes at a time, masked to ``next_power_of_2(p) - 1``, and
values ``>= p`` are skipped. It reads whole buffers and samples them with numpy
(:meth:`pets.vdaf.field.Field.words_to_elems`), refilling only for rejects.
"""

from __future__ import annotations

from Crypto.Hash import TurboSHAKE128
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from pets.vdaf.errors import VdafParameterError
from pets.vdaf.field import Field


class Xof:
    """Common interface: ``next``, ``next_vec``, ``derive_seed``, ``expand_into_vec``."""

    SEED_SIZE: int

    def next(self, length: int) -> bytes:
        raise NotImplementedError

    def next_vec(self, field: Field, length: int) -> list[int]:
        out: list[int] = []
        need = length
        while need > 0:
            vals, _rejected = field.words_to_elems(self.next(need * field.ENCODED_SIZE))
            out.extend(vals)
            need = length - len(out)
        return out

    @classmethod
    def derive_seed(cls, seed: bytes, dst: bytes, binder: bytes) -> bytes:
        return cls(seed, dst, binder).next(cls.SEED_SIZE)  # type: ignore[call-arg]

    @classmethod
    def expand_into_vec(
        cls, field: Field, seed: bytes, dst: bytes, binder: bytes, length: int
    ) -> list[int]:
        return cls(seed, dst, binder).next_vec(field, length)  # type: ignore[call-arg]


class XofTurboShake128(Xof):
    """TurboSHAKE128 over ``len(dst) (2 LE) || dst || len(seed) (1) || seed || binder``."""

    SEED_SIZE = 32

    def __init__(self, seed: bytes, dst: bytes, binder: bytes) -> None:
        if len(seed) > 255 or len(dst) > 65535:
            raise VdafParameterError("xof", "seed or domain separation tag too long")
        msg = len(dst).to_bytes(2, "little") + dst + bytes([len(seed)]) + seed + binder
        self._h = TurboSHAKE128.new(domain=1, data=msg)

    def next(self, length: int) -> bytes:
        return bytes(self._h.read(length))


class XofFixedKeyAes128(Xof):
    """Fixed-key AES-128 hashing of ``seed xor counter`` blocks (draft §6.2.2)."""

    SEED_SIZE = 16

    def __init__(self, seed: bytes, dst: bytes, binder: bytes) -> None:
        if len(seed) != self.SEED_SIZE:
            raise VdafParameterError("xof", "incorrect seed size")
        if len(dst) > 65535:
            raise VdafParameterError("xof", "domain separation tag too long")
        key = TurboSHAKE128.new(
            domain=2, data=len(dst).to_bytes(2, "little") + dst + binder
        ).read(16)
        self._enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305
        self._seed = int.from_bytes(seed, "little")
        self._consumed = 0

    def next(self, length: int) -> bytes:
        offset = self._consumed % 16
        first = self._consumed // 16
        last = (self._consumed + length) // 16
        self._consumed += length
        sigma = bytearray()
        for i in range(first, last + 1):
            block = (self._seed ^ i).to_bytes(16, "little")
            lo, hi = block[:8], block[8:]
            mixed = bytes(a ^ b for a, b in zip(hi, lo, strict=True))
            sigma += hi + mixed
        enc = self._enc.update(bytes(sigma))
        out = bytes(a ^ b for a, b in zip(enc, sigma, strict=True))
        return out[offset : offset + length]
