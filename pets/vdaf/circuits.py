"""Validity circuits (draft-irtf-cfrg-vdaf-20 §7.3.2 and §7.4) plus the pets per-slot circuit.

A circuit here is evaluated in two phases, which is equivalent to the draft's
``eval`` with wrapped gadgets because no circuit in this module feeds a gadget
output into another gadget's input:

1. ``wires(meas, joint_rand, num_shares)`` returns, per gadget, the input wire
   values of every call in call order (wire-major: ``wires[g][j][k]`` is wire
   ``j`` of call ``k``). This is what the draft's ``ProveGadget``/``QueryGadget``
   record.
2. ``outputs(meas, joint_rand, num_shares, gadget_outs)`` computes the affine
   rest of the circuit from the gadget outputs.

Additions of constants are scaled by ``1/num_shares`` exactly as in the draft,
so each aggregator computes a share of the output.

Circuits: :class:`Count`, :class:`Sum`, :class:`SumVec`, :class:`Histogram`,
:class:`MultihotCountVec` (the draft's variants), :class:`HigherDegree` (the
draft's test circuit with a degree-3 ``PolyEval``, used by its
``Prio3HigherDegree`` vectors) and :class:`BoundedVec` (pets: every slot in
its own ``[0, bound_i]``; see docs/PRIO3.md).
"""

from __future__ import annotations

from functools import cache
from itertools import repeat
from operator import mod, mul
from typing import Any

from gmpy2 import mpz

from pets.vdaf.errors import VdafParameterError
from pets.vdaf.field import Field
from pets.vdaf.gadgets import Gadget, Mul, ParallelSum, PolyEval

Wires = list[list[list[int]]]
"""Per gadget, per input wire, the value at each call (``wires[g][j][k]``)."""


class Valid:
    """Parameters and the two-phase evaluation of a validity circuit."""

    field: Field
    GADGETS: list[Gadget]
    GADGET_CALLS: list[int]
    MEAS_LEN: int
    JOINT_RAND_LEN: int
    EVAL_OUTPUT_LEN: int
    OUTPUT_LEN: int

    def encode(self, measurement: Any) -> list[int]:
        raise NotImplementedError

    def wires(
        self, meas: list[int], joint_rand: list[int], num_shares: int
    ) -> list[list[list[int]]]:
        raise NotImplementedError

    def outputs(
        self,
        meas: list[int],
        joint_rand: list[int],
        num_shares: int,
        gadget_outs: list[list[int]],
    ) -> list[int]:
        raise NotImplementedError

    def wire_checks(
        self,
        meas: list[int],
        joint_rand: list[int],
        num_shares: int,
        seeds: list[list[int]],
        lagrange: list[list[int]],
    ) -> list[list[int]]:
        """Each wire polynomial evaluated at the query point, per gadget.

        ``lagrange[g]`` holds ``L_k(t)`` for gadget ``g``'s wire nodes; wire
        ``j``'s value at ``t`` is ``L_0(t) seed_j + sum_k L_{k+1}(t) wires[j][k]``.
        Circuits may override this with an algebraically equal shortcut.
        """
        p = self.field.MODULUS
        out = []
        for g_seeds, g_wires, lag in zip(
            seeds, self.wires(meas, joint_rand, num_shares), lagrange, strict=True
        ):
            c0, rest = lag[0], lag[1:]
            out.append(
                [
                    (c0 * s + sum(a * b for a, b in zip(rest, w, strict=False))) % p
                    for s, w in zip(g_seeds, g_wires, strict=True)
                ]
            )
        return out

    def truncate(self, meas: list[int]) -> list[int]:
        return list(meas)

    def encoded_output_prefix(self) -> int:
        """``k`` if ``truncate`` keeps exactly the first ``k`` elements (so the output
        share's encoding is a prefix of the measurement share's), else 0."""
        return 0

    def decode(self, output: list[int], num_measurements: int) -> Any:
        return [int(x) for x in output]

    def eval(self, meas: list[int], joint_rand: list[int], num_shares: int) -> list[int]:
        """The draft's ``valid.eval``: the circuit output (all zero iff valid)."""
        all_wires = self.wires(meas, joint_rand, num_shares)
        outs = []
        for g, w in zip(self.GADGETS, all_wires, strict=True):
            calls = len(w[0]) if w else 0
            outs.append([g.eval(self.field, [wire[k] for wire in w]) for k in range(calls)])
        return self.outputs(meas, joint_rand, num_shares, outs)


