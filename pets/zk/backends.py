"""Group backends for secp256k1: raw point arithmetic behind one small interface.

A backend works on its own native point type ("raw" points) and uses
``None`` for the identity, which libsecp256k1 cannot represent. The
:class:`pets.zk.group.Group` wrapper turns raw points into
:class:`pets.zk.group.Point` objects, so the rest of the zero-knowledge module
never sees a backend type. Both backends must agree byte for byte on every
encoding; ``tests/unit/zk/test_group.py`` checks it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

#: Names accepted by :func:`pets.zk.group.get_group`.
BACKEND_NAMES = ("coincurve", "py_ecc")
DEFAULT_BACKEND = "coincurve"


class Backend(Protocol):
    """Raw secp256k1 arithmetic. Scalars are Python ints; ``None`` is the identity."""

    name: str
    generator: Any

    def decode(self, data: bytes) -> Any:
        """Parse a 33-byte SEC1 compressed point (prefix already checked); raise ValueError."""

    def encode(self, raw: Any) -> bytes:
        """33-byte SEC1 compressed encoding of a non-identity point."""

    def from_affine(self, x: int, y: int) -> Any:
        """Raw point from affine coordinates already known to be on the curve."""

    def add(self, a: Any, b: Any) -> Any:
        """a + b."""

    def neg(self, a: Any) -> Any:
        """-a."""

    def mul(self, k: int, a: Any) -> Any:
        """k * a for any integer k."""

    def mul_base(self, k: int) -> Any:
        """k * G."""

    def sum(self, raws: Sequence[Any]) -> Any:
        """Sum of non-identity raw points (repeats allowed)."""

    def lincomb(self, base_coeff: int, terms: Sequence[tuple[int, Any, bytes]]) -> Any:
        """base_coeff * G + sum(k * P) over (k, raw P, encoding of P); scalars reduced, non-zero."""


def load_backend(name: str) -> Backend:
    """Instantiate a backend by name (imports lazily so py_ecc is only loaded when used)."""
    if name == "coincurve":
        from pets.zk.backend_coincurve import CoincurveBackend

        return CoincurveBackend()
    if name == "py_ecc":
        from pets.zk.backend_py_ecc import PyEccBackend

        return PyEccBackend()
    from pets.errors import InvalidInputError

    raise InvalidInputError(f"unknown group backend {name!r}; expected one of {BACKEND_NAMES}")
