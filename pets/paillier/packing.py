"""Packing: many bounded integers into few Paillier plaintexts, and back.

Encoding is kept apart from encryption, as python-paillier keeps
``EncodedNumber`` apart from ``raw_encrypt``: this module knows nothing about
keys except their size, and the encryption module knows nothing about slots.

Layout. Every holder's vector has ``length`` entries, each in ``[lo, hi]``.
A holder adds ``-lo`` to each entry (the *offset*), so slot contents are in
``[0, span]`` with ``span = hi - lo``; the sum over ``c`` holders is then in
``[0, c * span]``. A slot is ``slot_bits = bit_length(max_holders * span)``
bits wide, so the sum of up to ``max_holders`` honest holders never carries
into the next slot. Slot ``i`` of plaintext ``j`` holds entry
``j * slots_per_plaintext + i`` at bit offset ``i * slot_bits`` (slot 0 in the
least significant bits). ``slots_per_plaintext`` is the largest count whose
total width ``packed_bits`` leaves ``margin_bits`` (default 64) spare bits below
the top bit of ``n``, so a packed aggregate is always far below ``n`` and a
plaintext with any bit set above ``packed_bits`` is recognisably wrong. Unpacking
``c`` contributions subtracts ``c * (-lo)`` from each slot.

Speed. Slots need not be whole bytes or fit in 64 bits, so packing goes
through numpy bit arrays (``unpackbits`` / ``packbits`` with little-endian bit
order) and one ``int.from_bytes`` per plaintext; unpacking reverses it and
regroups slot bits into 64-bit limbs. Both are a few milliseconds for 10^4
values, against tens of milliseconds for a single 2048-bit encryption.

What unpacking can and cannot detect (:class:`OverflowDetectedError`):

* detected: a slot sum above ``contributors * span`` for the contributor
  count the caller reports (e.g. a holder packed an out-of-range value big
  enough to push its slot over the bound, or a carry from the slot below that
  lands above the bound). Whether "more holders than ``max_holders``" is caught
  depends on that count being right: the leader enforces the cap and reports
  the count; a wrong count can hide carries;
  a non-zero unused slot in the last plaintext; a plaintext with bits set at or
  above ``packed_bits``. A corrupted ciphertext, a ciphertext under another key
  or a plaintext that wrapped around ``n`` decrypts to an essentially random
  value mod ``n``, which lands below ``2**packed_bits`` with probability at
  most ``2**-margin_bits``.
* not detected: a malicious holder choosing its plaintext freely. It can put
  any value into a slot as long as the slot *sum* stays within the bound (a
  value outside ``[lo, hi]``, or a negative contribution encoded as
  ``n - x``, which subtracts from the aggregate without wrapping visibly), and
  it can move value between neighbouring slots with deliberate carries or
  borrows. Paillier gives confidentiality, not input validity: stopping this
  needs per-holder range proofs (pets.zk) or a trusted encoder. These checks
  catch bugs, misconfiguration and crude tampering only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from pets.errors import InvalidInputError, OverflowDetectedError

if TYPE_CHECKING:
    from collections.abc import Sequence

    import phe

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
_MASK64 = (1 << 64) - 1

DEFAULT_MARGIN_BITS = 64
"""Spare bits kept between the packed width and the top bit of ``n``."""

_BLOCK_VALUES = 1 << 16
"""Values packed per numpy block; bounds temporary memory to a few MB."""


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


@dataclass(frozen=True, slots=True)
class PackingLayout:
    """How a vector of ``length`` integers in ``[lo, hi]`` maps onto plaintexts.

    Derived fields (computed, not passed): ``span``, ``slot_bits``,
    ``slots_per_plaintext``, ``num_plaintexts``, ``packed_bits``. Invalid
    parameters raise :class:`InvalidInputError`. Bounds must lie in the int64
    range, since holders' vectors are numpy int64.
    """

    lo: int
    hi: int
    max_holders: int
    length: int
    key_bits: int
    margin_bits: int = DEFAULT_MARGIN_BITS
    span: int = field(init=False)
    slot_bits: int = field(init=False)
    slots_per_plaintext: int = field(init=False)
    num_plaintexts: int = field(init=False)
    packed_bits: int = field(init=False)

    def __post_init__(self) -> None:
        for name in ("lo", "hi", "max_holders", "length", "key_bits", "margin_bits"):
            if not _is_int(getattr(self, name)):
                raise InvalidInputError(f"packing layout field {name!r} must be an int")
        if not INT64_MIN <= self.lo <= self.hi <= INT64_MAX:
            raise InvalidInputError("packing bounds must satisfy int64 min <= lo <= hi <= max")
        if self.max_holders < 1:
            raise InvalidInputError("max_holders must be at least 1")
        if self.length < 1:
            raise InvalidInputError("vector length must be at least 1")
        if self.margin_bits < 0:
            raise InvalidInputError("margin_bits must not be negative")
        span = self.hi - self.lo
        slot_bits = max(1, (self.max_holders * span).bit_length())
        usable = self.key_bits - 1 - self.margin_bits
        per_plaintext = min(usable // slot_bits, self.length) if usable > 0 else 0
        if per_plaintext < 1:
            raise InvalidInputError(
                f"a {slot_bits}-bit slot does not fit a {self.key_bits}-bit key "
                f"with a {self.margin_bits}-bit margin"
            )
        set_ = object.__setattr__
        set_(self, "span", span)
        set_(self, "slot_bits", slot_bits)
        set_(self, "slots_per_plaintext", per_plaintext)
        set_(self, "num_plaintexts", -(-self.length // per_plaintext))
        set_(self, "packed_bits", per_plaintext * slot_bits)

    @classmethod
    def for_key(
        cls,
        public_key: phe.PaillierPublicKey,
        *,
        lo: int,
        hi: int,
        max_holders: int,
        length: int,
        margin_bits: int = DEFAULT_MARGIN_BITS,
    ) -> PackingLayout:
        """The layout for ``public_key``'s modulus size."""
        return cls(lo, hi, max_holders, length, int(public_key.n).bit_length(), margin_bits)

    def check_key(self, public_key: phe.PaillierPublicKey) -> None:
        """Raise :class:`InvalidInputError` unless packed plaintexts fit below ``n``."""
        if int(public_key.n).bit_length() < self.key_bits:
            raise InvalidInputError("packing layout was made for a larger key than this one")

    @property
    def max_slot_sum(self) -> int:
        """Largest honest slot value: ``max_holders * (hi - lo)``."""
        return self.max_holders * self.span


