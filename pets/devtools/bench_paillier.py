"""Quick Paillier metrics: packed and pooled encryption against naive phe, at d = 10^4.

Both sides are measured in the same run, on one 2048-bit key generated once
(key generation is inside the time budget, about 10 s in all on 2 cores).

* naive phe: one ``EncryptedNumber`` per value via ``public_key.encrypt(int)``.
  At about 10 ms per value, 10^4 values would take minutes, so it is timed on
  a subset of :data:`PHE_SUBSET` values and reported per value (encryption cost
  does not depend on the value, so the rate scales linearly).
* packed: :func:`pets.paillier.encrypt_vector` on the whole vector, serial.
* pool online: the same with a precomputed :class:`RandomnessPool`; only the
  online part (validate, pack, one multiplication per plaintext) is timed, the
  pool's precomputation is not (it happens while a holder is idle).
* processes: ``encrypt_vector(processes=2)`` including worker start-up.

Layout: values in ``[0, 2^20)`` with ``max_holders = 1000`` (30-bit slots, 66
per 2048-bit plaintext). The benchmark values come from a seeded numpy
generator: they are test data, not secrets.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from pets.devtools.bench import best_time
from pets.paillier import (
    Accumulator,
    PackingLayout,
    RandomnessPool,
    ciphertexts_to_bytes,
    decrypt_vector,
    encrypt_vector,
    generate_keypair,
)

D = 10_000
PHE_SUBSET = 16
KEY_BITS = 2048
LO, HI, MAX_HOLDERS = 0, 2**20 - 1, 1000
FOLD_HOLDERS = 8


def _once(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def quick(d: int = D) -> dict[str, float]:
    """Speedups of packed / pooled encryption over naive phe, plus raw throughputs."""
    t0 = time.perf_counter()
    pub, priv = generate_keypair(KEY_BITS)
    t_keygen = time.perf_counter() - t0
    layout = PackingLayout.for_key(pub, lo=LO, hi=HI, max_holders=MAX_HOLDERS, length=d)
    values = np.random.default_rng(0).integers(LO, HI + 1, d, dtype=np.int64)
    subset = [int(v) for v in values[:PHE_SUBSET]]

    # Interleave naive phe and packed runs and keep each side's best, so drift
    # in machine load hits both alike.
    t_phe = t_packed = float("inf")
    for _ in range(2):
        t_phe = min(t_phe, _once(lambda: [pub.encrypt(v) for v in subset]) / PHE_SUBSET)
        t_packed = min(t_packed, _once(lambda: encrypt_vector(pub, layout, values, processes=1)))

    pool = RandomnessPool(pub, layout.num_plaintexts)
    t_online = _once(lambda: encrypt_vector(pub, layout, values, pool=pool))

    t_procs = _once(lambda: encrypt_vector(pub, layout, values, processes=2))

    # Leader: fold FOLD_HOLDERS serialised contributions in 1 MB chunks.
    cts = encrypt_vector(pub, layout, values, processes=2)
    wire = ciphertexts_to_bytes(pub, cts)

    def fold() -> Accumulator:
        acc = Accumulator(pub, layout.num_plaintexts, max_contributions=MAX_HOLDERS)
        for _ in range(FOLD_HOLDERS):
            contribution = acc.begin()
            for i in range(0, len(wire), 1 << 20):
                contribution.feed(wire[i : i + (1 << 20)])
            acc.add(contribution)
        return acc

    t_fold = best_time(fold, repeat=3)
    aggregate_cts = fold().ciphertexts()

    # Decryption: packed CRT vs phe per value (subset of phe EncryptedNumbers).
    t_dec = best_time(lambda: decrypt_vector(priv, layout, aggregate_cts, FOLD_HOLDERS), repeat=2)
    enc_subset = [pub.encrypt(v) for v in subset]
    t_phe_dec = best_time(lambda: [priv.decrypt(e) for e in enc_subset], repeat=3) / PHE_SUBSET

    phe_rate = 1.0 / t_phe
    return {
        "paillier_keygen_s": t_keygen,
        "paillier_slots_per_plaintext": float(layout.slots_per_plaintext),
        "paillier_phe_encrypt_values_per_s": phe_rate,
        "paillier_packed_encrypt_values_per_s": d / t_packed,
        "paillier_pool_online_values_per_s": d / t_online,
        "paillier_procs_encrypt_values_per_s": d / t_procs,
        "paillier_packed_vs_phe_speedup": (d / t_packed) / phe_rate,
        "paillier_pool_online_speedup": (d / t_online) / phe_rate,
        "paillier_procs_vs_phe_speedup": (d / t_procs) / phe_rate,
        "paillier_fold_ciphertexts_per_s": FOLD_HOLDERS * layout.num_plaintexts / t_fold,
        "paillier_fold_values_per_s": FOLD_HOLDERS * d / t_fold,
        "paillier_phe_decrypt_values_per_s": 1.0 / t_phe_dec,
        "paillier_packed_decrypt_values_per_s": d / t_dec,
        "paillier_packed_decrypt_speedup": (d / t_dec) * t_phe_dec,
    }
