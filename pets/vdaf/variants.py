"""The Prio3 variants of draft-irtf-cfrg-vdaf-20 §7.4, the draft's test variants, and pets'.

| constructor | ID | field | proofs |
|---|---|---|---|
| :func:`prio3_count` | 0x00000001 | Field64 | 1 |
| :func:`prio3_sum` | 0x00000002 | Field64 | 1 |
| :func:`prio3_sum_vec` | 0x00000003 | Field128 | 1 |
| :func:`prio3_histogram` | 0x00000004 | Field128 | 1 |
| :func:`prio3_multihot_count_vec` | 0x00000005 | Field128 | 1 |
| :func:`prio3_sum_vec_with_multiproof` | 0xFFFFFFFF (test) | any | any (vectors: Field64, 3) |
| :func:`prio3_higher_degree` | 0xFFFFFFFF (draft test) | Field64 | 1 |
| :func:`prio3_bounded_vec` | 0xFFFF0001 (private use, pets) | Field128 | 1 |

:func:`from_params` builds an instance from a test-vector file's variant name
and parameters, so one loader drives every published vector family.
"""

from __future__ import annotations

import math
from typing import Any

from pets.vdaf.circuits import (
    BoundedVec,
    Count,
    HigherDegree,
    Histogram,
    MultihotCountVec,
    Sum,
    SumVec,
)
from pets.vdaf.errors import VdafParameterError
from pets.vdaf.field import FIELDS, Field, Field64, Field128
from pets.vdaf.poly import next_power_of_2
from pets.vdaf.prio3 import Prio3

ID_COUNT = 0x00000001
ID_SUM = 0x00000002
ID_SUM_VEC = 0x00000003
ID_HISTOGRAM = 0x00000004
ID_MULTIHOT_COUNT_VEC = 0x00000005
ID_TEST = 0xFFFFFFFF
ID_PETS_BOUNDED_VEC = 0xFFFF0001


