"""Fast exact discrete Laplace and discrete Gaussian samplers for long noise vectors.

Same algorithms and same laws as the reference samplers of
:mod:`pets.dp.samplers` (Canonne, Kamath and Steinke 2020, arXiv:2004.00010,
Algorithms 1-3), with the inner steps rearranged so that a 10^6-slot vector
costs a few dozen numpy passes over uint64 lanes instead of object arithmetic
and per-trial Python work. Every decision is still an exact comparison of
integers drawn from uniformly random bytes; there is no floating point.

Discrete Laplace of scale ``t/s`` (Algorithm 2): by exact inversion by
table (:mod:`pets.dp.inversion`): the geometric magnitude as independent
mixed-radix digits, each read off a 16-bit bucket table of exact integer
thresholds, a fair sign, and the rejection of "minus zero". That module
argues its exactness; it draws 10^6 slots at b = 10^9 in ~12 ms of CPU
against ~60-70 ms for the CKS20 steps below, which remain the path for
scales whose magnitudes could pass 2^62 (``t/s`` beyond about 2^55):

1. ``U`` uniform in ``[0, t)`` (rejection sampling from 64-bit words, no
   modulo bias);
2. accept ``U`` with probability ``exp(-U/t)`` by Algorithm 1: with ``K = 1,
   2, …`` continue while ``Bernoulli(U/(t·K))`` succeeds, accept iff the
   number of successes is even. Each ``Bernoulli(U/(t·K))`` is ONE uniform
   integer ``W`` in ``[0, t·K)`` and the test ``W < U`` (the reference draws
   ``Bernoulli(U/t)`` and ``Bernoulli(1/K)`` separately; when ``t·K`` does not
   fit in 64 bits, this module does so too);
3. ``V`` with ``P(V >= v) = exp(-v)`` (the number of successes of
   ``Bernoulli(exp(-1))`` trials before the first failure) by inversion: a
   uniform 32-bit word ``w`` is compared with ``floor(exp(-v)·2^32)``
   (from :func:`pets.dp.exact_exp.thresholds`, computed once with
   integers); a tie (``w`` equal to one of them, probability about 2^-27 per
   draw) is settled exactly by drawing further bits (:mod:`pets.dp.exact_exp`);
4. ``Y = floor((U + t·V)/s)``, a fair sign, and the rejection of "minus zero".

Discrete Gaussian of variance parameter σ² (Algorithm 3): a discrete Laplace
``Y`` of integer scale ``t`` is accepted with probability ``exp(-γ)``,
``γ = (|Y| - σ²/t)²/(2σ²)`` (the Laplace candidates by table, as above).
With σ² an integer multiple of ``t``,
``σ² = c·t``, this is ``γ = (|Y| - c)²/(2·c·t)``: numerator and denominator
fit in 64 bits (for σ² < 2^62 and ``||Y| - c| < 2^32``; a lane beyond that,
with probability about ``exp(-2^32/σ)``, is decided by the reference's exact
object arithmetic). ``exp(-γ) = exp(-floor(γ))·exp(-frac(γ))``: the first
factor by one threshold comparison as in step 3, the second, for
``D = 2·c·t < 2^48``, as ``exp(-j/2^16)·exp(-ε)`` by one comparison with a
table of 2^16 exact thresholds and one 32-bit word that passes for certain
unless it falls in the top 2^-16 (:func:`_accept_exp_fraction_by_table`), and
otherwise by Algorithm 1 with ``Bernoulli(r/D)`` drawn as a uniform integer
below ``D`` and ``Bernoulli(1/K)`` as one below ``K``. Candidates are drawn
2^17 at a time (small temporaries). Algorithm 3 is correct for any integer
``t >= 1`` (``t = floor(σ) + 1`` only maximises the acceptance rate), so this
module takes ``t = isqrt(σ²) + 1`` or ``isqrt(σ²)`` when one of them divides
σ²; :func:`representable_sigma2` rounds a requested σ² up to such a value
(relative change below ``1/σ``), which :func:`pets.dp.sensitivity.noise_plan`
uses for large σ. A σ² that is not representable is sampled by the reference
sampler.

Randomness: one :class:`~pets.dp.randomness.KeyedStream` per vector (AES-256-CTR
under a fresh key from :func:`os.urandom`), dropped when the vector is drawn,
unless a test injects a seeded stream.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from fractions import Fraction
from math import isqrt

import numpy as np

from pets.dp import inversion, samplers
from pets.dp.exact_exp import LazyUniform, geometric_exp_tail, thresholds
from pets.dp.randomness import KeyedStream, RandomBytes, uint32s, uint64s
from pets.dp.rational import Rational, positive
from pets.errors import InvalidInputError

_TWO64 = 1 << 64
_TWO32 = 1 << 32
_U64_MAX = np.uint64(_TWO64 - 1)
_SMALL_GAMMA_DIFF = 1 << 32
FAST_T_MAX = 1 << 62
"""Laplace numerators ``t`` up to this use the fast path (the reference's own limit)."""
MIN_FAST_SIGMA2 = 1 << 20
"""σ² below this keeps its exact value and the reference sampler (rounding would add > 0.1%)."""
MAX_FAST_SIGMA2 = 1 << 61
"""σ² from this on keeps its exact value and the reference sampler (2σ² must fit 64 bits)."""


def _stream(rng: RandomBytes | None) -> RandomBytes:
    return KeyedStream() if rng is None else rng


# -- uniform integers -----------------------------------------------------------


def _below_const(rng: RandomBytes, bound: int, n: int) -> np.ndarray:
    """``n`` uniform integers in ``[0, bound)``, ``1 <= bound < 2^64``, by rejection.

    Bounds up to 2^32 use 32-bit words (half the random bytes) and come back
    as uint32, larger ones as uint64.
    """
    if bound == 1:
        return np.zeros(n, dtype=np.uint64)
    width = 32 if bound <= _TWO32 else 64
    draw = uint32s if width == 32 else uint64s
    span = 1 << width
    limit = span - span % bound if span % bound else None
    out = draw(rng, n)
    if limit is not None:
        lim = out.dtype.type(limit)
        bad = np.flatnonzero(out >= lim)
        while bad.size:
            fresh = draw(rng, bad.size)
            out[bad] = fresh
            bad = bad[fresh >= lim]
    out %= out.dtype.type(bound)
    return out


def _below_each(rng: RandomBytes, bounds: np.ndarray) -> np.ndarray:
    """One uniform integer in ``[0, bounds[i])`` per lane (uint64 bounds, all >= 1)."""
    rem = (np.zeros_like(bounds) - bounds) % bounds  # 2^64 mod b
    limit = np.zeros_like(bounds) - rem  # 2^64 - rem, as uint64 (0 means: no rejection)
    out = uint64s(rng, bounds.size)
    bad = np.flatnonzero((rem != 0) & (out >= limit))
    while bad.size:
        fresh = uint64s(rng, bad.size)
        out[bad] = fresh
        bad = bad[fresh >= limit[bad]]
    return out % bounds


def _signs(rng: RandomBytes, n: int) -> np.ndarray:
    """``n`` fair coin flips (bool), eight per random byte."""
    raw = np.frombuffer(rng((n + 7) // 8), dtype=np.uint8)
    return np.unpackbits(raw, count=n).view(bool)


# -- Bernoulli(exp(-x)) ---------------------------------------------------------


def _below_exp_neg_int(rng: RandomBytes, n: np.ndarray) -> np.ndarray:
    """One exact ``Bernoulli(exp(-n[i]))`` per lane, ``n`` non-negative integers (int64)."""
    table = thresholds()
    w = uint64s(rng, n.size)
    limit = table[np.minimum(n, table.size - 1)]
    out = w < limit
    # A tie, w = T_n, goes to further bits; for n = 0 (T_0 = 2^64 - 1 stands for 2^64)
    # they say F < 1, as they must.
    for i in np.flatnonzero(w == limit).tolist():
        out[i] = LazyUniform(rng, int(w[i])).below_exp_neg(Fraction(int(n[i])))
    return out


def _geometric_exp(rng: RandomBytes, n: int) -> np.ndarray:
    """``n`` draws of ``V`` with ``P(V >= v) = exp(-v)`` (int64), by exact inversion.

    A uniform 32-bit word ``w`` is the prefix of ``F``; ``F < exp(-v)`` exactly
    when ``w < floor(exp(-v)·2^32)``, unless ``w`` equals it (then further bits).
    """
    ascending = _ascending_thresholds32()  # T_63 <= ... <= T_1 (T_v = 0 for v >= 23)
    w = uint32s(rng, n)
    v = np.zeros(n, dtype=np.int64)
    # V = 0 unless w < T_1 (probability 1/e); among those, V = #{v >= 1 : T_v > w}:
    # every v with w < T_v has F < exp(-v), every other not (no tie).
    some = np.flatnonzero(w < ascending[-1])
    at_or_below = np.searchsorted(ascending, w[some], side="right")
    v[some] = ascending.size - at_or_below
    tie = np.zeros(n, dtype=bool)
    tie[some] = ascending[np.maximum(at_or_below, 1) - 1] == w[some]  # w equals some T_v
    tie |= w == ascending[-1]
    for i in np.flatnonzero(tie):
        v[i] = geometric_exp_tail(rng, int(w[i]), bits=32)
    return v


@functools.cache
def _ascending_thresholds32() -> np.ndarray:
    """``floor(exp(-v)·2^32) = T_v >> 32`` for ``v = 63 .. 1`` (uint32, ascending)."""
    return (thresholds()[1:][::-1] >> np.uint64(32)).astype(np.uint32)


def _accept_exp_fraction(rng: RandomBytes, num: np.ndarray, den: int) -> np.ndarray:
    """Algorithm 1 on ``γ = num[i]/den`` in [0, 1): one exact ``Bernoulli(exp(-γ))`` per lane.

    All lanes still running are at the same ``K`` (they all started at 1 and
    step together), so each pass draws uniform integers below ONE bound:
    ``Bernoulli(γ/K)`` is a uniform integer below ``den·K`` compared with
    ``num`` while ``den·K < 2^64``, else ``Bernoulli(γ)`` and
    ``Bernoulli(1/K)`` from independent draws (the reference's form). A lane
    that stops at ``K`` has had ``K - 1`` successes: it accepts iff ``K`` is odd.
    """

    def trial(k: int, values: np.ndarray) -> np.ndarray:  # Bernoulli(values/(den·k))
        if den * k < _TWO64:
            return _below_const(rng, den * k, values.size) < values  # type: ignore[no-any-return]
        return (_below_const(rng, den, values.size) < values) & (  # type: ignore[no-any-return]
            _below_const(rng, k, values.size) == 0
        )

    go = trial(1, num)
    out = ~go  # stopped at K = 1 (odd): accepted
    active = np.flatnonzero(go)
    values = num[active]
    k = 2
    while active.size:
        go = trial(k, values)
        if k % 2 == 1:
            out[active[~go]] = True
        active = active[go]
        values = values[go]
        k += 1
    return out


FRACTION_BITS = 16
"""``exp(-γ)`` for ``γ`` in [0, 1) splits as ``exp(-j/2^16)·exp(-ε)``, ``ε < 2^-16``."""
_TABLE_DEN_MAX = 1 << (64 - FRACTION_BITS)


@functools.cache
def _fraction_thresholds() -> np.ndarray:
    """``floor(2^64·exp(-j/2^16))`` for ``j`` in ``[0, 2^16)`` (uint64, exact integers)."""
    exps = inversion.power_thresholds(Fraction(1, 1 << FRACTION_BITS), 1 << FRACTION_BITS)
    return np.array(exps, dtype=np.uint64)


def _accept_exp_fraction_by_table(rng: RandomBytes, num: np.ndarray, den: int) -> np.ndarray:
    """One exact ``Bernoulli(exp(-num[i]/den))`` per lane, ``num < den < 2^48`` (uint64).

    ``num/den = j/2^16 + ε`` with ``j = floor(num·2^16/den)`` and
    ``ε = (num·2^16 mod den)/(den·2^16) < 2^-16``, so ``exp(-num/den)`` is the
    product ``exp(-j/2^16)·exp(-ε)`` and the trial is two independent ones,
    both passed (the same factorisation as CKS20 Algorithm 1's
    ``exp(-γ) = exp(-floor γ)·exp(-frac γ)``):

    * ``Bernoulli(exp(-j/2^16))``: a uniform 64-bit word against the exact
      threshold ``floor(2^64·exp(-j/2^16))`` (a table of 2^16 integers); a tie
      is settled by further bits (:class:`~pets.dp.exact_exp.LazyUniform`);
    * ``Bernoulli(exp(-ε))``: ``exp(-ε) > 1 - ε > 1 - 2^-16``, so a uniform
      32-bit word ``u < 2^32 - 2^16`` passes for certain; the others (2^-16 of
      lanes) are compared exactly with further bits.
    """
    j, rem = np.divmod(num << np.uint64(FRACTION_BITS), np.uint64(den))
    return _accept_exp_parts(rng, j, rem, den)


def _accept_exp_parts(rng: RandomBytes, j: np.ndarray, rem: np.ndarray, den: int) -> np.ndarray:
    """:func:`_accept_exp_fraction_by_table` from ``j`` and ``rem`` already computed."""
    w = uint64s(rng, j.size)
    limit = _fraction_thresholds()[j]
    out = w < limit
    for i in np.flatnonzero(w == limit).tolist():
        x = Fraction(int(j[i]), 1 << FRACTION_BITS)
        out[i] = LazyUniform(rng, int(w[i])).below_exp_neg(x)
    u = uint32s(rng, j.size)
    unsure = np.flatnonzero(out & (u >= np.uint32(_TWO32 - (1 << (32 - FRACTION_BITS)))))
    for i in unsure.tolist():
        eps = Fraction(int(rem[i]), den << FRACTION_BITS)
        out[i] = LazyUniform(rng, int(u[i]), bits=32).below_exp_neg(eps)
    return out


# -- discrete Laplace -----------------------------------------------------------


def _laplace_candidates(rng: RandomBytes, t: int, s: int, n: int) -> np.ndarray:
    """Algorithm 2 on ``n`` candidates; the accepted draws (int64), in order."""
    u = _below_const(rng, t, n)
    u = u[_accept_exp_fraction(rng, u, t)]
    v = _geometric_exp(rng, u.size)
    if t * (int(v.max(initial=0)) + 1) >= samplers.INT64_SAFE:
        big = (u.astype(object) + t * v.astype(object)) // s  # exact; only for huge scales
        sign = _signs(rng, big.size)
        keep = ~(sign & (big == 0))
        return samplers.to_int64(np.where(sign, -big, big)[keep])
    y = np.multiply(v, np.int64(t), out=v)
    y += u.view(np.int64) if u.dtype == np.uint64 else u  # u < t < 2^62
    if s != 1:
        y //= np.int64(s)
    sign = _signs(rng, y.size)
    minus_zero = np.flatnonzero(y == 0)  # rejected when the sign is minus (rare for b >> 1)
    np.negative(y, out=y, where=sign)
    return np.delete(y, minus_zero[sign[minus_zero]])


def discrete_laplace(scale: Rational, size: int, rng: RandomBytes | None = None) -> np.ndarray:
    """``size`` i.i.d. draws of the discrete Laplace of ``scale`` (int64), exact.

    Same law as :func:`pets.dp.samplers.discrete_laplace`; falls back to it
    for scales whose numerator or denominator is 2^62 or more.
    """
    samplers.check_size(size)
    b = positive(scale, "discrete Laplace scale")
    t, s = b.numerator, b.denominator
    if t >= FAST_T_MAX or s >= FAST_T_MAX:
        return samplers.discrete_laplace(b, size, _stream(rng))
    stream = _stream(rng)
    plan = inversion.laplace_plan(t, s)
    if plan is not None:
        return _inverted(plan, stream, size)
    return _collect(lambda n: _laplace_candidates(stream, t, s, n), size, 0.6)


def _inverted(plan: inversion.LaplacePlan, rng: RandomBytes, n: int) -> np.ndarray:
    """:func:`pets.dp.inversion.discrete_laplace`, its overflow as the reference reports it."""
    try:
        return inversion.discrete_laplace(plan, rng, n)
    except OverflowError:  # pragma: no cover - needs a geometric draw beyond 2^-64 odds
        raise InvalidInputError("noise does not fit in 64 bits; the scale is too large") from None


def _collect(batch: Callable[[int], np.ndarray], size: int, rate: float) -> np.ndarray:
    """Run ``batch`` until ``size`` accepted draws are in (surplus i.i.d. draws dropped)."""
    return samplers.collect(batch, size, rate)


# -- discrete Gaussian ----------------------------------------------------------


def laplace_scale_for(sigma2: Fraction) -> int | None:
    """The Laplace scale ``t`` this module uses for σ², or None if σ² is not representable.

    Representable: σ² is an integer below 2^62 and ``isqrt(σ²) + 1`` or
    ``isqrt(σ²)`` divides it.
    """
    if sigma2.denominator != 1 or not 1 <= sigma2 < FAST_T_MAX:
        return None
    a = sigma2.numerator
    root = isqrt(a)
    for t in (root + 1, root):
        if t >= 1 and a % t == 0:
            return t
    return None


def representable_sigma2(sigma2: Fraction) -> Fraction:
    """A σ'² >= σ² with :func:`laplace_scale_for` defined (1 <= σ² < 2^62 - 2^32).

    σ² itself if it is representable, else

    ``σ'² = t·ceil(σ²/t)`` with ``t = isqrt(ceil(σ²)) + 1`` (``isqrt(σ'²)`` is then
    ``t - 1`` or ``t``, so ``t`` is one of the scales tried), so
    ``σ'² - σ² < t + 1``: a relative change below ``(σ + 2)/σ²``.
    """
    if laplace_scale_for(sigma2) is not None:
        return sigma2
    whole = -(-sigma2.numerator // sigma2.denominator)  # ceil
    if whole < 1:
        raise InvalidInputError("discrete Gaussian sigma^2 must be at least 1 to be rounded")
    t = isqrt(whole) + 1
    out = Fraction(t * -(-whole // t))
    if laplace_scale_for(out) is None:  # pragma: no cover - isqrt(out) is t - 1 or t
        raise AssertionError("representable_sigma2 produced a value it cannot sample")
    return out


def _gaussian_candidates(rng: RandomBytes, c: int, t: int, n: int) -> np.ndarray:
    """Algorithm 3 on ``n`` Laplace draws of scale ``t`` with ``σ² = c·t``; the accepted ones."""
    plan = inversion.laplace_plan(t, 1)
    y = _inverted(plan, rng, n) if plan is not None else _laplace_candidates(rng, t, 1, n)
    diff = np.abs(np.abs(y) - np.int64(c))  # ||Y| - σ²/t|
    den = 2 * c * t
    if den < _TABLE_DEN_MAX:
        d = diff.view(np.uint64)
        if int(d.max(initial=0)) < _TABLE_DIFF_MAX:
            return y[_accept_gaussian_by_table(rng, d, den)]
    small = diff < _SMALL_GAMMA_DIFF
    everywhere = bool(small.all())  # almost always: no gather needed
    idx = np.arange(0) if everywhere else np.flatnonzero(small)
    d = (diff if everywhere else diff[idx]).view(np.uint64)  # diff >= 0
    whole, frac = np.divmod(d * d, np.uint64(den))  # d·d < 2^64; whole < 2^63
    ok = _below_exp_neg_int(rng, whole.view(np.int64))
    keep = np.flatnonzero(ok)
    by_table = den < _TABLE_DEN_MAX  # σ² < 2^47: frac·2^16 fits in 64 bits
    accept_fraction = _accept_exp_fraction_by_table if by_table else _accept_exp_fraction
    ok[keep] = accept_fraction(rng, frac[keep], den)
    if everywhere:
        return y[ok]
    accept = np.zeros(y.size, dtype=bool)
    accept[idx] = ok
    for i in np.flatnonzero(~small):  # |Y| beyond 2^32 + σ: exact object arithmetic
        num_i = int(diff[i]) ** 2
        word = int(uint64s(rng, 1)[0])
        ok_i = LazyUniform(rng, word).below_exp_neg(Fraction(num_i // den))
        if ok_i:
            rem = np.array([num_i % den], dtype=np.uint64)
            ok_i = bool(_accept_exp_fraction(rng, rem, den)[0])
        accept[i] = ok_i
    return y[accept]


_TABLE_DIFF_MAX = 1 << 24
"""``d < 2^24``: ``d²·2^16`` fits in 64 bits (one division gives γ's whole part and ``j``)."""


def _accept_gaussian_by_table(rng: RandomBytes, d: np.ndarray, den: int) -> np.ndarray:
    """Algorithm 3's ``Bernoulli(exp(-d²/den))`` per lane, ``den < 2^48``, ``d < 2^24``.

    One division ``J = floor(d²·2^16/den)`` gives ``floor γ = J >> 16`` and
    ``j = J mod 2^16``, with ``ε = (d²·2^16 - J·den)/(den·2^16)``: the same
    trials, in the same order and from the same random words, as the
    two-division path (:func:`_below_exp_neg_int`, then
    :func:`_accept_exp_fraction_by_table` on the lanes that passed).
    """
    scaled = d * d
    scaled <<= np.uint64(FRACTION_BITS)
    big = np.uint64(den)
    q = scaled // big
    rem = scaled - q * big
    ok = _below_exp_neg_int(rng, (q >> np.uint64(FRACTION_BITS)).view(np.int64))
    keep = np.flatnonzero(ok)
    j = q[keep] & np.uint64((1 << FRACTION_BITS) - 1)
    ok[keep] = _accept_exp_parts(rng, j, rem[keep], den)
    return ok


def discrete_gaussian(sigma2: Rational, size: int, rng: RandomBytes | None = None) -> np.ndarray:
    """``size`` i.i.d. draws of the discrete Gaussian N_Z(0, σ²) (int64), exact.

    Same law as :func:`pets.dp.samplers.discrete_gaussian`; σ² is used as
    given (never rounded here). A σ² that :func:`laplace_scale_for` cannot
    represent is sampled by the reference sampler.
    """
    samplers.check_size(size)
    var = positive(sigma2, "discrete Gaussian sigma^2")
    t = laplace_scale_for(var)
    if t is None or 2 * var.numerator >= _TWO64:
        return samplers.discrete_gaussian(var, size, _stream(rng))
    c = var.numerator // t
    stream = _stream(rng)
    return _chunked(lambda n: _gaussian_candidates(stream, c, t, n), size)


def _chunked(batch: Callable[[int], np.ndarray], size: int) -> np.ndarray:
    """Run ``batch`` on at most :data:`pets.dp.inversion.CHUNK` candidates at a time until
    ``size`` accepted draws are in (small temporaries: see
    :func:`pets.dp.inversion.discrete_laplace`; a batch is sized for what is missing at
    an acceptance rate of 2/3, and the surplus of the last one, i.i.d. draws, is dropped)."""
    out = np.empty(size, dtype=np.int64)
    filled = 0
    while filled < size:
        got = batch(min(inversion.CHUNK, (size - filled) * 3 // 2 + 64))[: size - filled]
        out[filled : filled + got.size] = got
        filled += got.size
    return out
