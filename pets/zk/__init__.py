"""Zero-knowledge module: secp256k1 group, sigma proofs, range proofs, credentials.

Pure core (no I/O). Start with :func:`get_group` and the relations:

* :mod:`pets.zk.group`: :class:`Group`, :class:`Point`, strict encodings, RFC 9380 generators;
  secret scalars go through :meth:`Group.mul_secret` / :meth:`Group.lincomb_secret` (blinded);
* :mod:`pets.zk.hash_to_curve`, :mod:`pets.zk.sswu`: RFC 9380 hashing (gmpy2 map by default,
  a pure-Python reference beside it);
* :mod:`pets.zk.transcript`: the Fiat-Shamir :class:`Transcript`;
* :mod:`pets.zk.sigma`: :class:`Secret`, :class:`DLRep`, ``&`` / ``|`` composition;
* :mod:`pets.zk.schnorr`, :mod:`pets.zk.pedersen`, :mod:`pets.zk.range_proof`,
  :mod:`pets.zk.membership`: named relations with ``prove`` / ``verify``;
* :mod:`pets.zk.credential`, :mod:`pets.zk.policy`: attribute credentials (issued to a
  holder-made key with proof of possession) and policies.
"""

from pets.zk.group import Group, Point, get_group
from pets.zk.membership import MembershipRelation
from pets.zk.pedersen import (
    EqualityRelation,
    LinearRelation,
    Opening,
    OpeningRelation,
    PedersenParams,
    VectorOpening,
)
from pets.zk.range_proof import BitRelation, RangeProof, RangeRelation
from pets.zk.schnorr import DLEQRelation, DLogRelation
from pets.zk.sigma import And, DLRep, Or, Secret, SigmaProof
from pets.zk.transcript import Transcript

__all__ = [
    "And",
    "BitRelation",
    "DLEQRelation",
    "DLRep",
    "DLogRelation",
    "EqualityRelation",
    "Group",
    "LinearRelation",
    "MembershipRelation",
    "Opening",
    "OpeningRelation",
    "Or",
    "PedersenParams",
    "Point",
    "RangeProof",
    "RangeRelation",
    "Secret",
    "SigmaProof",
    "Transcript",
    "VectorOpening",
    "get_group",
]