@cache
def _shares_inv(field: Field, num_shares: int) -> int:
    """``1 / num_shares`` in ``field`` (constant per instance; an inversion each call
    otherwise)."""
    return field.inv(num_shares % field.MODULUS)


# -- the modified bit decomposition of Prio3Sum (draft §7.4.2) ---------------


def encode_range_checked_int(field: Field, value: int, max_measurement: int) -> list[int]:
    """Bits of ``value`` under weights ``1, 2, ..., 2^(b-2), max - (2^(b-1) - 1)``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise VdafParameterError("shard", "measurement must be a non-negative integer")
    if value > max_measurement:
        raise VdafParameterError("shard", "measurement is too large")
    bits = max_measurement.bit_length()
    rest_all_ones = (1 << (bits - 1)) - 1
    last_weight = max_measurement - rest_all_ones
    if value <= rest_all_ones:
        rest, last = value, 0
    else:
        rest, last = value - last_weight, 1
    return [(rest >> i) & 1 for i in range(bits - 1)] + [last]


def range_weights(field: Field, max_measurement: int) -> list[int]:
    bits = max_measurement.bit_length()
    rest_all_ones = (1 << (bits - 1)) - 1
    return [1 << i for i in range(bits - 1)] + [(max_measurement - rest_all_ones) % field.MODULUS]


def decode_range_checked_int(field: Field, encoded: list[int], max_measurement: int) -> int:
    """Linear inverse of :func:`encode_range_checked_int` (works on shares)."""
    w = range_weights(field, max_measurement)
    return sum(a * b for a, b in zip(w, encoded, strict=True)) % field.MODULUS


def _check_int(name: str, value: Any, low: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise VdafParameterError("parameters", f"{name} must be an integer >= {low}")
    return value


# -- circuits ----------------------------------------------------------------


class Count(Valid):
    """``x * x - x == 0``: a 0/1 counter (draft §7.4.1)."""

    MEAS_LEN = 1
    JOINT_RAND_LEN = 0
    OUTPUT_LEN = 1
    EVAL_OUTPUT_LEN = 1

    def __init__(self, field: Field) -> None:
        self.field = field
        self.GADGETS = [Mul()]
        self.GADGET_CALLS = [1]

    def encode(self, measurement: Any) -> list[int]:
        if measurement not in (0, 1) or isinstance(measurement, float):
            raise VdafParameterError("shard", "a count measurement is 0 or 1")
        return [int(measurement)]

    def wires(
        self, meas: list[int], joint_rand: list[int], num_shares: int
    ) -> list[list[list[int]]]:
        return [[[meas[0]], [meas[0]]]]

    def outputs(
        self, meas: list[int], joint_rand: list[int], num_shares: int, gadget_outs: list[list[int]]
    ) -> list[int]:
        return [(gadget_outs[0][0] - meas[0]) % self.field.MODULUS]

    def decode(self, output: list[int], num_measurements: int) -> int:
        return int(output[0])


class _PolyEvalEachElement(Valid):
    """One ``PolyEval`` gadget called once per measurement element, whose outputs are
    the circuit's outputs (Sum's bit checks, HigherDegree's root checks)."""

    def wires(
        self, meas: list[int], joint_rand: list[int], num_shares: int
    ) -> list[list[list[int]]]:
        return [[list(meas)]]

    def outputs(
        self, meas: list[int], joint_rand: list[int], num_shares: int, gadget_outs: list[list[int]]
    ) -> list[int]:
        return list(gadget_outs[0])


class Sum(_PolyEvalEachElement):
    """Every bit of the modified decomposition is 0 or 1 (draft §7.4.2)."""

    JOINT_RAND_LEN = 0
    OUTPUT_LEN = 1

    def __init__(self, field: Field, max_measurement: int) -> None:
        _check_int("max_measurement", max_measurement, 1)
        if max_measurement >= field.MODULUS:
            raise VdafParameterError("parameters", "max_measurement too large for the field")
        self.field = field
        self.max_measurement = max_measurement
        self.bits = max_measurement.bit_length()
        self.GADGETS = [PolyEval([0, -1, 1], self.bits)]
        self.GADGET_CALLS = [self.bits]
        self.MEAS_LEN = self.bits
        self.EVAL_OUTPUT_LEN = self.bits
        self._weights = range_weights(field, max_measurement)

    def encode(self, measurement: Any) -> list[int]:
        return encode_range_checked_int(self.field, measurement, self.max_measurement)

    def truncate(self, meas: list[int]) -> list[int]:
        w = self._weights
        return [sum(map(mul, w, meas)) % self.field.MODULUS]

    def decode(self, output: list[int], num_measurements: int) -> int:
        return int(output[0])


