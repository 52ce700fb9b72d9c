"""Exact samplers (pets.dp.samplers) against their exact pmfs, and against OpenDP.

Each chi-square test draws a fixed number of samples from a seeded stream
(:class:`SeededRandom`), so it is reproducible; it rejects at p < 1e-6, so a
correct sampler with a fresh seed would fail about once in a million runs.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from pets.dp import samplers
from pets.dp.randomness import SeededRandom, python_below, uint64s
from pets.dp.samplers import discrete_gaussian, discrete_laplace
from pets.errors import InvalidInputError

N = 100_000
REJECT_BELOW = 1e-6


@pytest.mark.parametrize("scale", [Fraction(1, 3), Fraction(1), Fraction(7, 3), Fraction(25)])
def test_discrete_laplace_matches_pmf(scale: Fraction, stats: dict) -> None:
    x = discrete_laplace(scale, N, SeededRandom(f"laplace {scale}"))
    assert x.dtype == np.int64 and x.shape == (N,)
    assert stats["chi_square_p"](x, stats["laplace_pmf"](float(scale))) > REJECT_BELOW


@pytest.mark.parametrize("sigma2", [Fraction(1, 4), Fraction(1), Fraction(10), Fraction(2000, 3)])
def test_discrete_gaussian_matches_pmf(sigma2: Fraction, stats: dict) -> None:
    x = discrete_gaussian(sigma2, N, SeededRandom(f"gaussian {sigma2}"))
    assert x.dtype == np.int64 and x.shape == (N,)
    assert stats["chi_square_p"](x, stats["gaussian_pmf"](float(sigma2))) > REJECT_BELOW


def test_the_test_rejects_a_wrong_scale(stats: dict) -> None:
    """The chi-square test has power: 10% off in scale is rejected."""
    x = discrete_gaussian(Fraction(10), N, SeededRandom("power"))
    assert stats["chi_square_p"](x, stats["gaussian_pmf"](11.0)) < REJECT_BELOW
    y = discrete_laplace(Fraction(7, 3), N, SeededRandom("power"))
    assert stats["chi_square_p"](y, stats["laplace_pmf"](7 / 3 * 1.1)) < REJECT_BELOW


def test_large_scales_have_the_right_spread() -> None:
    """Scales beyond the fast paths (object arithmetic): mean and variance match."""
    n = 20_000
    b = Fraction(10**12, 3)
    x = discrete_laplace(b, n, SeededRandom("big laplace")).astype(float)
    assert abs(x.mean()) < 5 * math.sqrt(2) * float(b) / math.sqrt(n)
    assert abs(x.std() / (math.sqrt(2) * float(b)) - 1) < 0.05
    s2 = Fraction(10**14, 7)
    y = discrete_gaussian(s2, n, SeededRandom("big gaussian")).astype(float)
    assert abs(y.var() / float(s2) - 1) < 0.05


def test_seeded_stream_is_reproducible_and_system_stream_is_not() -> None:
    a = discrete_gaussian(16, 50, SeededRandom(b"seed"))
    b = discrete_gaussian(16, 50, SeededRandom(b"seed"))
    c = discrete_gaussian(16, 50, SeededRandom(b"other"))
    assert a.tolist() == b.tolist() != c.tolist()
    assert discrete_gaussian(10**6, 50).tolist() != discrete_gaussian(10**6, 50).tolist()


def test_zero_size_and_exact_scale_inputs() -> None:
    assert discrete_laplace(1, 0).shape == (0,)
    assert discrete_gaussian("0.25", 3, SeededRandom("s")).shape == (3,)


@pytest.mark.parametrize("bad", [0, -1, "x", float("nan"), float("inf"), True, None])
def test_bad_scales_are_rejected(bad: object) -> None:
    with pytest.raises(InvalidInputError):
        discrete_laplace(bad, 3)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        discrete_gaussian(bad, 3)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [-1, 1.5, True])
def test_bad_sizes_are_rejected(size: object) -> None:
    with pytest.raises(InvalidInputError):
        discrete_laplace(1, size)  # type: ignore[arg-type]


def test_too_large_scale_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="too large"):
        discrete_laplace(1 << 63, 1)


def test_bernoulli_exp_frequencies() -> None:
    """Bernoulli(exp(-γ)) for γ = 1 and a rational γ > 1 (integer part + fraction)."""
    n = 200_000
    rng = SeededRandom("bern")
    hits = samplers.bernoulli_exp_minus_one(n, rng).mean()
    assert abs(hits - math.exp(-1)) < 6 * math.sqrt(math.exp(-1) * (1 - math.exp(-1)) / n)
    whole = np.full(n, 2, dtype=np.int64)
    frac = samplers._ratios(np.full(n, 1, dtype=np.uint64), 3)  # γ = 2 + 1/3
    p = math.exp(-7 / 3)
    got = samplers._bernoulli_exp(rng, whole, frac).mean()
    assert abs(got - p) < 6 * math.sqrt(p * (1 - p) / n)


def test_bernoulli_prefix_is_exact_including_ties() -> None:
    """r/D vs a forced 64-bit tie: the remainder decides, with fresh bits."""
    r, d = 1, 3  # prefix of 1/3 is 0x5555...5, remainder 1
    ratios = samplers._ratios_big(np.array([r], dtype=object), d)
    assert int(ratios.prefix[0]) == (1 << 64) // 3 and int(ratios.rem[0]) == (1 << 64) % 3

    tie_word = int(ratios.prefix[0]).to_bytes(8, "little")

    def stream(next_byte: int) -> samplers.RandomBytes:
        calls = iter([tie_word, bytes([next_byte])])
        return lambda n: next(calls)[:n]

    # after the tie, python_below(3) reads the top 2 bits of a byte: 0 < 1 succeeds, 1 fails
    assert samplers._bernoulli(stream(0), ratios).tolist() == [True]
    assert samplers._bernoulli(stream(0x40), ratios).tolist() == [False]


def test_uniform_helpers_are_unbiased_at_the_edges() -> None:
    rng = SeededRandom("below")
    assert set(samplers._below(rng, 3, 3000).tolist()) == {0, 1, 2}
    assert samplers._below(rng, 1, 5).tolist() == [0] * 5
    assert samplers._below(rng, 1 << 64, 4).dtype == np.uint64
    bounds = np.array([1, 2, 3, (1 << 64) - 1], dtype=np.uint64)
    got = samplers._below_each(rng, bounds)
    assert (got < bounds).all() and got[0] == 0
    assert all(0 <= python_below(rng, 10**30) < 10**30 for _ in range(100))
    with pytest.raises(InvalidInputError):
        python_below(rng, 0)
    with pytest.raises(InvalidInputError):
        uint64s(lambda n: b"short", 2)


def _words(*words: int) -> samplers.RandomBytes:
    """A random source that returns these uint64 words, one per read, in order."""
    queue = [np.array([w], dtype=np.uint64).tobytes() for w in words]

    def read(n: int) -> bytes:
        assert n == 8, "one word per read"
        return queue.pop(0)

    return read


@pytest.mark.parametrize("bound", [3, 10, (1 << 63) + 1, (1 << 64) - 1])
def test_words_in_the_biased_tail_are_redrawn(bound: int) -> None:
    """Known answers: a word >= 2^64 - (2^64 mod b) is rejected and a fresh word drawn.

    Without the rejection step the first word would give ``limit % b`` (0)
    or ``(2^64 - 1) % b``, the over-weighted low residues.
    """
    limit = (1 << 64) - (1 << 64) % bound
    assert limit < 1 << 64
    expected = 7 % bound
    for sampler in (
        lambda rng: int(samplers._below(rng, bound, 1)[0]),
        lambda rng: int(samplers._below_each(rng, np.array([bound], dtype=np.uint64))[0]),
    ):
        assert sampler(_words(limit, (1 << 64) - 1, 7)) == expected
        assert sampler(_words(limit - 1)) == (limit - 1) % bound  # just below: kept


def test_python_below_redraws_values_past_the_bound() -> None:
    """bound 3 reads the top 2 bits of a byte: 3 (0xC0) is redrawn, then 1 (0x40)."""
    reads = iter([b"\xc0", b"\xc0", b"\x40"])
    assert python_below(lambda n: next(reads), 3) == 1


# -- pinned against OpenDP ---------------------------------------------------------


def _opendp_samples(kind: str, scale: float, n: int) -> np.ndarray:
    dp = pytest.importorskip("opendp.prelude")
    dp.enable_features("contrib")
    space = dp.vector_domain(dp.atom_domain(T=int)), dp.l2_distance(T=int)
    if kind == "laplace":
        space = dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int)
        m = dp.m.make_laplace(*space, scale=scale)
    else:
        m = dp.m.make_gaussian(*space, scale=scale)
    return np.array(m([0] * n), dtype=np.int64)


@pytest.mark.parametrize(("kind", "scale"), [("laplace", 4.0), ("gaussian", 4.0)])
def test_opendp_samples_fit_the_same_pmf(kind: str, scale: float, stats: dict) -> None:
    """OpenDP's exact samplers (unseedable) pass the same test as ours, same pmf."""
    pmf = stats["laplace_pmf"](scale) if kind == "laplace" else stats["gaussian_pmf"](scale**2)
    theirs = _opendp_samples(kind, scale, 50_000)
    assert stats["chi_square_p"](theirs, pmf) > REJECT_BELOW
    ours = (
        discrete_laplace(Fraction(scale), 50_000, SeededRandom("pin"))
        if kind == "laplace"
        else discrete_gaussian(Fraction(scale) ** 2, 50_000, SeededRandom("pin"))
    )
    assert stats["chi_square_p"](ours, pmf) > REJECT_BELOW


def test_system_random_sizes() -> None:
    from pets.dp.randomness import system_random

    assert len(system_random(0)) == 0 and len(system_random(17)) == 17
    big = system_random(1 << 16)
    assert len(big) == 1 << 16 and big != system_random(1 << 16)
    with pytest.raises(InvalidInputError):
        system_random(-1)
