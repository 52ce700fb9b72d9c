"""Encryption paths: injected r, fresh randomness, pool (single use), process pool."""

from __future__ import annotations

import copy
import pickle
from concurrent.futures import ThreadPoolExecutor

import gmpy2
import numpy as np
import phe
import pytest

from pets.errors import InvalidInputError, NotReadyError
from pets.paillier import encryption
from pets.paillier.decryption import decrypt_packed, decrypt_vector
from pets.paillier.encryption import encrypt_packed, encrypt_vector, raw_encrypt
from pets.paillier.keys import generate_keypair
from pets.paillier.packing import PackingLayout, pack
from pets.paillier.pool import RandomnessPool


@pytest.fixture(scope="module")
def keypair() -> tuple[phe.PaillierPublicKey, phe.PaillierPrivateKey]:
    return generate_keypair(1024, allow_insecure_test_size=True)


@pytest.fixture(scope="module")
def layout(keypair) -> PackingLayout:
    # 1024-bit key, 30-bit slots: 31 per plaintext; 2000 values -> 65 plaintexts.
    return PackingLayout.for_key(keypair[0], lo=0, hi=2**20 - 1, max_holders=1000, length=2000)


def test_raw_encrypt_equals_phe(keypair) -> None:
    pub, priv = keypair
    rng = np.random.default_rng(7)
    for _ in range(5):
        m = int(rng.integers(0, 2**62)) * (1 << 900) % pub.n
        r = int(rng.integers(1, 2**62)) ** 16 % pub.n
        c = raw_encrypt(pub, m, r)
        assert c == pub.raw_encrypt(m, r_value=r)
        assert isinstance(c, int) and priv.raw_decrypt(c) == m
    # Plaintexts at the top of [0, n): phe takes its inverse shortcut there.
    for m in (pub.n - 1, pub.n - 12345, 0):
        assert raw_encrypt(pub, m, 5) == pub.raw_encrypt(m, r_value=5)


@pytest.mark.parametrize("m", [-1, "N", None, 1.0, True])
def test_bad_plaintexts(keypair, m) -> None:
    with pytest.raises(InvalidInputError):
        encrypt_packed(keypair[0], [m])


def test_plaintext_n_refused(keypair) -> None:
    with pytest.raises(InvalidInputError):
        encrypt_packed(keypair[0], [keypair[0].n])


@pytest.mark.parametrize("r", [0, -3, "r", 1.5])
def test_bad_r_values(keypair, r) -> None:
    pub, priv = keypair
    with pytest.raises(InvalidInputError) as info:
        encrypt_packed(pub, [1], r_values=[r])
    assert "r value" in str(info.value)
    with pytest.raises(InvalidInputError):
        encrypt_packed(pub, [1], r_values=[pub.n])
    with pytest.raises(InvalidInputError) as info:
        encrypt_packed(pub, [1], r_values=[priv.p * 7])  # not a unit
    assert str(priv.p) not in str(info.value)
    with pytest.raises(InvalidInputError):
        encrypt_packed(pub, [1, 2], r_values=[3])


def test_fresh_randomness_differs(keypair) -> None:
    pub, priv = keypair
    cts = encrypt_packed(pub, [42] * 20)
    assert len(set(cts)) == 20
    assert decrypt_packed(priv, cts) == [42] * 20


def test_pool_entries_single_use(keypair) -> None:
    pub, priv = keypair
    pool = RandomnessPool(pub, 6)
    assert len(pool) == 6 and pool.size == 6
    first = pool.take(2)
    rest = pool.take(4)
    assert len(pool) == 0
    assert len({int(x) for x in first + rest}) == 6
    with pytest.raises(NotReadyError):
        pool.take(1)
    assert pool.refill() == 6
    cts = encrypt_packed(pub, [1, 2, 3], pool=pool)
    assert len(pool) == 3 and decrypt_packed(priv, cts) == [1, 2, 3]
    with pytest.raises(NotReadyError):
        encrypt_packed(pub, [1, 2, 3, 4], pool=pool)
    assert len(pool) == 3  # a failed request takes nothing
    pool.refill(2)
    assert len(pool) == 5


def test_pool_entries_are_r_to_the_n(keypair) -> None:
    pub, priv = keypair
    pool = RandomnessPool(pub, 3)
    n2 = pub.nsquare
    for rn in pool.take(3):
        assert priv.raw_decrypt(int(rn)) == 0  # an encryption of 0
        assert gmpy2.gcd(rn, pub.n) == 1 and 0 < rn < n2


def test_pool_cannot_be_pickled_copied_or_shown(keypair) -> None:
    pub, _ = keypair
    pool = RandomnessPool(pub, 2)
    with pytest.raises(TypeError):
        pickle.dumps(pool)
    with pytest.raises(TypeError):
        copy.copy(pool)
    with pytest.raises(TypeError):
        copy.deepcopy(pool)
    with pytest.raises(TypeError):
        pool.__getstate__()
    assert repr(pool) == "<RandomnessPool available=2 size=2>"
    assert not hasattr(pool, "__dict__")