class HigherDegree(_PolyEvalEachElement):
    """The draft's test circuit with a higher-degree ``PolyEval`` gadget.

    Two published forms exist and both are supported:

    - ``HigherDegree(field)`` (no parameters): one call of
      ``x (x - 1) (x - 2)``; the measurement is an int in ``{0, 1, 2}``.
    - ``HigherDegree(field, degree, gadget_calls)``: a vector of
      ``gadget_calls`` ints, each checked by ``x (x - 1) ... (x - degree + 1)``
      (one output per element); the measurement is a list.
    """

    JOINT_RAND_LEN = 0

    def __init__(self, field: Field, degree: int | None = None, gadget_calls: int | None = None):
        self.field = field
        self.vector = degree is not None or gadget_calls is not None
        self.degree = 3 if degree is None else _check_int("degree", degree, 1)
        calls = 1 if gadget_calls is None else _check_int("gadget_calls", gadget_calls, 1)
        coeffs = [1]
        for root in range(self.degree):  # multiply by (x - root)
            nxt = [0] * (len(coeffs) + 1)
            for k, c in enumerate(coeffs):
                nxt[k] -= root * c
                nxt[k + 1] += c
            coeffs = nxt
        self.GADGETS = [PolyEval(coeffs, calls)]
        self.GADGET_CALLS = [calls]
        self.MEAS_LEN = calls
        self.OUTPUT_LEN = calls
        self.EVAL_OUTPUT_LEN = calls

    def encode(self, measurement: Any) -> list[int]:
        values = measurement if self.vector else [measurement]
        if not isinstance(values, (list, tuple)) or len(values) != self.MEAS_LEN:
            raise VdafParameterError("shard", "measurement has the wrong length")
        for v in values:
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < self.degree:
                raise VdafParameterError("shard", "measurement element out of range")
        return list(values)

    def decode(self, output: list[int], num_measurements: int) -> Any:
        if self.vector:
            return [int(x) for x in output]
        return int(output[0])


class _ChunkedBits(Valid):
    """Shared range check of SumVec, Histogram, MultihotCountVec and BoundedVec.

    ``ParallelSum(Mul, chunk_length)`` called once per chunk; call ``i`` gets
    inputs ``r_i^(j+1) * x`` and ``x - 1/num_shares`` for the ``j``-th element
    ``x`` of the chunk (zero past the end), with ``r_i = joint_rand[i]``. The
    sum of all calls is zero iff every element is a bit, except with
    probability about ``chunk_length / |F|`` per call (draft §7.3.1.1).
    """

    def _setup_chunks(self, field: Field, checked_len: int, chunk_length: int) -> None:
        _check_int("chunk_length", chunk_length, 1)
        self.field = field
        self.chunk_length = chunk_length
        self.GADGETS = [ParallelSum(Mul(), chunk_length)]
        calls = (checked_len + chunk_length - 1) // chunk_length
        self.GADGET_CALLS = [calls]
        self.JOINT_RAND_LEN = calls

    def wires(
        self, meas: list[int], joint_rand: list[int], num_shares: int
    ) -> list[list[list[int]]]:
        p = self.field.P
        shares_inv = _shares_inv(self.field, num_shares)
        chunk = self.chunk_length
        calls = self.GADGET_CALLS[0]
        n = len(meas)
        wires: list[list[int]] = [[0] * calls for _ in range(2 * chunk)]
        for i in range(calls):
            r = joint_rand[i]
            r_pow = r
            base = i * chunk
            for j in range(chunk):
                idx = base + j
                x = meas[idx] if idx < n else 0
                wires[2 * j][i] = r_pow * x % p
                wires[2 * j + 1][i] = (x - shares_inv) % p
                r_pow = r_pow * r % p
        return [wires]

    def wire_checks(
        self,
        meas: list[int],
        joint_rand: list[int],
        num_shares: int,
        seeds: list[list[int]],
        lagrange: list[list[int]],
    ) -> list[list[int]]:
        """Wire evaluations at ``t`` without materialising the wires.

        With ``a_i = L_{i+1}(t)`` and chunk-column ``x_{i,j} = meas[i*chunk + j]``:
        even wire ``2j`` is ``L_0 s_2j + sum_i a_i r_i^(j+1) x_{i,j}``, odd wire
        ``2j+1`` is ``L_0 s_2j+1 + sum_i a_i x_{i,j} - (1/num_shares) sum_i a_i``.
        Column sums run in C (``map``/``sum``) with one reduction each.
        """
        p = self.field.P
        chunk = self.chunk_length
        calls = self.GADGET_CALLS[0]
        lag = lagrange[0]
        c0 = lag[0]
        a = lag[1 : calls + 1]
        g_seeds = seeds[0]
        shares_inv = _shares_inv(self.field, num_shares)
        sum_a_inv = sum(a) * shares_inv
        padded = meas + [0] * (calls * chunk - len(meas)) if len(meas) < calls * chunk else meas
        jr = joint_rand[:calls]
        if len(a) != calls or len(jr) != calls:
            raise VdafParameterError("verify_init", "joint randomness or Lagrange table too short")
        # Everything runs in C (``map``); the joint randomness as ``mpz`` makes the
        # power updates ``mpz * mpz % mpz`` (about twice ``mpz * int``).
        jr = list(map(mpz, jr))
        ps = repeat(p, calls)
        coef = list(map(mod, map(mul, a, jr), ps))
        out = [0] * (2 * chunk)
        for j in range(chunk):
            col = padded[j::chunk]
            out[2 * j] = (c0 * g_seeds[2 * j] + sum(map(mul, coef, col))) % p
            out[2 * j + 1] = (c0 * g_seeds[2 * j + 1] + sum(map(mul, a, col)) - sum_a_inv) % p
            if j + 1 < chunk:
                # Reduced every other step: an unreduced 256-bit coefficient costs less
                # in the next column's products than its reduction (~10% of this loop).
                if j % 2:
                    coef = list(map(mod, map(mul, coef, jr), repeat(p, calls)))
                else:
                    coef = list(map(mul, coef, jr))
        return [out]

    def _range_check(self, gadget_outs: list[list[int]]) -> int:
        return sum(gadget_outs[0]) % self.field.MODULUS