def _as_int64_vector(layout: PackingLayout, values: object) -> np.ndarray:
    """Validate shape, dtype and bounds; return a contiguous int64 copy or view."""
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.shape[0] != layout.length:
        raise InvalidInputError(
            f"expected a 1-D vector of {layout.length} values, got shape {arr.shape}"
        )
    if arr.dtype.kind not in "iu":
        raise InvalidInputError(f"values must be a numpy integer array, not {arr.dtype}")
    if arr.dtype == np.uint64 and bool((arr > np.uint64(INT64_MAX)).any()):
        bad = int(np.flatnonzero(arr > np.uint64(INT64_MAX))[0])
        raise InvalidInputError(f"value at index {bad} is outside [lo, hi]")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    outside = (arr < layout.lo) | (arr > layout.hi)
    if outside.any():
        # Indices only: the values are the holder's data.
        indices = np.flatnonzero(outside)
        raise InvalidInputError(
            f"{indices.size} value(s) outside [lo, hi], first at index {int(indices[0])}"
        )
    return arr


def pack(layout: PackingLayout, values: np.ndarray | Sequence[int]) -> list[int]:
    """Pack a holder's vector into ``layout.num_plaintexts`` plaintext integers.

    Raises :class:`InvalidInputError` on a wrong shape or dtype and on any value
    outside ``[lo, hi]``, before anything is encrypted.
    """
    arr = _as_int64_vector(layout, values)
    # v - lo lies in [0, span] with span < 2**64, so wrapping uint64 arithmetic
    # gives it exactly.
    offsets = arr.view(np.uint64) - np.uint64(layout.lo & _MASK64)
    return _pack_offsets(layout, offsets)


