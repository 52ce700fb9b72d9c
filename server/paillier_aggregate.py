"""The leader's running product of Paillier ciphertext vectors.

The leader cannot decrypt anything: it multiplies each holder's ciphertexts
index-wise modulo n^2 (adding the packed plaintexts) and releases only the
product, only to the query's analyst. It refuses contributions beyond the
query's ``max_holders``, the headroom the packing left in each slot.
"""

from __future__ import annotations

from pets.errors import InvalidInputError
from pets.paillier import (
    aggregate,
    ciphertext_width,
    ciphertexts_from_bytes,
    ciphertexts_to_bytes,
    public_key_from_bytes,
)
from pets.paillier_plan import effective_max_holders, layout_for
from pets.query import QueryPlan
from pets.v1 import aggregation_pb2 as pb


def paillier_vector_length(spec: pb.QuerySpec, plan: QueryPlan, min_holders: int) -> int:
    """Ciphertexts per contribution; validates the key and ``max_holders``."""
    if not spec.paillier_public_key:
        raise InvalidInputError("a Paillier query needs the analyst's paillier_public_key")
    public_key = public_key_from_bytes(bytes(spec.paillier_public_key))
    max_holders = effective_max_holders(spec.max_holders, min_holders)
    return layout_for(public_key, plan, max_holders).num_plaintexts


class PaillierAggregate:
    def __init__(self, spec: pb.QuerySpec, length: int, data: bytes | None = None) -> None:
        self.public_key = public_key_from_bytes(bytes(spec.paillier_public_key))
        self.length = length
        self.max_holders = effective_max_holders(spec.max_holders)
        self.payload_bytes = length * ciphertext_width(self.public_key)
        self.ciphertexts: list[int] | None = None
        self.count = 0
        if data is not None:
            self.ciphertexts = ciphertexts_from_bytes(self.public_key, data)
            if len(self.ciphertexts) != length:
                raise InvalidInputError("stored Paillier aggregate has the wrong length")

    def validate(self, payload: bytes | bytearray) -> list[int]:
        cts = ciphertexts_from_bytes(self.public_key, bytes(payload))
        if len(cts) != self.length:
            raise InvalidInputError(f"expected {self.length} ciphertexts, got {len(cts)}")
        return cts

    def add(self, parsed: object) -> None:
        if self.count >= self.max_holders:
            raise InvalidInputError(
                f"query already has max_holders={self.max_holders} contributions; more could "
                "carry between packed slots"
            )
        self.ciphertexts = aggregate(self.public_key, self.ciphertexts, parsed)  # type: ignore[arg-type]
        self.count += 1

    def to_bytes(self) -> bytes:
        assert self.ciphertexts is not None
        return ciphertexts_to_bytes(self.public_key, self.ciphertexts)
