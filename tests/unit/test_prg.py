"""PRG seed expansion: determinism, independence, buffers, known answers."""

from __future__ import annotations

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from pets import prg
from pets.errors import InvalidInputError


def test_aes_keystream_matches_independent_block_cipher() -> None:
    """First blocks equal AES-256-ECB of counters 0, 1 under the seed as key."""
    seed = bytes(range(32))
    ecb = Cipher(algorithms.AES(seed), modes.ECB()).encryptor()
    counters = (0).to_bytes(16, "big") + (1).to_bytes(16, "big")
    expected = np.frombuffer(ecb.update(counters) + ecb.finalize(), dtype="<u8")
    assert np.array_equal(prg.expand(seed, 4), expected)


def test_chacha20_differs_from_aes() -> None:
    seed = bytes(32)
    a = prg.expand(seed, 8, algorithm="aes-256-ctr")
    c = prg.expand(seed, 8, algorithm=prg.PrgAlgorithm.CHACHA20)
    assert not np.array_equal(a, c)


@given(st.binary(min_size=32, max_size=32), st.integers(0, 5000))
def test_deterministic_and_prefix_consistent(seed: bytes, n: int) -> None:
    full = prg.expand(seed, n)
    assert np.array_equal(full, prg.expand(seed, n))
    assert np.array_equal(prg.expand(seed, n // 2), full[: n // 2])


def test_writes_into_preallocated_buffer() -> None:
    out = np.full(1000, 7, dtype=np.uint64)
    got = prg.expand(b"\x01" * 32, 1000, out)
    assert got is out
    assert np.array_equal(out, prg.expand(b"\x01" * 32, 1000))


@pytest.mark.parametrize("algorithm", list(prg.PrgAlgorithm))
@pytest.mark.parametrize(
    "n", [0, 1, 2, prg.SMALL_EXPANSION_VALUES, prg.SMALL_EXPANSION_VALUES + 1, 3000]
)
def test_small_masks_equal_the_in_place_expansion(algorithm: prg.PrgAlgorithm, n: int) -> None:
    """Up to SMALL_EXPANSION_VALUES the mask comes from ``update``, above it (and into
    any ``out``) from ``update_into``: the same keystream either way, and writable."""
    seed = bytes(range(1, 33))
    fresh = prg.expand(seed, n, algorithm=algorithm)
    into = prg.expand(seed, n, np.empty(n, dtype=np.uint64), algorithm=algorithm)
    assert fresh.dtype == np.uint64 and fresh.shape == (n,) and fresh.flags.writeable
    assert np.array_equal(fresh, into)
    assert np.array_equal(fresh, prg.expand(seed, 3001, algorithm=algorithm)[:n])


def test_distinct_seeds_give_distinct_masks() -> None:
    a = prg.expand(prg.new_seed(), 64)
    b = prg.expand(prg.new_seed(), 64)
    assert not np.array_equal(a, b)


def test_mask_bytes_look_uniform() -> None:
    """A coarse sanity check: byte frequencies of 1 MB of keystream are flat."""
    mask = prg.expand(b"\x09" * 32, 1 << 17)
    counts = np.bincount(mask.view(np.uint8), minlength=256)
    expected = mask.nbytes / 256
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 400  # 255 degrees of freedom; p ~ 1e-8 at 400


@pytest.mark.parametrize("seed", [b"", b"\x00" * 31, b"\x00" * 33])
def test_rejects_wrong_seed_length(seed: bytes) -> None:
    with pytest.raises(InvalidInputError, match="32 bytes"):
        prg.expand(seed, 4)


@pytest.mark.parametrize(
    "out",
    [np.zeros(3, dtype=np.uint64), np.zeros(4, dtype=np.int64), np.zeros(8, dtype=np.uint64)[::2]],
)
def test_rejects_bad_output_buffer(out: np.ndarray) -> None:
    with pytest.raises(InvalidInputError, match="buffer"):
        prg.expand(b"\x00" * 32, 4, out)


def test_rejects_unknown_algorithm() -> None:
    with pytest.raises(ValueError):
        prg.expand(b"\x00" * 32, 4, algorithm="rc4")


def test_derived_seeds_are_deterministic_and_separated() -> None:
    key = b"\x11" * 32
    a = prg.derive_seed(key, b"q-1", b"helper-1")
    assert a == prg.derive_seed(key, b"q-1", b"helper-1")
    assert len(a) == 32
    others = {
        prg.derive_seed(key, b"q-2", b"helper-1"),
        prg.derive_seed(key, b"q-1", b"helper-2"),
        prg.derive_seed(key, b"q-1h", b"elper-1"),  # length prefixes keep these apart
        prg.derive_seed(b"\x12" * 32, b"q-1", b"helper-1"),
    }
    assert a not in others and len(others) == 4
    with pytest.raises(InvalidInputError):
        prg.derive_seed(b"short", b"q")
