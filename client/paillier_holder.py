"""A holder's Paillier contribution: pack, encrypt, serialise."""

from __future__ import annotations

import numpy as np

from pets.paillier import ciphertexts_to_bytes, encrypt_vector, public_key_from_bytes
from pets.paillier_plan import effective_max_holders, layout_for
from pets.query import QueryPlan
from pets.v1 import aggregation_pb2 as pb


def encrypt_contribution(ann: pb.QueryAnnouncement, plan: QueryPlan, vector: np.ndarray) -> bytes:
    """The ciphertext payload for ``vector`` (the holder's int64 query vector)."""
    public_key = public_key_from_bytes(bytes(ann.spec.paillier_public_key))
    layout = layout_for(public_key, plan, effective_max_holders(plan, ann.spec.max_holders))
    # encrypt_vector decides itself when a vector is large enough for a process pool.
    ciphertexts = encrypt_vector(public_key, layout, vector)
    return ciphertexts_to_bytes(public_key, ciphertexts)