def test_pool_of_other_key_refused(keypair) -> None:
    other, _ = generate_keypair(512, allow_insecure_test_size=True)
    pool = RandomnessPool(other, 1)
    with pytest.raises(InvalidInputError):
        encrypt_packed(keypair[0], [1], pool=pool)
    assert len(pool) == 1
    with pytest.raises(InvalidInputError):
        encrypt_packed(keypair[0], [1], pool=pool, r_values=[3])


def test_encrypt_vector_serial_pool_and_decrypt(keypair, layout) -> None:
    pub, priv = keypair
    rng = np.random.default_rng(1)
    a = rng.integers(0, 2**20, layout.length, dtype=np.int64)
    b = rng.integers(0, 2**20, layout.length, dtype=np.int64)
    ca = encrypt_vector(pub, layout, a, processes=1)
    pool = RandomnessPool(pub, layout.num_plaintexts)
    cb = encrypt_vector(pub, layout, b, pool=pool)
    assert len(pool) == 0 and len(ca) == len(cb) == layout.num_plaintexts
    agg = [x * y % pub.nsquare for x, y in zip(ca, cb, strict=True)]
    assert decrypt_vector(priv, layout, agg, 2) == (a + b).tolist()


def test_process_pool_path_equals_serial_after_decryption(keypair, layout) -> None:
    pub, priv = keypair
    assert layout.num_plaintexts >= encryption.PROCESS_POOL_MIN_PLAINTEXTS
    values = np.random.default_rng(2).integers(0, 2**20, layout.length, dtype=np.int64)
    serial = encrypt_vector(pub, layout, values, processes=1)
    parallel = encrypt_vector(pub, layout, values, processes=2)
    assert len(parallel) == len(serial)
    # Same plaintexts, independent randomness (each worker uses its own secrets).
    assert not set(serial) & set(parallel)
    assert decrypt_packed(priv, parallel) == decrypt_packed(priv, serial) == pack(layout, values)
    assert decrypt_vector(priv, layout, parallel, 1) == values.tolist()


def test_process_workers_draw_independent_randomness(keypair) -> None:
    pub, priv = keypair
    # All-zero plaintexts: every ciphertext is r^n, so a repeated r would show.
    layout = PackingLayout.for_key(pub, lo=0, hi=0, max_holders=1, length=64 * 950)
    cts = encrypt_vector(pub, layout, np.zeros(layout.length, dtype=np.int64), processes=2)
    assert len(cts) >= encryption.PROCESS_POOL_MIN_PLAINTEXTS
    assert len(set(cts)) == len(cts)
    assert set(decrypt_packed(priv, cts)) == {0}


def test_executor_argument_is_used(keypair, layout) -> None:
    pub, priv = keypair
    values = np.arange(layout.length, dtype=np.int64)
    with ThreadPoolExecutor(2) as ex:
        cts = encrypt_vector(pub, layout, values, executor=ex)
    assert decrypt_vector(priv, layout, cts, 1) == values.tolist()


def test_small_vectors_stay_serial(keypair, monkeypatch) -> None:
    pub, priv = keypair
    layout = PackingLayout.for_key(pub, lo=0, hi=9, max_holders=2, length=10)

    def no_processes(*args, **kwargs):
        raise AssertionError("process pool used for a small vector")

    monkeypatch.setattr(encryption, "ProcessPoolExecutor", no_processes)
    cts = encrypt_vector(pub, layout, np.arange(10), processes=2)
    assert decrypt_vector(priv, layout, cts, 1) == list(range(10))


def test_out_of_bounds_rejected_before_encryption(keypair, layout, monkeypatch) -> None:
    pub, _ = keypair
    pool = RandomnessPool(pub, layout.num_plaintexts)

    def must_not_run(*args, **kwargs):
        raise AssertionError("encryption reached with invalid input")

    monkeypatch.setattr(encryption, "encrypt_packed", must_not_run)
    monkeypatch.setattr(encryption, "_gather", must_not_run)
    values = np.zeros(layout.length, dtype=np.int64)
    values[-1] = 2**20
    for kwargs in ({"processes": 1}, {"processes": 2}, {"pool": pool}):
        with pytest.raises(InvalidInputError):
            encrypt_vector(pub, layout, values, **kwargs)
    values[-1] = -1
    with pytest.raises(InvalidInputError):
        encrypt_vector(pub, layout, values, pool=pool)
    assert len(pool) == layout.num_plaintexts


def test_layout_for_bigger_key_refused(keypair) -> None:
    layout = PackingLayout(0, 10, 2, 3, 2048)
    with pytest.raises(InvalidInputError):
        encrypt_vector(keypair[0], layout, [1, 2, 3])
