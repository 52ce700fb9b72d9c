"""Which implementation serves which ``pets.v1.Protocol`` value: the one place that knows.

Servers and clients call :func:`lookup` (by the wire value in a query's
spec) or :func:`by_name` (as analysts and node policies spell it) and use
the :class:`~pets.protocols.base.AggregationProtocol` they get; nothing else
branches on the enum. Adding a protocol is one module under
:mod:`pets.protocols` and one line in :data:`_REGISTRY` (plus its enum value
in ``protos/pets/v1/aggregation.proto``); see docs/ARCHITECTURE.md, "Where to
add a protocol".

Modules load on first use, so a protocol's optional dependency (gmpy2 for
Paillier) is needed only by queries that use it.
"""

from __future__ import annotations

import importlib
from functools import cache

from pets.errors import InvalidInputError
from pets.protocols.base import AggregationProtocol
from pets.v1 import aggregation_pb2 as pb

# wire value -> (name, "module:class")
_REGISTRY: dict[int, tuple[str, str]] = {
    pb.PROTOCOL_ADDITIVE: ("additive", "pets.protocols.additive:AdditiveProtocol"),
    pb.PROTOCOL_PAILLIER: ("paillier", "pets.protocols.paillier:PaillierProtocol"),
    pb.PROTOCOL_PRIO3: ("prio3", "pets.protocols.prio3:Prio3Protocol"),
    pb.PROTOCOL_LINKAGE: ("linkage", "pets.protocols.linkage:LinkageProtocol"),
}
#: What a spec that names no protocol means.
DEFAULT = pb.PROTOCOL_ADDITIVE


@cache
def _load(wire_id: int) -> AggregationProtocol:
    module, _, cls = _REGISTRY[wire_id][1].partition(":")
    protocol = getattr(importlib.import_module(module), cls)()
    assert isinstance(protocol, AggregationProtocol) and protocol.wire_id == wire_id
    return protocol


def lookup(wire_id: int) -> AggregationProtocol:
    """The protocol of a ``pets.v1.Protocol`` value (unspecified means :data:`DEFAULT`)."""
    if wire_id == pb.PROTOCOL_UNSPECIFIED:
        wire_id = DEFAULT
    if wire_id not in _REGISTRY:
        raise InvalidInputError(f"unknown protocol {wire_id}")
    return _load(wire_id)


def by_name(name: str) -> AggregationProtocol:
    """The protocol called ``name``."""
    for wire_id, (known, _) in _REGISTRY.items():
        if known == name:
            return _load(wire_id)
    raise InvalidInputError(f"protocol must be one of {names()}")


def names() -> list[str]:
    """Every protocol's name, sorted."""
    return sorted(name for name, _ in _REGISTRY.values())


def name_of(wire_id: int) -> str:
    """The name of a wire value without loading its module ("unknown" if none)."""
    if wire_id == pb.PROTOCOL_UNSPECIFIED:
        wire_id = DEFAULT
    return _REGISTRY.get(wire_id, ("unknown", ""))[0]
