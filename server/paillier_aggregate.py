"""The leader's running product of Paillier ciphertext vectors.

The leader cannot decrypt anything: it multiplies each holder's ciphertexts
index-wise modulo n^2 (adding the packed plaintexts) and releases only the
product, only to the query's analyst. It refuses contributions beyond the
query's ``max_holders``, the headroom the packing left in each slot.
"""

from __future__ import annotations

import gmpy2

from pets.errors import InvalidInputError
from pets.paillier import (
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
    max_holders = effective_max_holders(plan, spec.max_holders, min_holders)
    return layout_for(public_key, plan, max_holders).num_plaintexts


class PaillierAggregate:
    """Index-wise product of validated ciphertexts (mod n^2), with a holder cap."""

    def __init__(
        self, spec: pb.QuerySpec, length: int, plan: QueryPlan, data: bytes | None = None
    ) -> None:
        self.public_key = public_key_from_bytes(bytes(spec.paillier_public_key))
        self._n2 = gmpy2.mpz(self.public_key.n) ** 2
        self.length = length
        self.max_holders = effective_max_holders(plan, spec.max_holders)
        self.payload_bytes = length * ciphertext_width(self.public_key)
        self.ciphertexts: list[gmpy2.mpz] | None = None
        self.count = 0
        if data is not None:
            self.ciphertexts = [gmpy2.mpz(c) for c in self.validate(data)]

    def validate(self, payload: bytes | bytearray) -> list[int]:
        """Parse and check every ciphertext (range and coprimality) exactly once."""
        cts = ciphertexts_from_bytes(self.public_key, bytes(payload))
        if len(cts) != self.length:
            raise InvalidInputError(f"expected {self.length} ciphertexts, got {len(cts)}")
        return cts

    def add(self, parsed: object) -> None:
        """Fold ciphertexts that :meth:`validate` returned."""
        if self.count >= self.max_holders:
            raise InvalidInputError(
                f"query already has max_holders={self.max_holders} contributions; more could "
                "carry between packed slots"
            )
        cts = [gmpy2.mpz(c) for c in parsed]  # type: ignore[attr-defined]
        if self.ciphertexts is None:
            self.ciphertexts = cts
        else:
            n2 = self._n2
            self.ciphertexts = [a * b % n2 for a, b in zip(self.ciphertexts, cts, strict=True)]
        self.count += 1

    def to_bytes(self) -> bytes:
        assert self.ciphertexts is not None
        return ciphertexts_to_bytes(self.public_key, [int(c) for c in self.ciphertexts])