def pack_offsets(layout: PackingLayout, offsets: np.ndarray) -> list[int]:
    """Pack slot values already offset to ``[0, 2^64)`` (uint64), e.g. the leader's
    DP noise shifted by its bound (:mod:`pets.protocols.paillier`); the layout
    must leave room for them in its ``max_holders`` headroom."""
    arr = np.asarray(offsets)
    if arr.dtype != np.uint64 or arr.shape != (layout.length,):
        raise InvalidInputError(f"offsets must be {layout.length} uint64 values")
    return _pack_offsets(layout, arr)


def _pack_offsets(layout: PackingLayout, offsets: np.ndarray) -> list[int]:
    s, k = layout.slot_bits, layout.slots_per_plaintext
    row_bits = k * s
    row_bytes = (row_bits + 7) // 8
    per_block = max(1, _BLOCK_VALUES // k)
    out: list[int] = []
    for first in range(0, layout.num_plaintexts, per_block):
        chunk = offsets[first * k : (first + per_block) * k]
        rows = -(-chunk.size // k)
        padded = np.zeros(rows * k, dtype="<u8")
        padded[: chunk.size] = chunk
        bits = np.unpackbits(padded.view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")
        bits = bits[:, :s] if s <= 64 else np.pad(bits, ((0, 0), (0, s - 64)))
        data = np.packbits(bits.reshape(rows, row_bits), axis=1, bitorder="little").tobytes()
        out.extend(
            int.from_bytes(data[i * row_bytes : (i + 1) * row_bytes], "little") for i in range(rows)
        )
    return out


def unpack(layout: PackingLayout, plaintexts: Sequence[int], contributors: int) -> list[int]:
    """Recover the sum over ``contributors`` holders from packed plaintexts.

    Raises :class:`InvalidInputError` for a wrong number of plaintexts or
    contributors outside ``[1, max_holders]``, and
    :class:`OverflowDetectedError` when a slot exceeds ``contributors * span``,
    an unused slot is non-zero, or a plaintext has bits at or above
    ``packed_bits`` (see the module docstring for what this does and does not
    catch). Returns exact Python ints (sums may exceed 64 bits).
    """
    if not _is_int(contributors) or not 1 <= contributors <= layout.max_holders:
        raise InvalidInputError(
            f"contributors must be between 1 and max_holders={layout.max_holders}"
        )
    if len(plaintexts) != layout.num_plaintexts:
        raise InvalidInputError(
            f"expected {layout.num_plaintexts} plaintexts, got {len(plaintexts)}"
        )
    s, k, length = layout.slot_bits, layout.slots_per_plaintext, layout.length
    row_bits = k * s
    row_bytes = (row_bits + 7) // 8
    chunks = []
    for j, pt in enumerate(plaintexts):
        value = int(pt)
        if value < 0:
            raise InvalidInputError("plaintexts must be non-negative")
        if value >> row_bits:
            raise OverflowDetectedError(
                f"plaintext {j} has bits beyond the packed width: "
                "overflow, a wrong key or a malformed contribution"
            )
        chunks.append(value.to_bytes(row_bytes, "little"))
    raw = np.frombuffer(b"".join(chunks), dtype=np.uint8).reshape(layout.num_plaintexts, row_bytes)
    bits = np.unpackbits(raw, axis=1, bitorder="little")[:, :row_bits].reshape(-1, s)
    if bits.shape[0] > length and bits[length:].any():
        raise OverflowDetectedError("an unused slot of the last plaintext is not zero")
    limbs = -(-s // 64)
    bits = bits[:length]
    if limbs * 64 != s:
        bits = np.pad(bits, ((0, 0), (0, limbs * 64 - s)))
    words = np.packbits(bits, axis=1, bitorder="little").view("<u8").reshape(length, limbs)
    bound = contributors * layout.span
    if limbs == 1:
        slots = words[:, 0]
        over = slots > np.uint64(bound) if bound <= _MASK64 else None
        sums: list[int] = slots.tolist()
    else:
        obj = words[:, 0].astype(object)
        for j in range(1, limbs):
            obj = obj + (words[:, j].astype(object) << (64 * j))
        over = obj > bound
        sums = obj.tolist()
    if over is not None and over.any():
        first = int(np.flatnonzero(over)[0])
        raise OverflowDetectedError(
            f"aggregate slot {first} exceeds contributors*(hi-lo): "
            "overflow or a malformed contribution"
        )
    base = contributors * layout.lo
    if base:
        return [x + base for x in sums]
    return sums
