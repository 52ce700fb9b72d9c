"""The analyst's Paillier side: a key pair that stays here, and decryption."""

from __future__ import annotations

from typing import Any

from pets.errors import InvalidInputError
from pets.paillier import (
    ciphertexts_from_bytes,
    decrypt_vector,
    generate_keypair,
    public_key_to_bytes,
)
from pets.paillier_plan import effective_max_holders, layout_for
from pets.v1 import aggregation_pb2 as pb


def prepare_key(private_key: Any, bits: int) -> tuple[Any, bytes]:
    """A fresh key pair (or the given private key); returns it and the public key bytes."""
    if private_key is None:
        _, private_key = generate_keypair(bits)
    return private_key, public_key_to_bytes(private_key.public_key)


def decrypt_aggregate(
    submitted: Any, status: pb.QueryStatus, data: bytes, contributors: int
) -> list[int]:
    """Decrypt and unpack the leader's aggregate ciphertexts into exact integer sums."""
    private_key = submitted.private_key
    if private_key is None:
        raise InvalidInputError("no private key for this Paillier query in this process")
    public_key = private_key.public_key
    if bytes(status.spec.paillier_public_key) != public_key_to_bytes(public_key):
        raise InvalidInputError("the query was submitted under another public key")
    layout = layout_for(
        public_key, submitted.plan, effective_max_holders(submitted.plan, status.spec.max_holders)
    )
    ciphertexts = ciphertexts_from_bytes(public_key, data)
    return decrypt_vector(private_key, layout, ciphertexts, contributors)
