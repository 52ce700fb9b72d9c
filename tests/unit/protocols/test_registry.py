"""The registry maps every protocol value to its implementation, and nothing else."""

from __future__ import annotations

import pytest

from pets.errors import InvalidInputError
from pets.protocols import AggregationProtocol, by_name, lookup, name_of, names
from pets.v1 import aggregation_pb2 as pb


def test_every_protocol_value_has_one_implementation_and_back() -> None:
    values = [v for v in pb.Protocol.values() if v != pb.PROTOCOL_UNSPECIFIED]
    assert sorted(name_of(v) for v in values) == names()
    for value in values:
        protocol = lookup(value)
        assert isinstance(protocol, AggregationProtocol)
        assert protocol.wire_id == value
        assert by_name(protocol.name) is protocol  # one instance per protocol
        assert name_of(value) == protocol.name


def test_an_unspecified_protocol_is_additive() -> None:
    assert lookup(pb.PROTOCOL_UNSPECIFIED).name == "additive"
    assert name_of(pb.PROTOCOL_UNSPECIFIED) == "additive"


def test_unknown_protocols_are_refused_by_value_and_by_name() -> None:
    with pytest.raises(InvalidInputError, match="unknown protocol 42"):
        lookup(42)
    with pytest.raises(
        InvalidInputError, match=r"one of \['additive', 'linkage', 'paillier', 'prio3'\]"
    ):
        by_name("poplar1")
    assert name_of(42) == "unknown"


def test_only_protocols_with_helpers_prepare_with_them() -> None:
    for name in names():
        protocol = by_name(name)
        assert not protocol.prepares or protocol.uses_helpers