class SumVec(_ChunkedBits):
    """A vector of ``length`` integers, each in ``[0, max_measurement]`` (draft §7.4.3)."""

    EVAL_OUTPUT_LEN = 1

    def __init__(self, field: Field, length: int, max_measurement: int, chunk_length: int) -> None:
        _check_int("length", length, 1)
        _check_int("max_measurement", max_measurement, 1)
        if max_measurement >= field.MODULUS:
            raise VdafParameterError("parameters", "max_measurement too large for the field")
        self.length = length
        self.max_measurement = max_measurement
        self.bits = max_measurement.bit_length()
        self.MEAS_LEN = length * self.bits
        self.OUTPUT_LEN = length
        self._setup_chunks(field, self.MEAS_LEN, chunk_length)
        self._weights = range_weights(field, max_measurement)

    def encode(self, measurement: Any) -> list[int]:
        if not isinstance(measurement, (list, tuple)) or len(measurement) != self.length:
            raise VdafParameterError("shard", "measurement has the wrong length")
        out: list[int] = []
        for v in measurement:
            out += encode_range_checked_int(self.field, v, self.max_measurement)
        return out

    def outputs(
        self, meas: list[int], joint_rand: list[int], num_shares: int, gadget_outs: list[list[int]]
    ) -> list[int]:
        return [self._range_check(gadget_outs)]

    def truncate(self, meas: list[int]) -> list[int]:
        p = self.field.MODULUS
        w = self._weights
        b = self.bits
        return [sum(map(mul, w, meas[i * b : (i + 1) * b])) % p for i in range(self.length)]


class Histogram(_ChunkedBits):
    """A one-hot vector: every entry a bit, entries summing to one (draft §7.4.4)."""

    EVAL_OUTPUT_LEN = 2

    def __init__(self, field: Field, length: int, chunk_length: int) -> None:
        _check_int("length", length, 1)
        self.length = length
        self.MEAS_LEN = length
        self.OUTPUT_LEN = length
        self._setup_chunks(field, length, chunk_length)

    def encode(self, measurement: Any) -> list[int]:
        if (
            not isinstance(measurement, int)
            or isinstance(measurement, bool)
            or not 0 <= measurement < self.length
        ):
            raise VdafParameterError("shard", "bucket index out of range")
        enc = [0] * self.length
        enc[measurement] = 1
        return enc

    def encoded_output_prefix(self) -> int:
        return self.MEAS_LEN  # truncate is the identity

    def outputs(
        self, meas: list[int], joint_rand: list[int], num_shares: int, gadget_outs: list[list[int]]
    ) -> list[int]:
        p = self.field.MODULUS
        sum_check = (sum(meas) - _shares_inv(self.field, num_shares)) % p
        return [self._range_check(gadget_outs), sum_check]


