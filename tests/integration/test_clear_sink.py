"""The e2e benchmark's clear sink adds streams chunk by chunk and sums them exactly.

A real sink process with mutual TLS, two holders with their own certificates,
vectors longer than one ~1 MB chunk (added chunk by chunk as they arrive),
wrap-around modulo 2^64, and the reset after ``Take``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from pets.client.config import Endpoints
from pets.client.connect import Connector
from pets.devtools.bench_service import ClearHolder, start_sink
from pets.devtools.datagen import generate
from pets.devtools.localcluster import LocalCluster
from pets.identity.certificates import Role
from pets.query import Schema
from pets.transport import wire

LENGTH = wire.CHUNK_BYTES // 8 + 3  # two chunks, the second short


def test_sink_sums_streams_modulo_2_64(tmp_path: Path) -> None:
    schema = Schema.from_toml(generate("hospitals", 1, 10, 1).schema_toml)
    cluster = LocalCluster(workdir=tmp_path, schema=schema)
    cluster.prepare()
    for name in ("h1", "h2"):
        cluster.issue(Role.HOLDER, name)
    sink = start_sink(cluster)
    rng = np.random.default_rng(5)
    vectors = [rng.integers(0, 2**64, LENGTH, dtype=np.uint64) for _ in range(2)]

    async def run() -> tuple[np.ndarray, np.ndarray]:
        holders = [
            ClearHolder(
                Connector(
                    Endpoints(name, sink.address, {}, cluster.tls(name), cluster.schema_path),
                    "holder",
                ),
                sink.address,
            )
            for name in ("h1", "h2")
        ]
        try:
            await asyncio.gather(*(h.send(v) for h, v in zip(holders, vectors, strict=True)))
            first = await holders[0].take(LENGTH)
            await holders[1].send(vectors[1])  # a new round starts from zero
            second = await holders[1].take(LENGTH)
        finally:
            for h in holders:
                await h.close()
        return first, second

    try:
        first, second = asyncio.run(run())
    finally:
        sink.stop()
    assert np.array_equal(first, vectors[0] + vectors[1])  # uint64 adds wrap, as the ring does
    assert np.array_equal(second, vectors[1])