def proof_len_for_chunk(measurement_len: int, chunk_length: int) -> int:
    """Proof length of a ``ParallelSum(Mul, chunk_length)`` range check over ``measurement_len``."""
    calls = -(-measurement_len // chunk_length)
    wire_len = next_power_of_2(1 + calls)
    return 2 * chunk_length + 2 * (wire_len - 1) + 1


def default_chunk_length(measurement_len: int) -> int:
    """The chunk length giving the shortest proof (ties: the larger chunk, fewer calls).

    The draft recommends about ``sqrt(measurement_len)`` but notes that the
    rounding of the call count to a power of two minus one makes the optimum
    a matter of search (§7.4.3.1); the search is over at most
    ``2 sqrt(n) + 2`` candidates, so it is done exactly. Example: Histogram(100)
    gets 15 (7 calls, proof 45 elements) instead of 10 (10 calls, proof 51); on a
    tie the larger chunk wins: fewer calls mean shorter wire polynomials,
    so cheaper NTTs for the Client and Lagrange evaluations for the Aggregators.
    """
    n = max(1, measurement_len)
    hi = min(n, 2 * math.isqrt(n) + 2)
    return min(range(1, hi + 1), key=lambda c: (proof_len_for_chunk(n, c), -c))


def prio3_count(shares: int = 2) -> Prio3:
    return Prio3(Count(Field64), ID_COUNT, shares, 1, name="Prio3Count")


def prio3_sum(shares: int, max_measurement: int) -> Prio3:
    return Prio3(Sum(Field64, max_measurement), ID_SUM, shares, 1, name="Prio3Sum")


def prio3_sum_vec(
    shares: int, length: int, max_measurement: int, chunk_length: int | None = None
) -> Prio3:
    if chunk_length is None:
        chunk_length = default_chunk_length(length * max(1, max_measurement).bit_length())
    valid = SumVec(Field128, length, max_measurement, chunk_length)
    return Prio3(valid, ID_SUM_VEC, shares, 1, name="Prio3SumVec")


def prio3_histogram(shares: int, length: int, chunk_length: int | None = None) -> Prio3:
    if chunk_length is None:
        chunk_length = default_chunk_length(length)
    return Prio3(
        Histogram(Field128, length, chunk_length), ID_HISTOGRAM, shares, 1, name="Prio3Histogram"
    )


def prio3_multihot_count_vec(
    shares: int, length: int, max_weight: int, chunk_length: int | None = None
) -> Prio3:
    if chunk_length is None:
        chunk_length = default_chunk_length(length + max(1, max_weight).bit_length())
    valid = MultihotCountVec(Field128, length, max_weight, chunk_length)
    return Prio3(valid, ID_MULTIHOT_COUNT_VEC, shares, 1, name="Prio3MultihotCountVec")


def prio3_sum_vec_with_multiproof(
    shares: int,
    field: Field,
    proofs: int,
    length: int,
    max_measurement: int,
    chunk_length: int,
) -> Prio3:
    valid = SumVec(field, length, max_measurement, chunk_length)
    return Prio3(valid, ID_TEST, shares, proofs, name="Prio3SumVecWithMultiproof")


def prio3_higher_degree(
    shares: int = 2, degree: int | None = None, gadget_calls: int | None = None
) -> Prio3:
    valid = HigherDegree(Field64, degree, gadget_calls)
    return Prio3(valid, ID_TEST, shares, 1, name="Prio3HigherDegree")


def prio3_bounded_vec(
    shares: int,
    bounds: list[int],
    chunk_length: int | None = None,
    field: Field = Field128,
    proofs: int | None = None,
) -> Prio3:
    """pets' per-slot-bounds circuit (see docs/PRIO3.md).

    Defaults: Field128 with one proof (the draft requires Field128 x1 or
    Field64 x3 for circuits with joint randomness, §9.7); ``chunk_length``
    near the square root of the encoded length.
    """
    valid_len = sum(int(b).bit_length() for b in bounds) if isinstance(bounds, list) else 1
    if chunk_length is None:
        chunk_length = default_chunk_length(valid_len)
    if proofs is None:
        proofs = 1 if field is Field128 else 3
    if field is Field64 and proofs < 3:
        raise VdafParameterError("parameters", "Field64 with joint randomness needs >= 3 proofs")
    return Prio3(
        BoundedVec(field, bounds, chunk_length),
        ID_PETS_BOUNDED_VEC,
        shares,
        proofs,
        name="Prio3BoundedVec",
    )


def from_params(variant: str, params: dict[str, Any]) -> Prio3:
    """Build a variant from a test-vector name (``Prio3Sum``...) and its JSON parameters."""
    shares = params["shares"]
    if variant == "Prio3Count":
        return prio3_count(shares)
    if variant == "Prio3Sum":
        return prio3_sum(shares, params["max_measurement"])
    if variant == "Prio3SumVec":
        return prio3_sum_vec(
            shares, params["length"], params["max_measurement"], params["chunk_length"]
        )
    if variant == "Prio3Histogram":
        return prio3_histogram(shares, params["length"], params["chunk_length"])
    if variant == "Prio3MultihotCountVec":
        return prio3_multihot_count_vec(
            shares, params["length"], params["max_weight"], params["chunk_length"]
        )
    if variant == "Prio3SumVecWithMultiproof":
        field = FIELDS[params.get("field", "Field64")]
        return prio3_sum_vec_with_multiproof(
            shares,
            field,
            params.get("proofs", 3),
            params["length"],
            params["max_measurement"],
            params["chunk_length"],
        )
    if variant == "Prio3HigherDegree":
        return prio3_higher_degree(shares, params.get("degree"), params.get("gadget_calls"))
    if variant == "Prio3BoundedVec":
        return prio3_bounded_vec(
            shares,
            params["bounds"],
            params["chunk_length"],
            FIELDS[params.get("field", "Field128")],
            params.get("proofs"),
        )
    raise VdafParameterError("parameters", f"unknown Prio3 variant {variant!r}")
