"""Prio3 (draft-irtf-cfrg-vdaf-20 §7.2): an FLP turned into a VDAF, with its wire format.

Roles and names follow the draft: the Client calls :meth:`Prio3.shard`; each
Aggregator ``agg_id`` calls :meth:`Prio3.verify_init` and sends its verifier
share; anyone holding all verifier shares calls
:meth:`Prio3.verifier_shares_to_message`; each Aggregator finishes with
:meth:`Prio3.verify_next`, then aggregates (``agg_init``/``agg_update``/``merge``
or :meth:`Prio3.aggregate`); the Collector calls :meth:`Prio3.unshard`.

Messages cross this API as bytes in the draft's encoding (§7.2.6): public
share, input shares, verifier shares, verifier message, aggregate shares.
Every decode checks the exact length and that each field element is
canonical, and raises :class:`~pets.vdaf.errors.VdafDecodeError` naming the
step. Any number of shares from 2 to 255 is supported; helpers receive seeds
(and a blind when the circuit uses joint randomness). Randomness for
``shard`` comes from ``os.urandom`` unless injected (``rand=``) for
known-answer tests. No I/O.

Arguments that may come off the wire or out of a store (messages, nonce,
context, verify key, the measurement count) are checked for type as well:
anything but a bytes-like object (``bytes``, ``bytearray``, ``memoryview``)
or a positive count is a :class:`~pets.vdaf.errors.VdafError` naming the
step, never a ``TypeError``. Objects only this process builds
(:class:`VerifyState`, decoded shares, output shares) are not re-checked: a
wrong Python type there is a programming error and may raise ``TypeError``.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass
from itertools import repeat
from operator import add, mod
from typing import Any

from pets.vdaf.circuits import Valid
from pets.vdaf.errors import VdafDecodeError, VdafError, VdafParameterError, VdafVerifyError
from pets.vdaf.field import FIELDS, Field
from pets.vdaf.flp import Flp
from pets.vdaf.xof import Xof, XofTurboShake128

VERSION = 18
NONCE_SIZE = 16

USAGE_MEAS_SHARE = 1
USAGE_PROOF_SHARE = 2
USAGE_JOINT_RANDOMNESS = 3
USAGE_PROVE_RANDOMNESS = 4
USAGE_QUERY_RANDOMNESS = 5
USAGE_JOINT_RAND_SEED = 6
USAGE_JOINT_RAND_PART = 7


def _as_bytes(
    value: object, what: str, step: str, error: type[VdafError] = VdafDecodeError
) -> bytes:
    """``value`` as bytes; anything but a bytes-like object is refused (untrusted input)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise error(step, f"{what} must be bytes, not {type(value).__name__}")


def _as_byte_list(value: object, count: int, what: str, step: str) -> list[bytes]:
    """A list (or tuple) of exactly ``count`` bytes-like messages."""
    if not isinstance(value, list | tuple):
        raise VdafDecodeError(step, f"{what} must be a list, not {type(value).__name__}")
    if len(value) != count:
        raise VdafDecodeError(step, f"wrong number of {what}")
    return [_as_bytes(v, what, step) for v in value]


def format_dst(algo_class: int, algo: int, usage: int) -> bytes:
    """Domain separation tag prefix (draft §6.2.3)."""
    return (
        VERSION.to_bytes(1, "big")
        + algo_class.to_bytes(1, "big")
        + algo.to_bytes(4, "big")
        + usage.to_bytes(2, "big")
    )


@dataclass(frozen=True)
class LeaderShare:
    meas_share: list[int]
    proofs_share: list[int]
    blind: bytes | None
    encoded_meas_share: bytes | None = None


@dataclass(frozen=True)
class HelperShare:
    seed: bytes
    blind: bytes | None


