"""Each protocol's DP hook: a server's noise lands in its share and decodes exactly.

The additive leader or helper adds its noise in Z_2^64; the Paillier leader
multiplies in an encryption of its noise, packed as ``z + W`` into headroom
the layout reserves (``pets.protocols.paillier.noise_holders``). The analyst's
decoded noisy total must be exactly the true sum plus the noise, including
the extreme draws ``±W``.
"""

from __future__ import annotations

import functools
import time

import numpy as np

from pets.dp import SeededRandom, decode_noisy, noise_plan
from pets.paillier import generate_keypair, public_key_to_bytes
from pets.protocols import by_name
from pets.protocols.paillier import encrypt_contribution, noise_bound, noise_holders
from pets.query import Query, Schema
from pets.query import compile as compile_query
from pets.transport import wire
from pets.v1 import aggregation_pb2 as pb

SCHEMA = Schema.from_toml('[datasets.v]\nkind = "vector"\nlength = 5\nlo = -50\nhi = 50\n')
PLAN = compile_query(Query.parse("vector_sum() from v dp rho 0.5"), SCHEMA)
VECTORS = [np.array([1, -2, 3, 50, -50]), np.array([0, 7, -7, 1, 2]), np.array([5, 5, 5, 5, 5])]


def test_additive_noise_is_added_in_the_ring() -> None:
    protocol = by_name("additive")
    share = np.array([0, 1, 2**64 - 1, 2**63, 5], dtype=np.uint64)
    noise = np.array([-1, -2, 1, 0, 7], dtype=np.int64)
    spec = pb.QuerySpec(protocol=pb.PROTOCOL_ADDITIVE)
    want = [2**64 - 1, 2**64 - 1, 0, 2**63, 12]
    # A read-only share (bytes): the sum is written into the noise and returned as its view.
    noisy = np.frombuffer(protocol.add_noise(spec, PLAN, share.tobytes(), noise), dtype="<u8")
    assert noisy.tolist() == want
    # The server's own final aggregate (a writable view): the sum is written into it,
    # and the noise is left as it was (it is zeroed after the release, not read again).
    own, z = share.copy(), np.array([-1, -2, 1, 0, 7], dtype=np.int64)
    out = protocol.add_noise(spec, PLAN, wire.vector_view(own), z)
    assert np.frombuffer(out, dtype="<u8").tolist() == want == own.tolist()
    assert z.tolist() == [-1, -2, 1, 0, 7]


@functools.cache
def _paillier_key() -> object:
    return generate_keypair(2048)[1]


def _paillier_release(noise: np.ndarray) -> list[float]:
    private = _paillier_key()
    spec = pb.QuerySpec(
        protocol=pb.PROTOCOL_PAILLIER,
        paillier_public_key=public_key_to_bytes(private.public_key),  # type: ignore[attr-defined]
        max_holders=4,
    )
    protocol = by_name("paillier")
    length = protocol.admit(spec, PLAN, 1)
    ann = pb.QueryAnnouncement(
        query_id="q-00000000000000dd",
        spec=spec,
        vector_length=length,
        fingerprint=PLAN.fingerprint(),
        deadline_unix=time.time() + 60,
    )
    aggregate = protocol.running_aggregate(spec, length, PLAN)
    for v in VECTORS:
        aggregate.add(aggregate.validate(encrypt_contribution(ann, PLAN, v)))
    share = protocol.add_noise(spec, PLAN, aggregate.to_bytes(), noise)
    status = pb.QueryStatus(state=pb.QUERY_STATE_READY, spec=spec, vector_length=length)
    combiner = protocol.combiner(status, PLAN, private)
    header = pb.AggregateHeader(contributors=len(VECTORS), payload_bytes=len(share))
    take = combiner.sink("leader", header)
    for chunk in wire.chunks(share, 97):
        take(chunk)
    total = combiner.total([header])
    release = decode_noisy(
        PLAN,
        noise_plan(PLAN),
        total,
        len(VECTORS),
        1,
        modulus=protocol.noise_modulus(status),
    )
    assert release.dp["servers"] == 1 and release.dp["mechanism"] == "discrete_gaussian"
    return list(release.result.rows[0]["vector"])


def test_paillier_leader_noise_decodes_exactly_even_at_the_bound() -> None:
    assert noise_holders(PLAN) > 0
    w = noise_bound(PLAN)
    exact = np.sum(VECTORS, axis=0)
    drawn = noise_plan(PLAN).sample(SeededRandom(b"paillier-dp"))
    for noise in (drawn, np.array([-w, w, 0, w, -w], dtype=np.int64)):
        scale = PLAN.bounds[0].scale  # holders' vectors are fixed point
        assert _paillier_release(noise) == [int(x) / scale for x in exact + noise]


def test_without_dp_the_paillier_layout_is_unchanged() -> None:
    plain = compile_query(Query.parse("vector_sum() from v"), SCHEMA)
    assert noise_holders(plain) == 0 and noise_bound(plain) == 0
