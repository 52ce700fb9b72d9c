"""The one Fiat-Shamir transcript of the zero-knowledge module.

A transcript is a running SHA-256 over *labelled, length-prefixed* records,
so no two different sequences of absorptions can collide by concatenation:

    record = u16(len(label)) || label || u32(len(data)) || data

It starts with a fixed domain string and the protocol label. Callers absorb
every public input (group name, generators, commitments, statement
constants, context bytes) and every prover message *before* calling
:meth:`Transcript.challenge`, which draws a scalar with RFC 9380
``hash_to_field`` (L = 48, so no modulo bias) from the current state, then
absorbs the challenge itself so later challenges depend on earlier ones.
This is the "strong Fiat-Shamir" discipline of Bernhard, Pereira and
Warinschi, "How not to prove yourself" (ASIACRYPT 2012).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pets.zk.curve import N

if TYPE_CHECKING:
    from pets.zk.group import Point

_DOMAIN = b"pets/zk/transcript/v1"
_CHALLENGE_DST = b"PETS-V01-fiat-shamir-challenge"
# Precomputed pieces of expand_message_xmd(msg, _CHALLENGE_DST, 48) (RFC 9380 5.3.1):
# the hash state after Z_pad, and the suffixes after msg and after b_0 / strxor.
_DST_PRIME = _CHALLENGE_DST + bytes([len(_CHALLENGE_DST)])
_ZPAD_STATE = hashlib.sha256(bytes(64))
_MSG_SUFFIX = (48).to_bytes(2, "big") + b"\x00" + _DST_PRIME


def challenge_from_digest(digest: bytes) -> int:
    """``hash_to_scalar(digest, _CHALLENGE_DST)``: RFC 9380 hash_to_field, L = 48, mod n."""
    h = _ZPAD_STATE.copy()
    h.update(digest + _MSG_SUFFIX)
    b0 = h.digest()
    b1 = hashlib.sha256(b0 + b"\x01" + _DST_PRIME).digest()
    mixed = (int.from_bytes(b0, "big") ^ int.from_bytes(b1, "big")).to_bytes(32, "big")
    b2 = hashlib.sha256(mixed + b"\x02" + _DST_PRIME).digest()
    return int.from_bytes(b1 + b2[:16], "big") % N


def _record(label: bytes, data: bytes) -> bytes:
    return len(label).to_bytes(2, "big") + label + len(data).to_bytes(4, "big") + data


class Transcript:
    """Labelled, length-prefixed hash transcript with scalar challenges."""

    __slots__ = ("_h",)

    def __init__(self, protocol_label: bytes | str) -> None:
        label = protocol_label.encode() if isinstance(protocol_label, str) else protocol_label
        self._h = hashlib.sha256(_record(b"domain", _DOMAIN))
        self._h.update(_record(b"protocol", label))

    def copy(self) -> Transcript:
        clone = Transcript.__new__(Transcript)
        clone._h = self._h.copy()
        return clone

    def append_bytes(self, label: bytes, data: bytes) -> None:
        self._h.update(_record(label, data))

    def append_int(self, label: bytes, value: int) -> None:
        """A signed integer of any size (statement constants such as range bounds)."""
        length = (value.bit_length() + 8) // 8
        self._h.update(_record(label, value.to_bytes(length, "big", signed=True)))

    def append_scalar(self, label: bytes, k: int) -> None:
        self._h.update(_record(label, k.to_bytes(32, "big")))

    def append_point(self, label: bytes, point: Point) -> None:
        self._h.update(_record(label, point.to_bytes()))

    def append_points(self, label: bytes, points: Iterable[Point]) -> None:
        """Several points as one record (the count is implied by the record length)."""
        self._h.update(_record(label, b"".join(p.to_bytes() for p in points)))

    def challenge(self, label: bytes = b"challenge") -> int:
        """Draw a challenge scalar in [0, n) and absorb it."""
        self._h.update(_record(b"challenge-label", label))
        c = challenge_from_digest(self._h.digest())
        self._h.update(_record(b"challenge-value", c.to_bytes(32, "big")))
        return c