class VerifyState:
    """An Aggregator's state between ``verify_init`` and ``verify_next``.

    ``encoded`` is the output share's encoding when it came for free (the
    circuit's output is a prefix of the encoded measurement share, e.g.
    Histogram). The state then pickles as those bytes, not as a list of ints
    (most of what a batch on worker processes sends back, :mod:`pets.vdaf.batch`),
    and an unpickled state decodes its output share only when it is first
    used (``verify_next``, aggregation). Immutable; it holds a secret share, so
    its repr shows no values.
    """

    __slots__ = ("_encoded", "_field", "_out", "corrected_joint_rand_seed")

    corrected_joint_rand_seed: bytes | None
    _out: list[int] | None
    _encoded: bytes | None
    _field: Field | None

    def __init__(
        self,
        out_share: list[int] | None,
        corrected_joint_rand_seed: bytes | None,
        *,
        encoded: bytes | None = None,
        field: Field | None = None,
    ) -> None:
        if out_share is None and (encoded is None or field is None):
            raise ValueError("a verify state needs its output share, decoded or encoded")
        object.__setattr__(self, "_out", out_share)
        object.__setattr__(self, "corrected_joint_rand_seed", corrected_joint_rand_seed)
        object.__setattr__(self, "_encoded", encoded if field is not None else None)
        object.__setattr__(self, "_field", field)

    @property
    def out_share(self) -> list[int]:
        out = self._out
        if out is None:
            assert self._field is not None and self._encoded is not None
            out = self._field.decode_vec(self._encoded)
            if out is None:
                raise ValueError("corrupt verify state")
            object.__setattr__(self, "_out", out)
        return out

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("VerifyState is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VerifyState):
            return NotImplemented
        return (self.out_share, self.corrected_joint_rand_seed) == (
            other.out_share,
            other.corrected_joint_rand_seed,
        )

    def __hash__(self) -> int:
        return hash((tuple(self.out_share), self.corrected_joint_rand_seed))

    def __repr__(self) -> str:
        return "VerifyState(<secret>)"

    def encoded_out_share(self, field: Field) -> bytes:
        """The output share's encoding (the cached one when ``field`` made it)."""
        if self._encoded is not None and self._field is field:
            return self._encoded
        return field.encode_vec(self.out_share)

    def __reduce__(self) -> tuple[Any, ...]:
        seed = self.corrected_joint_rand_seed
        if self._encoded is not None and self._field is not None:
            return (_state_from_encoded, (self._field.name, self._encoded, seed))
        return (VerifyState, (self.out_share, seed))


def _state_from_encoded(field_name: str, encoded: bytes, seed: bytes | None) -> VerifyState:
    """Unpickle a :class:`VerifyState` sent as its encoded output share (decoded on use)."""
    return VerifyState(None, seed, encoded=encoded, field=FIELDS[field_name])


class Prio3:
    """One Prio3 instance: a circuit, an algorithm ID, a share count and a proof count."""

    ROUNDS = 1
    NONCE_SIZE = NONCE_SIZE

    def __init__(
        self,
        valid: Valid,
        vdaf_id: int,
        shares: int,
        proofs: int = 1,
        xof: type[Xof] = XofTurboShake128,
        name: str = "Prio3",
    ) -> None:
        if not isinstance(shares, int) or not 2 <= shares <= 255:
            raise VdafParameterError("parameters", "shares must be in [2, 255]")
        if not isinstance(proofs, int) or not 1 <= proofs <= 255:
            raise VdafParameterError("parameters", "proofs must be in [1, 255]")
        self.name = name
        self.ID = vdaf_id
        self.SHARES = shares
        self.PROOFS = proofs
        self.xof = xof
        self.flp = Flp(valid)
        self.field = valid.field
        self.SEED_SIZE = xof.SEED_SIZE
        self.VERIFY_KEY_SIZE = xof.SEED_SIZE
        self.uses_joint_rand = self.flp.JOINT_RAND_LEN > 0
        per = 2 if self.uses_joint_rand else 1
        self.RAND_SIZE = per * xof.SEED_SIZE * shares
        self._dst_cache: dict[tuple[int, bytes], bytes] = {}

    def __repr__(self) -> str:
        return f"{self.name}(shares={self.SHARES}, proofs={self.PROOFS})"

    # -- lengths of encoded messages -----------------------------------------

    @property
    def verifier_len(self) -> int:
        return self.flp.VERIFIER_LEN * self.PROOFS

    def input_share_len(self, agg_id: int) -> int:
        extra = self.SEED_SIZE if self.uses_joint_rand else 0
        if agg_id == 0:
            n = self.flp.MEAS_LEN + self.flp.PROOF_LEN * self.PROOFS
            return n * self.field.ENCODED_SIZE + extra
        return self.SEED_SIZE + extra

    # -- auxiliary functions (draft §7.2.5) ----------------------------------

    def domain_separation_tag(self, usage: int, ctx: bytes) -> bytes:
        key = (usage, ctx)
        dst = self._dst_cache.get(key)
        if dst is None:
            dst = format_dst(0, self.ID, usage) + ctx
            if len(self._dst_cache) < 64:
                self._dst_cache[key] = dst
        return dst

    def helper_meas_share(self, ctx: bytes, agg_id: int, seed: bytes) -> list[int]:
        return self.xof.expand_into_vec(
            self.field,
            seed,
            self.domain_separation_tag(USAGE_MEAS_SHARE, ctx),
            bytes([agg_id]),
            self.flp.MEAS_LEN,
        )

    def helper_proofs_share(self, ctx: bytes, agg_id: int, seed: bytes) -> list[int]:
        return self.xof.expand_into_vec(
            self.field,
            seed,
            self.domain_separation_tag(USAGE_PROOF_SHARE, ctx),
            bytes([self.PROOFS, agg_id]),
            self.flp.PROOF_LEN * self.PROOFS,
        )

    def prove_rands(self, ctx: bytes, prove_seed: bytes) -> list[int]:
        return self.xof.expand_into_vec(
            self.field,
            prove_seed,
            self.domain_separation_tag(USAGE_PROVE_RANDOMNESS, ctx),
            bytes([self.PROOFS]),
            self.flp.PROVE_RAND_LEN * self.PROOFS,
        )

    def query_rands(self, verify_key: bytes, ctx: bytes, nonce: bytes) -> list[int]:
        return self.xof.expand_into_vec(
            self.field,
            verify_key,
            self.domain_separation_tag(USAGE_QUERY_RANDOMNESS, ctx),
            bytes([self.PROOFS]) + nonce,
            self.flp.QUERY_RAND_LEN * self.PROOFS,
        )

    def joint_rand_part(
        self, ctx: bytes, agg_id: int, blind: bytes, encoded_meas_share: bytes, nonce: bytes
    ) -> bytes:
        return self.xof.derive_seed(
            blind,
            self.domain_separation_tag(USAGE_JOINT_RAND_PART, ctx),
            bytes([agg_id]) + nonce + encoded_meas_share,
        )

    def joint_rand_seed(self, ctx: bytes, parts: list[bytes]) -> bytes:
        return self.xof.derive_seed(
            bytes(self.SEED_SIZE),
            self.domain_separation_tag(USAGE_JOINT_RAND_SEED, ctx),
            b"".join(parts),
        )

    def joint_rands(self, ctx: bytes, seed: bytes) -> list[int]:
        return self.xof.expand_into_vec(
            self.field,
            seed,
            self.domain_separation_tag(USAGE_JOINT_RANDOMNESS, ctx),
            bytes([self.PROOFS]),
            self.flp.JOINT_RAND_LEN * self.PROOFS,
        )

    # -- sharding (draft §7.2.1) ---------------------------------------------

    def shard(
        self, ctx: bytes, measurement: Any, nonce: bytes, rand: bytes | None = None
    ) -> tuple[bytes, list[bytes]]:
        """Encode, share and prove ``measurement``: (public share, input shares), encoded.

        ``rand`` (``RAND_SIZE`` bytes) is drawn from ``os.urandom`` unless given
        (known-answer tests only).
        """
        ctx = _as_bytes(ctx, "context", "shard", VdafParameterError)
        nonce = _as_bytes(nonce, "nonce", "shard", VdafParameterError)
        if len(nonce) != NONCE_SIZE:
            raise VdafParameterError("shard", "incorrect nonce size")
        if rand is None:
            rand = os.urandom(self.RAND_SIZE)
        rand = _as_bytes(rand, "random bytes", "shard", VdafParameterError)
        if len(rand) != self.RAND_SIZE:
            raise VdafParameterError("shard", "incorrect size of random bytes argument")
        return self.shard_encoded(ctx, self.flp.valid.encode(measurement), nonce, rand)

    def shard_encoded(
        self, ctx: bytes, meas: list[int], nonce: bytes, rand: bytes
    ) -> tuple[bytes, list[bytes]]:
        """``shard`` from an already encoded measurement, which is not checked.

        For known-answer vectors and tests that play a dishonest Client (an
        encoding the circuit must reject); services call :meth:`shard`.
        """
        ctx = _as_bytes(ctx, "context", "shard", VdafParameterError)
        nonce = _as_bytes(nonce, "nonce", "shard", VdafParameterError)
        rand = _as_bytes(rand, "random bytes", "shard", VdafParameterError)
        if len(nonce) != NONCE_SIZE or len(rand) != self.RAND_SIZE:
            raise VdafParameterError("shard", "incorrect nonce or randomness size")
        if len(meas) != self.flp.MEAS_LEN:
            raise VdafParameterError("shard", "encoded measurement has the wrong length")
        meas = [x % self.field.MODULUS for x in meas]
        s = self.SEED_SIZE
        seeds = [rand[i : i + s] for i in range(0, self.RAND_SIZE, s)]
        field = self.field
        flp = self.flp
        k = self.SHARES - 1
        if self.uses_joint_rand:
            helper_seeds = seeds[0 : 2 * k : 2]
            helper_blinds: list[bytes | None] = list(seeds[1 : 2 * k : 2])
            leader_blind, prove_seed = seeds[2 * k], seeds[2 * k + 1]
        else:
            helper_seeds = seeds[:k]
            helper_blinds = [None] * k
            leader_blind, prove_seed = b"", seeds[k]

        leader_meas = meas
        parts: list[bytes] = []
        for j, hseed in enumerate(helper_seeds):
            hmeas = self.helper_meas_share(ctx, j + 1, hseed)
            leader_meas = field.vec_sub(leader_meas, hmeas)
            if self.uses_joint_rand:
                blind = helper_blinds[j]
                assert blind is not None
                parts.append(
                    self.joint_rand_part(ctx, j + 1, blind, field.encode_vec(hmeas), nonce)
                )
        joint_rands: list[int] = []
        if self.uses_joint_rand:
            parts.insert(
                0, self.joint_rand_part(ctx, 0, leader_blind, field.encode_vec(leader_meas), nonce)
            )
            joint_rands = self.joint_rands(ctx, self.joint_rand_seed(ctx, parts))

        prove_rands = self.prove_rands(ctx, prove_seed)
        prl, jrl = flp.PROVE_RAND_LEN, flp.JOINT_RAND_LEN
        proofs: list[int] = []
        for i in range(self.PROOFS):
            proofs += flp.prove(
                meas,
                prove_rands[i * prl : (i + 1) * prl],
                joint_rands[i * jrl : (i + 1) * jrl],
            )
        for j, hseed in enumerate(helper_seeds):
            proofs = field.vec_sub(proofs, self.helper_proofs_share(ctx, j + 1, hseed))

        leader = field.encode_vec(leader_meas) + field.encode_vec(proofs)
        if self.uses_joint_rand:
            leader += leader_blind
        input_shares = [leader]
        for hseed, hblind in zip(helper_seeds, helper_blinds, strict=True):
            input_shares.append(hseed + (hblind or b""))
        public_share = b"".join(parts)
        return public_share, input_shares

    # -- decoding of inbound messages ----------------------------------------

    def decode_public_share(self, data: bytes, step: str = "verify_init") -> list[bytes] | None:
        data = _as_bytes(data, "public share", step)
        if not self.uses_joint_rand:
            if data:
                raise VdafDecodeError(step, "public share must be empty for this circuit")
            return None
        s = self.SEED_SIZE
        if len(data) != s * self.SHARES:
            raise VdafDecodeError(step, "public share has the wrong length")
        return [data[i : i + s] for i in range(0, len(data), s)]

    def decode_input_share(
        self, agg_id: int, data: bytes, step: str = "verify_init"
    ) -> LeaderShare | HelperShare:
        self._check_agg_id(agg_id, step)
        data = _as_bytes(data, "input share", step)
        if len(data) != self.input_share_len(agg_id):
            raise VdafDecodeError(step, "input share has the wrong length")
        s = self.SEED_SIZE
        blind = data[-s:] if self.uses_joint_rand else None
        if agg_id > 0:
            return HelperShare(data[:s], blind)
        body = data[:-s] if self.uses_joint_rand else data
        vec = self.field.decode_vec(body)
        if vec is None:
            raise VdafDecodeError(step, "input share holds a non-canonical field element")
        m = self.flp.MEAS_LEN
        return LeaderShare(vec[:m], vec[m:], blind, body[: m * self.field.ENCODED_SIZE])

    def check_input_share(self, agg_id: int, data: bytes, step: str = "verify_init") -> bytes:
        """:meth:`decode_input_share`'s checks (exact length, canonical elements)
        without building the elements: the share's bytes, or a VdafDecodeError."""
        self._check_agg_id(agg_id, step)
        data = _as_bytes(data, "input share", step)
        if len(data) != self.input_share_len(agg_id):
            raise VdafDecodeError(step, "input share has the wrong length")
        if agg_id == 0:
            body = data[: -self.SEED_SIZE] if self.uses_joint_rand else data
            if not self.field.is_canonical(body):
                raise VdafDecodeError(step, "input share holds a non-canonical field element")
        return data

    def decode_verifier_share(
        self, data: bytes, step: str = "verifier_shares_to_message"
    ) -> tuple[list[int], bytes | None]:
        data = _as_bytes(data, "verifier share", step)
        f = self.field.ENCODED_SIZE
        vlen = self.verifier_len * f
        extra = self.SEED_SIZE if self.uses_joint_rand else 0
        if len(data) != vlen + extra:
            raise VdafDecodeError(step, "verifier share has the wrong length")
        vec = self.field.decode_vec(data[:vlen])
        if vec is None:
            raise VdafDecodeError(step, "verifier share holds a non-canonical field element")
        return vec, (data[vlen:] if self.uses_joint_rand else None)

    def decode_verifier_message(self, data: bytes, step: str = "verify_next") -> bytes | None:
        data = _as_bytes(data, "verifier message", step)
        if not self.uses_joint_rand:
            if data:
                raise VdafDecodeError(step, "verifier message must be empty for this circuit")
            return None
        if len(data) != self.SEED_SIZE:
            raise VdafDecodeError(step, "verifier message has the wrong length")
        return data

    def encode_agg_share(self, agg_share: list[int]) -> bytes:
        return self.field.encode_vec(agg_share)

    def decode_agg_share(self, data: bytes, step: str = "unshard") -> list[int]:
        data = _as_bytes(data, "aggregate share", step)
        vec = self.field.decode_vec(data)
        if vec is None or len(vec) != self.flp.OUTPUT_LEN:
            raise VdafDecodeError(step, "aggregate share has the wrong length or a bad element")
        return vec

    encode_out_share = encode_agg_share

    def encode_verify_state(self, state: VerifyState) -> bytes:
        """Output share and corrected joint-randomness seed, for durable storage.

        Not a draft message (the draft leaves the state's encoding open); it
        lets an Aggregator survive a restart between ``verify_init`` and
        ``verify_next``. It holds a secret share: store it like one.
        """
        seed = state.corrected_joint_rand_seed or b""
        return state.encoded_out_share(self.field) + seed

    def decode_verify_state(self, data: bytes, step: str = "verify_next") -> VerifyState:
        data = _as_bytes(data, "verify state", step)
        extra = self.SEED_SIZE if self.uses_joint_rand else 0
        n = self.flp.OUTPUT_LEN * self.field.ENCODED_SIZE
        if len(data) != n + extra:
            raise VdafDecodeError(step, "verify state has the wrong length")
        vec = self.field.decode_vec(data[:n])
        if vec is None:
            raise VdafDecodeError(step, "verify state holds a non-canonical field element")
        return VerifyState(vec, data[n:] if extra else None, encoded=data[:n], field=self.field)

    def _check_agg_id(self, agg_id: int, step: str) -> None:
        if not isinstance(agg_id, int) or not 0 <= agg_id < self.SHARES:
            raise VdafParameterError(step, "aggregator id out of range")

    # -- verification (draft §7.2.2) -----------------------------------------

    def expand_input_share(
        self, ctx: bytes, agg_id: int, share: LeaderShare | HelperShare
    ) -> tuple[list[int], list[int], bytes | None, bytes]:
        """(measurement share, proofs share, blind, encoded measurement share)."""
        field = self.field
        if isinstance(share, HelperShare):
            meas, raw = self.xof.expand_into_vec_encoded(
                field,
                share.seed,
                self.domain_separation_tag(USAGE_MEAS_SHARE, ctx),
                bytes([agg_id]),
                self.flp.MEAS_LEN,
            )
            proofs = self.helper_proofs_share(ctx, agg_id, share.seed)
            if not self.uses_joint_rand:
                return meas, proofs, share.blind, b""
            return meas, proofs, share.blind, raw if raw is not None else field.encode_vec(meas)
        enc = b""
        if self.uses_joint_rand:
            enc = share.encoded_meas_share or field.encode_vec(share.meas_share)
        return share.meas_share, share.proofs_share, share.blind, enc

    def verify_init(
        self,
        verify_key: bytes,
        ctx: bytes,
        agg_id: int,
        nonce: bytes,
        public_share: bytes,
        input_share: bytes,
    ) -> tuple[VerifyState, bytes]:
        """Query this Aggregator's shares: (verify state, encoded verifier share)."""
        step = "verify_init"
        verify_key = _as_bytes(verify_key, "verify key", step, VdafParameterError)
        ctx = _as_bytes(ctx, "context", step, VdafParameterError)
        nonce = _as_bytes(nonce, "nonce", step)
        if len(verify_key) != self.VERIFY_KEY_SIZE:
            raise VdafParameterError(step, "verify key has the wrong length")
        if len(nonce) != NONCE_SIZE:
            raise VdafDecodeError(step, "nonce has the wrong length")
        parts = self.decode_public_share(public_share, step)
        share = self.decode_input_share(agg_id, input_share, step)
        return self.verify_init_decoded(verify_key, ctx, agg_id, nonce, parts, share)

    def verify_init_decoded(
        self,
        verify_key: bytes,
        ctx: bytes,
        agg_id: int,
        nonce: bytes,
        parts: list[bytes] | None,
        share: LeaderShare | HelperShare,
    ) -> tuple[VerifyState, bytes]:
        flp = self.flp
        field = self.field
        meas, proofs, blind, enc_meas = self.expand_input_share(ctx, agg_id, share)
        out_share = flp.valid.truncate(meas)
        # The output share's encoding when it is a prefix of the measurement share's.
        prefix = flp.valid.encoded_output_prefix() * field.ENCODED_SIZE
        enc_out: bytes | None = enc_meas[:prefix]
        if not enc_meas or not prefix or prefix != flp.OUTPUT_LEN * field.ENCODED_SIZE:
            enc_out = None

        corrected_seed = None
        own_part = b""
        joint_rands: list[int] = []
        if self.uses_joint_rand:
            assert blind is not None and parts is not None
            own_part = self.joint_rand_part(ctx, agg_id, blind, enc_meas, nonce)
            parts = list(parts)
            parts[agg_id] = own_part
            corrected_seed = self.joint_rand_seed(ctx, parts)
            joint_rands = self.joint_rands(ctx, corrected_seed)

        query_rands = self.query_rands(verify_key, ctx, nonce)
        pl, ql, jl = flp.PROOF_LEN, flp.QUERY_RAND_LEN, flp.JOINT_RAND_LEN
        verifiers: list[int] = []
        for i in range(self.PROOFS):
            verifiers += flp.query(
                meas,
                proofs[i * pl : (i + 1) * pl],
                query_rands[i * ql : (i + 1) * ql],
                joint_rands[i * jl : (i + 1) * jl],
                self.SHARES,
            )
        state = VerifyState(out_share, corrected_seed, encoded=enc_out, field=field)
        return state, field.encode_vec(verifiers) + own_part

    def verifier_shares_to_message(self, ctx: bytes, verifier_shares: list[bytes]) -> bytes:
        """Combine all verifier shares; raise :class:`VdafVerifyError` unless every proof holds."""
        step = "verifier_shares_to_message"
        ctx = _as_bytes(ctx, "context", step, VdafParameterError)
        verifier_shares = _as_byte_list(verifier_shares, self.SHARES, "verifier shares", step)
        p = self.field.MODULUS
        total: list[int] = []
        parts = []
        for data in verifier_shares:
            vec, part = self.decode_verifier_share(data, step)  # exact length: checked
            total = list(map(add, total, vec)) if total else vec
            if part is not None:
                parts.append(part)
        total = list(map(mod, total, repeat(p, len(total))))
        vl = self.flp.VERIFIER_LEN
        for i in range(self.PROOFS):
            if not self.flp.decide(total[i * vl : (i + 1) * vl]):
                raise VdafVerifyError(step, "proof verifier check failed")
        if self.uses_joint_rand:
            return self.joint_rand_seed(ctx, parts)
        return b""

    def verify_next(self, ctx: bytes, state: VerifyState, message: bytes) -> list[int]:
        """Check the joint randomness and release the output share."""
        step = "verify_next"
        _as_bytes(ctx, "context", step, VdafParameterError)
        seed = self.decode_verifier_message(message, step)
        expected = state.corrected_joint_rand_seed
        if (seed is None) != (expected is None) or (
            seed is not None and expected is not None and not hmac.compare_digest(seed, expected)
        ):
            raise VdafVerifyError(step, "joint randomness check failed")
        return state.out_share

    # -- aggregation and unsharding (draft §7.2.3-7.2.4) ---------------------

    def agg_init(self) -> list[int]:
        return [0] * self.flp.OUTPUT_LEN

    def agg_update(self, agg_share: list[int], out_share: list[int]) -> list[int]:
        if len(out_share) != len(agg_share):
            raise VdafParameterError("aggregate", "output share has the wrong length")
        return self.field.vec_add(agg_share, out_share)

    def merge(self, agg_shares: list[list[int]]) -> list[int]:
        agg = self.agg_init()
        for share in agg_shares:
            agg = self.agg_update(agg, share)
        return agg

    def aggregate(self, out_shares: list[list[int]]) -> list[int]:
        """Sum output shares into an aggregate share (``agg_init`` + ``agg_update``)."""
        p = self.field.MODULUS
        agg = [0] * self.flp.OUTPUT_LEN
        for share in out_shares:
            if len(share) != len(agg):
                raise VdafParameterError("aggregate", "output share has the wrong length")
            agg = [a + b for a, b in zip(agg, share, strict=True)]
        return [a % p for a in agg]

    def unshard(self, agg_shares: list[bytes], num_measurements: int) -> Any:
        """Merge the encoded aggregate shares and decode the aggregate result."""
        agg_shares = _as_byte_list(agg_shares, self.SHARES, "aggregate shares", "unshard")
        if (
            not isinstance(num_measurements, int)
            or isinstance(num_measurements, bool)
            or num_measurements < 1
        ):
            raise VdafParameterError("unshard", "the number of measurements must be at least 1")
        agg = self.merge([self.decode_agg_share(s, "unshard") for s in agg_shares])
        return self.flp.valid.decode(agg, num_measurements)
