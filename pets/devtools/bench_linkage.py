"""Quick linkage metrics (issue 16): per-record costs and the in-process 10^4 × 10^4 core.

Everything here is the pure core of :mod:`pets.linkage`, in one process, no
network: what the service will distribute over the holder, the leader and the
helper. Times are ``time.perf_counter`` wall times; per-record figures are
the best of a few runs divided by the batch size.

* ``linkage_per_record_us_holder``: blind (shuffle, RFC 9380 hash-to-curve,
  one multiplication) plus finish (checks, one multiplication, pseudonym,
  second shuffle), per record;
* ``linkage_per_record_us_server``: one server's key application (decode,
  check, one multiplication, encode), per record; ``..._verified`` adds the
  batched DLEQ proof, ``linkage_per_record_us_holder_verify`` is the holder's
  check of both servers' proofs;
* ``linkage_h2c_us``, ``linkage_scalar_mul_us``, ``linkage_point_decode_us``:
  the per-point primitives (RFC 9380 hash_to_curve through the gmpy2 SSWU map,
  libsecp256k1's constant-time ``ecmult_const`` multiplication by a secret
  scalar, :func:`pets.linkage.points.multiply_secret`, and strict decoding),
  to show where the time goes; ``linkage_scalar_mul_variable_us`` is coincurve's
  variable-time ``PublicKey.multiply``, which pets does not use for secrets,
  for comparison;
* ``linkage_core_10k_seconds``: two holders of 10^4 records (half shared):
  blind, helper, leader, unblind, pseudonyms, join, on one thread;
  ``linkage_core_10k_seconds_2_processes``
  runs each stage for both holders at once on two processes, a proxy for
  holders and servers running concurrently on 2 cores end to end;
  ``linkage_join_10k_seconds`` is the join alone. The same pipeline with the
  multiplications on two threads (``core_seconds(workers=2)``; coincurve
  releases the GIL) is measured by ``benchmarks/test_bench_linkage.py``
  (``make bench``), not here: it sits between the two figures above and kept
  ``pets bench --quick`` 3 s longer.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from coincurve import PublicKey

from pets.devtools.bench import best_time
from pets.linkage import (
    BlindState,
    KeyShare,
    LinkageDomain,
    blind,
    derive_key_share,
    evaluate,
    finish,
    match,
    verify_evaluations,
)
from pets.linkage.holder import hash_to_point
from pets.linkage.local import link_in_process
from pets.linkage.points import decode_batch, multiply_secret

DOMAIN = LinkageDomain("bench-ids")
QUERY = "bench-query"


def _ids(start: int, n: int) -> list[bytes]:
    return [b"%012d" % i for i in range(start, start + n)]


def per_record(n: int = 1000) -> dict[str, float]:
    """Per-record holder and server costs on batches of ``n``."""
    leader = derive_key_share(os.urandom(32), "leader", DOMAIN, QUERY)
    helper = derive_key_share(os.urandom(32), "helper", DOMAIN, QUERY)
    ids = _ids(0, n)
    batch, state = blind(ids, DOMAIN)
    mid = evaluate(batch, helper, max_rows=n, prove=True, context=b"h")
    out = evaluate(mid.outputs, leader, max_rows=n, prove=True, context=b"l")
    assert mid.proof is not None and out.proof is not None
    t_blind = best_time(lambda: blind(ids, DOMAIN), repeat=3)
    t_finish = best_time(lambda: finish(out.outputs, state, DOMAIN, QUERY), repeat=3)
    t_server = best_time(lambda: evaluate(batch, helper, max_rows=n), repeat=3)
    t_verified = best_time(
        lambda: evaluate(batch, helper, max_rows=n, prove=True, context=b"h"), repeat=3
    )
    t_verify = best_time(
        lambda: verify_evaluations(
            batch,
            mid.outputs,
            out.outputs,
            helper_public_key=helper.public_key,
            helper_proof=mid.proof or b"",
            helper_context=b"h",
            leader_public_key=leader.public_key,
            leader_proof=out.proof or b"",
            leader_context=b"l",
        ),
        repeat=3,
    )
    sample = ids[:200]
    t_h2c = best_time(lambda: [hash_to_point(i, DOMAIN.dst) for i in sample], repeat=3)
    key = helper.scalar_bytes
    points = decode_batch(batch, n)
    t_mul = best_time(lambda: [multiply_secret(p, key) for p in points], repeat=3)
    t_mul_variable = best_time(lambda: [p.multiply(key).format() for p in points], repeat=3)
    t_decode = best_time(lambda: [PublicKey(batch[i : i + 33]) for i in range(0, 33 * n, 33)])
    us = 1e6
    return {
        "linkage_per_record_us_holder": (t_blind + t_finish) / n * us,
        "linkage_per_record_us_server": t_server / n * us,
        "linkage_per_record_us_server_verified": t_verified / n * us,
        "linkage_per_record_us_holder_verify": t_verify / n * us,
        "linkage_h2c_us": t_h2c / len(sample) * us,
        "linkage_scalar_mul_us": t_mul / n * us,
        "linkage_scalar_mul_variable_us": t_mul_variable / n * us,
        "linkage_point_decode_us": t_decode / n * us,
    }


def core_seconds(n: int = 10_000, *, workers: int = 1) -> float:
    """Wall time of the in-process pipeline for two holders of ``n`` records, half shared."""
    leader = derive_key_share(os.urandom(32), "leader", DOMAIN, QUERY)
    helper = derive_key_share(os.urandom(32), "helper", DOMAIN, QUERY)
    a, b = _ids(0, n), _ids(n // 2, n)
    start = time.perf_counter()
    run = link_in_process(
        [a, b], DOMAIN, QUERY, leader=leader, helper=helper, max_rows=n, workers=workers
    )
    elapsed = time.perf_counter() - start
    if run.matched.size != n - n // 2:
        raise AssertionError("the benchmark's join found the wrong intersection")
    return elapsed


def _blind_task(args: tuple[list[bytes], LinkageDomain]) -> tuple[bytes, BlindState]:
    ids, domain = args
    return blind(ids, domain)


def _evaluate_task(args: tuple[bytes, KeyShare, int]) -> bytes:
    batch, key, max_rows = args
    return evaluate(batch, key, max_rows=max_rows).outputs


def _finish_task(args: tuple[bytes, BlindState, LinkageDomain, str]) -> bytes:
    out, state, domain, query = args
    return finish(out, state, domain, query).pseudonyms


def core_seconds_processes(n: int = 10_000, *, processes: int = 2) -> float:
    """The pipeline of :func:`core_seconds` with the two holders' work on two processes.

    Each stage (blind, helper, leader, finish) runs for both holders at once,
    as separate holder and server processes would; then the join. Pool
    start-up is included. A proxy for what 2 cores can do end to end.
    """
    leader = derive_key_share(os.urandom(32), "leader", DOMAIN, QUERY)
    helper = derive_key_share(os.urandom(32), "helper", DOMAIN, QUERY)
    holders = [_ids(0, n), _ids(n // 2, n)]
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=processes, mp_context=get_context("fork")) as pool:
        blinded = list(pool.map(_blind_task, [(ids, DOMAIN) for ids in holders]))
        mid = list(pool.map(_evaluate_task, [(b, helper, n) for b, _ in blinded]))
        out = list(pool.map(_evaluate_task, [(m, leader, n) for m in mid]))
        uploads = list(
            pool.map(
                _finish_task,
                [(o, state, DOMAIN, QUERY) for o, (_, state) in zip(out, blinded, strict=True)],
            )
        )
    matched = match(uploads)
    elapsed = time.perf_counter() - start
    if matched.size != n - n // 2:
        raise AssertionError("the benchmark's join found the wrong intersection")
    return elapsed


def join_seconds(n: int = 10_000) -> float:
    shared = os.urandom(16 * (n // 2))
    a = shared + os.urandom(16 * (n - n // 2))
    b = os.urandom(16 * (n - n // 2)) + shared
    return best_time(lambda: match([a, b]), repeat=5)


def quick() -> dict[str, float]:
    """All linkage quick metrics (about 8 s on 2 cores)."""
    metrics = per_record()
    metrics["linkage_core_10k_seconds"] = core_seconds()
    metrics["linkage_core_10k_seconds_2_processes"] = core_seconds_processes()
    metrics["linkage_join_10k_seconds"] = join_seconds()
    return metrics


if __name__ == "__main__":
    for name, value in quick().items():
        print(f"{name:45s} {value:12.3f}")
