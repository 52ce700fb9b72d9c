"""Many holders over a few connections: the driver of the replica load test (issue 14, item 5).

A real node is one process with its own certificate, and with mutual TLS a
connection *is* one holder's identity, so 10^5 real holders would mean 10^5
TLS handshakes and processes. The load test measures the servers, not that,
so this driver runs an ``--insecure`` deployment's holders the way the servers
see them: each contribution is made exactly as a node makes it
(:meth:`pets.protocols.additive.AdditiveProtocol.contribute_ring`: masked
vector, one sealed seed per helper, digest) and sent as one ``ContributeOne``
call naming its holder in the insecure identity header, over a few channels
to every leader replica (``round_robin``, :mod:`pets.transport.targets`). A
call that fails with a retryable status is re-sent unchanged (the leader
treats a re-send as idempotent), so an overloaded or restarting replica costs
time, not correctness.

Run as ``python -m pets.devtools.load_holders`` it reads one JSON job from
stdin (``leader``, ``announcement`` in hex, ``prefix``, ``first``, ``count``,
optional ``channels`` and ``concurrency``) and prints one JSON line: accepted,
newly accepted, wall and CPU seconds. Holder ``i`` contributes
:func:`pets.devtools.bench_service.holder_vector` ``(i, vector_length)``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import grpc
import numpy as np

from pets import seal
from pets.devtools.bench_service import holder_vector
from pets.protocols.additive import AdditiveProtocol
from pets.runtime.backoff import Backoff
from pets.transport import wire
from pets.transport.targets import open_channel
from pets.transport.wire import INSECURE_IDENTITY_HEADER
from pets.v1 import aggregation_pb2 as pb
from pets.v1 import aggregation_pb2_grpc as pb_grpc

RETRY_CODES = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
)
CALL_TIMEOUT_SECONDS = 60.0
GIVE_UP_SECONDS = 600.0  # a holder stops retrying after this (or the query's deadline)
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", wire.MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", wire.MAX_MESSAGE_BYTES),
]


@dataclass(frozen=True)
class LoadResult:
    accepted: int  # contributions acknowledged
    newly_accepted: int  # of those, first acknowledgements (not re-sends)
    retries: int
    seconds: float
    cpu_seconds: float


async def contribute_many(
    leader: str,
    ann: pb.QueryAnnouncement,
    names: Sequence[str],
    vector_for: Callable[[int], np.ndarray],
    *,
    channels: int = 2,
    concurrency: int = 64,
) -> LoadResult:
    """Holder ``names[i]`` contributes ``vector_for(i)`` to ``ann``, at most
    ``concurrency`` in flight over ``channels`` insecure channels to ``leader``
    (one address or several: the leader's replicas)."""
    started, cpu = time.perf_counter(), time.process_time()
    keys = [seal.load_public_key(bytes(k.seal_public_key)) for k in ann.helper_keys]
    chans = [open_channel(leader, None, None, CHANNEL_OPTIONS) for _ in range(channels)]
    stubs = [pb_grpc.LeaderStub(c) for c in chans]
    protocol = AdditiveProtocol()
    retries = 0
    give_up = min(ann.deadline_unix, time.time() + GIVE_UP_SECONDS)

    async def one(i: int, name: str) -> bool:
        nonlocal retries

        def sealer(a: pb.QueryAnnouncement, seeds: Sequence[bytes]) -> list[pb.SealedSeed]:
            return [
                pb.SealedSeed(
                    helper=helper,
                    sealed=seal.seal(
                        s, key, seal.SeedContext(a.query_id, bytes(a.fingerprint), name, helper)
                    ),
                )
                for helper, key, s in zip(a.helpers, keys, seeds, strict=True)
            ]

        # Made once: a re-send must be the same contribution (same digest).
        made = await protocol.contribute_ring(ann, vector_for(i), seed_key=None, sealer=sealer)
        chunk = pb.ContributionChunk(
            header=pb.ContributionHeader(
                query_id=ann.query_id,
                payload_bytes=len(made.payload),
                contribution_digest=made.digest,
                sealed_seeds=made.sealed_seeds,
            ),
            data=bytes(made.payload),
        )
        metadata = ((INSECURE_IDENTITY_HEADER, f"holder/{name}"),)
        backoff = Backoff(0.2, 5.0, deadline=give_up, clock=time.time)
        while True:
            try:
                ack = await stubs[i % channels].ContributeOne(
                    chunk, metadata=metadata, timeout=CALL_TIMEOUT_SECONDS
                )
                return bool(ack.newly_accepted)
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in RETRY_CODES or backoff.exhausted():
                    raise
                retries += 1
                await backoff.sleep()

    # `concurrency` workers take the holders in turn: memory stays flat however many.
    todo = iter(enumerate(names))

    async def worker() -> tuple[int, int]:
        done = newly = 0
        for i, name in todo:
            newly += await one(i, name)
            done += 1
        return done, newly

    try:
        counts = await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        for c in chans:
            await c.close()
    return LoadResult(
        accepted=sum(d for d, _ in counts),
        newly_accepted=sum(n for _, n in counts),
        retries=retries,
        seconds=time.perf_counter() - started,
        cpu_seconds=time.process_time() - cpu,
    )


def main() -> None:
    job = json.loads(sys.stdin.readline())
    ann = pb.QueryAnnouncement.FromString(bytes.fromhex(job["announcement"]))
    first, count = int(job["first"]), int(job["count"])
    names = [f"{job['prefix']}-{first + i:06d}" for i in range(count)]
    result = asyncio.run(
        contribute_many(
            job["leader"],
            ann,
            names,
            lambda i: holder_vector(first + i, ann.vector_length),
            channels=int(job.get("channels", 2)),
            concurrency=int(job.get("concurrency", 64)),
        )
    )
    print(json.dumps(asdict(result)), flush=True)


if __name__ == "__main__":
    main()