class MultihotCountVec(_ChunkedBits):
    """A bit vector with at most ``max_weight`` ones (draft §7.4.5)."""

    EVAL_OUTPUT_LEN = 2

    def __init__(self, field: Field, length: int, max_weight: int, chunk_length: int) -> None:
        _check_int("length", length, 1)
        _check_int("max_weight", max_weight, 1)
        if max_weight > length:
            raise VdafParameterError("parameters", "max_weight must not exceed length")
        if length >= field.MODULUS:
            raise VdafParameterError("parameters", "length too large for the field")
        self.length = length
        self.max_weight = max_weight
        self.bits_for_weight = max_weight.bit_length()
        self.MEAS_LEN = length + self.bits_for_weight
        self.OUTPUT_LEN = length
        self._setup_chunks(field, self.MEAS_LEN, chunk_length)
        self._weights = range_weights(field, max_weight)

    def encode(self, measurement: Any) -> list[int]:
        if not isinstance(measurement, (list, tuple)) or len(measurement) != self.length:
            raise VdafParameterError("shard", "invalid Client measurement length")
        if any(x not in (0, 1, True, False) or isinstance(x, float) for x in measurement):
            raise VdafParameterError("shard", "entries must be booleans")
        counts = [int(x) for x in measurement]
        return counts + encode_range_checked_int(self.field, sum(counts), self.max_weight)

    def outputs(
        self, meas: list[int], joint_rand: list[int], num_shares: int, gadget_outs: list[list[int]]
    ) -> list[int]:
        p = self.field.MODULUS
        weight = sum(meas[: self.length])
        reported = sum(a * b for a, b in zip(self._weights, meas[self.length :], strict=True))
        return [self._range_check(gadget_outs), (weight - reported) % p]

    def truncate(self, meas: list[int]) -> list[int]:
        return list(meas[: self.length])

    def encoded_output_prefix(self) -> int:
        return self.length


class BoundedVec(_ChunkedBits):
    """pets: a vector whose slot ``i`` lies in its own ``[0, bounds[i]]``.

    Slot ``i`` is encoded with the modified bit decomposition of Prio3Sum for
    ``max_measurement = bounds[i]`` (``bounds[i].bit_length()`` elements, the
    weights summing to exactly ``bounds[i]``), and every encoded element is
    range-checked as a bit by the same ``ParallelSum(Mul)`` check as SumVec.
    Any bit vector then decodes to a value in ``[0, bounds[i]]``, so the single
    bit check proves every slot's own bound. Negative ranges are the caller's
    business: encode ``v - lo`` with bound ``hi - lo`` and subtract
    ``count * lo`` after unsharding.
    """

    EVAL_OUTPUT_LEN = 1

    def __init__(self, field: Field, bounds: list[int], chunk_length: int) -> None:
        if not isinstance(bounds, (list, tuple)) or not bounds:
            raise VdafParameterError("parameters", "bounds must be a non-empty list")
        for b in bounds:
            _check_int("bound", b, 1)
            if b >= field.MODULUS:
                raise VdafParameterError("parameters", "bound too large for the field")
        self.bounds = list(bounds)
        self.length = len(bounds)
        self.bits = [b.bit_length() for b in bounds]
        self.offsets = []
        off = 0
        for nb in self.bits:
            self.offsets.append(off)
            off += nb
        self.MEAS_LEN = off
        self.OUTPUT_LEN = self.length
        self._setup_chunks(field, self.MEAS_LEN, chunk_length)
        self._weights = [range_weights(field, b) for b in bounds]

    def encode(self, measurement: Any) -> list[int]:
        if not isinstance(measurement, (list, tuple)) or len(measurement) != self.length:
            raise VdafParameterError("shard", "measurement has the wrong length")
        out: list[int] = []
        for v, b in zip(measurement, self.bounds, strict=True):
            out += encode_range_checked_int(self.field, v, b)
        return out

    def outputs(
        self, meas: list[int], joint_rand: list[int], num_shares: int, gadget_outs: list[list[int]]
    ) -> list[int]:
        return [self._range_check(gadget_outs)]

    def truncate(self, meas: list[int]) -> list[int]:
        p = self.field.MODULUS
        # One C-level dot product per slot (``map(mul)``): 4x the generator form.
        return [
            sum(map(mul, w, meas[off : off + nb])) % p
            for w, off, nb in zip(self._weights, self.offsets, self.bits, strict=True)
        ]
