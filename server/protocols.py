"""Per-protocol facts the leader needs: vector length and the running aggregate."""

from __future__ import annotations

from pets.errors import InvalidInputError
from pets.query import QueryPlan
from pets.server.aggregates import AdditiveAggregate, RunningAggregate
from pets.v1 import aggregation_pb2 as pb


def vector_length(spec: pb.QuerySpec, plan: QueryPlan, min_holders: int) -> int:
    """How many values (additive) or ciphertexts (Paillier) one contribution has."""
    if spec.protocol == pb.PROTOCOL_ADDITIVE:
        if spec.paillier_public_key:
            raise InvalidInputError("paillier_public_key is only for PROTOCOL_PAILLIER queries")
        return plan.length
    if spec.protocol == pb.PROTOCOL_PAILLIER:
        from pets.server.paillier_aggregate import paillier_vector_length

        return paillier_vector_length(spec, plan, min_holders)
    raise InvalidInputError(f"unknown protocol {spec.protocol}")


def running_aggregate(
    spec: pb.QuerySpec, length: int, plan: QueryPlan, data: bytes | None = None
) -> RunningAggregate:
    """A fresh (or, with ``data``, a restored) aggregate for one query."""
    if spec.protocol == pb.PROTOCOL_PAILLIER:
        from pets.server.paillier_aggregate import PaillierAggregate

        return PaillierAggregate(spec, length, plan, data)
    return AdditiveAggregate(length, data, max_contributions=plan.max_holders())
