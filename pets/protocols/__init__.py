"""Aggregation protocols, one module each, behind one interface.

* :mod:`pets.protocols.base`: the interface, :class:`AggregationProtocol`,
  with the holder's, leader's, helper's and analyst's halves, and the Prepare
  and release hooks;
* :mod:`pets.protocols.additive`: additive secret sharing with sealed seeds;
* :mod:`pets.protocols.paillier`: packed Paillier;
* :mod:`pets.protocols.registry`: ``pets.v1.Protocol`` value -> implementation.

Pure core: nothing here does network or storage I/O. The servers
(:mod:`pets.server`) and clients (:mod:`pets.client`) do the I/O and call
these halves; see docs/ARCHITECTURE.md, "Protocols".
"""

from pets.protocols.base import AggregationProtocol, HolderContribution, RunningAggregate
from pets.protocols.registry import by_name, lookup, name_of, names

__all__ = [
    "AggregationProtocol",
    "HolderContribution",
    "RunningAggregate",
    "by_name",
    "lookup",
    "name_of",
    "names",
]
