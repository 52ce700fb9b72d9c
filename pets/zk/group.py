"""The prime-order group secp256k1, with an explicit identity and strict encodings.

:func:`get_group` returns a :class:`Group` bound to one backend
(``"coincurve"``, the default, or ``"py_ecc"``, the pure-Python reference).
Both produce byte-identical encodings, hence byte-identical proofs under the
same randomness.

Encodings (SEC 1 v2, section 2.3.3):

* a point other than the identity is 33 bytes: ``0x02``/``0x03`` (parity of y)
  followed by x as 32 big-endian bytes;
* the identity is the single byte ``0x00`` (SEC 1's octet-string encoding of
  the point at infinity);
* decoding is strict: any other length, any other prefix, x >= p, or an x
  with no point on the curve raises :class:`~pets.errors.InvalidInputError`.
  Uncompressed and hybrid encodings are refused, so each point has exactly
  one accepted encoding.

Scalars are canonical 32-byte big-endian integers in [0, n); values >= n are
rejected rather than reduced.

Extra generators come from RFC 9380 hash-to-curve with a project domain tag
(:data:`GENERATOR_DST`), so nobody knows their discrete logarithms relative
to G or to each other.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

import gmpy2

from pets.errors import InvalidInputError
from pets.zk import hash_to_curve as h2c
from pets.zk.backends import BACKEND_NAMES, DEFAULT_BACKEND, Backend, load_backend
from pets.zk.curve import POINT_BYTES, SCALAR_BYTES, N
from pets.zk.rng import DEFAULT_RNG, RandomSource, random_scalar

#: Domain separation tag for the project's generators (RFC 9380 section 3.1).
GENERATOR_DST = b"PETS-V01-CS01-with-secp256k1_XMD:SHA-256_SSWU_RO_"
#: Domain separation tag prefix for hash-to-scalar uses (attribute encodings, ...).
SCALAR_DST_PREFIX = b"PETS-V01-scalar-"

IDENTITY_ENCODING = b"\x00"


class Point:
    """A group element: a backend point or the identity (``raw is None``).

    Supports ``+``, ``-``, unary ``-``, ``int * Point`` and ``==``. Equality
    and hashing use the canonical encoding, which is cached. ``int * Point``
    is for *public* scalars (variable-time on points other than G); secret
    scalars go through :meth:`Group.mul_secret` / :meth:`Group.lincomb_secret`.
    """

    __slots__ = ("_enc", "_group", "_neg", "_raw")

    def __init__(self, group: Group, raw: Any, enc: bytes | None = None) -> None:
        self._group = group
        self._raw = raw
        self._enc = enc
        self._neg: Point | None = None

    @property
    def group(self) -> Group:
        return self._group

    @property
    def is_identity(self) -> bool:
        return self._raw is None

    def to_bytes(self) -> bytes:
        """Canonical encoding: 33-byte SEC1 compressed, or ``b"\\x00"`` for the identity."""
        enc = self._enc
        if enc is None:
            enc = IDENTITY_ENCODING if self._raw is None else self._group.backend.encode(self._raw)
            self._enc = enc
        return enc

    def _check(self, other: object) -> Point:
        if not isinstance(other, Point):
            return NotImplemented
        if other._group is not self._group:
            raise InvalidInputError("points from different group backends cannot be mixed")
        return other

    def __add__(self, other: Point) -> Point:
        other = self._check(other)
        return Point(self._group, self._group.backend.add(self._raw, other._raw))

    def __sub__(self, other: Point) -> Point:
        other = self._check(other)
        b = self._group.backend
        return Point(self._group, b.add(self._raw, b.neg(other._raw)))

    def __neg__(self) -> Point:
        neg = self._neg
        if neg is None:  # cached: bases are negated on every secret multiplication
            neg = Point(self._group, self._group.backend.neg(self._raw))
            neg._neg = self
            self._neg = neg
        return neg

    def __mul__(self, k: int) -> Point:
        """k * P. Variable-time for P other than G: use Group.mul_secret for secret k."""
        if not isinstance(k, int):
            return NotImplemented
        if self._raw is None:
            return self
        if self._group.generator is self:
            return self._group.mul_base(k)
        return Point(self._group, self._group.backend.mul(k, self._raw))

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Point):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    def __hash__(self) -> int:
        return hash(self.to_bytes())

    def __repr__(self) -> str:
        return f"Point({self.to_bytes().hex()})"


class Group:
    """secp256k1 on one backend. Obtain instances with :func:`get_group`."""

    #: Group order n.
    order = N
    #: Name of the group, absorbed by every transcript.
    curve_name = "secp256k1"

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.name = backend.name
        self.identity = Point(self, None, IDENTITY_ENCODING)
        self.generator = Point(self, backend.generator)
        self._generators: dict[bytes, Point] = {}

    def __repr__(self) -> str:
        return f"Group(secp256k1, backend={self.name!r})"

    # -- scalars ---------------------------------------------------------------

    @staticmethod
    def scalar_to_bytes(k: int) -> bytes:
        """Canonical 32-byte big-endian encoding of a scalar in [0, n)."""
        if not 0 <= k < N:
            raise InvalidInputError("scalar out of range [0, n)")
        return k.to_bytes(SCALAR_BYTES, "big")

    @staticmethod
    def scalar_from_bytes(data: bytes) -> int:
        """Strict decoding: exactly 32 bytes, value < n."""
        if len(data) != SCALAR_BYTES:
            raise InvalidInputError("a scalar must be exactly 32 bytes")
        k = int.from_bytes(data, "big")
        if k >= N:
            raise InvalidInputError("non-canonical scalar (>= group order)")
        return k

    @staticmethod
    def random_scalar(rng: RandomSource = DEFAULT_RNG) -> int:
        """Uniform non-zero scalar."""
        return random_scalar(rng, N)

    @staticmethod
    def hash_to_scalar(msg: bytes, domain: bytes) -> int:
        """RFC 9380 hash_to_field into Z_n (L = 48, no modulo bias), domain-separated."""
        return h2c.hash_to_scalar(msg, SCALAR_DST_PREFIX + domain)

    # -- points ----------------------------------------------------------------

    def point_from_bytes(self, data: bytes) -> Point:
        """Strict SEC1 decoding (see module docstring)."""
        data = bytes(data)
        if data == IDENTITY_ENCODING:
            return self.identity
        if len(data) != POINT_BYTES:
            raise InvalidInputError("a point must be 33 bytes (or 0x00 for the identity)")
        if data[0] not in (2, 3):
            raise InvalidInputError("a point must use SEC1 compressed encoding (prefix 02/03)")
        if int.from_bytes(data[1:], "big") >= h2c.P:
            raise InvalidInputError("non-canonical point encoding (x >= p)")
        try:
            raw = self.backend.decode(data)
        except ValueError:
            raise InvalidInputError("not a point on secp256k1") from None
        return Point(self, raw, data)

    def point_from_affine(self, x: int, y: int) -> Point:
        from pets.zk.curve import is_on_curve

        if not is_on_curve(x, y):
            raise InvalidInputError("not a point on secp256k1")
        return Point(self, self.backend.from_affine(x, y))

    def hash_to_point(self, msg: bytes, dst: bytes = GENERATOR_DST) -> Point:
        """RFC 9380 ``hash_to_curve`` with suite secp256k1_XMD:SHA-256_SSWU_RO_."""
        affine = h2c.hash_to_curve(msg, dst)
        if affine is None:  # probability ~2^-256
            raise InvalidInputError("hash_to_curve produced the identity")
        return self.point_from_affine(*affine)

    def derive_generator(self, label: str | bytes) -> Point:
        """Generator with unknown discrete log: ``hash_to_curve(label, GENERATOR_DST)``, cached."""
        key = label.encode() if isinstance(label, str) else bytes(label)
        point = self._generators.get(key)
        if point is None:
            point = self.hash_to_point(key)
            point.to_bytes()
            self._generators[key] = point
        return point

    def mul_base(self, k: int) -> Point:
        """k * G using the backend's fixed-base path."""
        return Point(self, self.backend.mul_base(k))

    def lincomb(self, terms: Iterable[tuple[int, Point]]) -> Point:
        """sum(k_i * P_i): one call into the backend, with G's coefficients merged.

        The verifier's hot path. Zero scalars and identity points are dropped,
        the coefficients of G are summed, and equal points are not merged
        (callers rarely repeat points).
        """
        base = 0
        rest: list[tuple[int, Any, bytes]] = []
        g = self.generator
        g_enc = g.to_bytes()
        for k, point in terms:
            if point is g:
                base += k
                continue
            raw = point._raw
            if raw is None:
                continue
            enc = point.to_bytes()
            if enc == g_enc:
                base += k
                continue
            k %= N
            if k:
                rest.append((k, raw, enc))
        return Point(self, self.backend.lincomb(base % N, rest))

    def mul_secret(self, k: int, point: Point, *, rng: RandomSource = DEFAULT_RNG) -> Point:
        """k * P for a *secret* k; see :meth:`lincomb_secret`."""
        return self.lincomb_secret(((k, point),), rng=rng)

    def lincomb_secret(
        self, terms: Iterable[tuple[int, Point]], *, rng: RandomSource = DEFAULT_RNG
    ) -> Point:
        """sum(k_i * P_i) for *secret* scalars (values, blindings, nonces, keys).

        Only G has a constant-time multiplication in libsecp256k1
        (``ecmult_gen``, used by ``from_valid_secret``). ``PublicKey.multiply``
        (``tweak_mul``) and the double multiplication behind :meth:`lincomb`
        are variable-time: their running time grows with the lengths of the
        scalar's GLV halves, about 6 us for k = 1 and 31 us for a random
        256-bit k (issue 15 item 13). So a secret scalar never reaches them
        as such:

        * a term on G is ``(k + 1) * G - G`` through ``ecmult_gen`` (the
          ``+ 1`` makes k = 0 cost the same as any other k);
        * any other term is ``(k + 1) * P - P`` with the product blinded by
          a fresh uniform s in [1, n): ``(k + 1) * P = ((k + 1)*s) * (s^-1 * P)``.
          Each scalar handed to ``multiply``, ``s^-1`` and ``(k + 1)*s``, is
          uniform whatever k is (the ``+ 1`` keeps k = 0 from giving the
          scalar 0), so its timing says nothing about k.

        The products are then added (``combine_keys``, whose cost depends
        only on the number of points). ``rng`` only draws the blinding; the
        result does not depend on it. The pure-Python ``py_ecc`` backend is a
        reference for tests and is not constant-time in any case.
        """
        parts: list[Point] = []
        g = self.generator
        g_enc = g.to_bytes()
        backend = self.backend
        for k, point in terms:
            raw = point._raw
            if raw is None:
                continue
            if point is g or point.to_bytes() == g_enc:
                k1 = (k + 1) % N
                if k1:  # k = N - 1 exactly: (k + 1) * G is the identity
                    parts.append(Point(self, backend.mul_base(k1)))
                parts.append(-g)
                continue
            s = random_scalar(rng, N)
            blinded = (k + 1) * s % N
            if blinded:  # k = N - 1 exactly: (k + 1) * P is the identity
                q = backend.mul(int(gmpy2.invert(s, N)), raw)
                parts.append(Point(self, backend.mul(blinded, q)))
            parts.append(-point)
        return self.sum(parts)

    def sum(self, points: Iterable[Point]) -> Point:
        """Sum of points (repeats allowed) in one backend call."""
        return Point(self, self.backend.sum([p._raw for p in points if p._raw is not None]))

    def points_from_bytes(self, items: Sequence[bytes]) -> list[Point]:
        return [self.point_from_bytes(item) for item in items]


@functools.cache
def get_group(backend: str = DEFAULT_BACKEND) -> Group:
    """The secp256k1 group on the named backend (``"coincurve"`` or ``"py_ecc"``); cached."""
    if backend not in BACKEND_NAMES:
        raise InvalidInputError(
            f"unknown group backend {backend!r}; expected one of {BACKEND_NAMES}"
        )
    return Group(load_backend(backend))
