"""pets.vdaf: Prio3 from draft-irtf-cfrg-vdaf-20, a pure core (no network, no files).

Fields (:mod:`.field`), polynomial ops (:mod:`.poly`), XOFs (:mod:`.xof`),
gadgets (:mod:`.gadgets`), validity circuits (:mod:`.circuits`), the FLP
(:mod:`.flp`), Prio3 and its wire format (:mod:`.prio3`), the variants
(:mod:`.variants`) and batched verification (:mod:`.batch`). See docs/PRIO3.md.
"""

from pets.vdaf.errors import VdafDecodeError, VdafError, VdafParameterError, VdafVerifyError
from pets.vdaf.field import Field64, Field128
from pets.vdaf.prio3 import Prio3, VerifyState
from pets.vdaf.variants import (
    from_params,
    prio3_bounded_vec,
    prio3_count,
    prio3_higher_degree,
    prio3_histogram,
    prio3_multihot_count_vec,
    prio3_sum,
    prio3_sum_vec,
    prio3_sum_vec_with_multiproof,
)

__all__ = [
    "Field64",
    "Field128",
    "Prio3",
    "VdafDecodeError",
    "VdafError",
    "VdafParameterError",
    "VdafVerifyError",
    "VerifyState",
    "from_params",
    "prio3_bounded_vec",
    "prio3_count",
    "prio3_higher_degree",
    "prio3_histogram",
    "prio3_multihot_count_vec",
    "prio3_sum",
    "prio3_sum_vec",
    "prio3_sum_vec_with_multiproof",
]
