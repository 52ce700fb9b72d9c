"""Each server serves Prometheus metrics (issue 15, item 20), scraped over HTTP.

The leader runs as a real process with ``[metrics] listen``; the test drives
a query through it (including a call the servicer aborts) and reads
``/metrics`` as Prometheus would. A helper is started in-process the same way.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pets.errors import NotFoundError
from pets.query import Query
from pets.server.app import Server
from pets.server.config import ServerConfig
from pets.v1 import aggregation_pb2 as pb

from .conftest import analyst, contribute, query_status

METRICS_TOML = '[metrics]\nlisten = "127.0.0.1:0"\n'


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample at ``http://127.0.0.1:port/metrics``, by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def metrics_port(log: Path) -> int:
    for line in log.read_text().splitlines():
        if line.startswith("{") and json.loads(line)["msg"] == "metrics listening":
            return int(json.loads(line)["port"])
    raise AssertionError("no 'metrics listening' line")


def test_the_leader_serves_its_metrics(make_cluster) -> None:  # type: ignore[no-untyped-def]
    cluster = make_cluster(leader_extra_toml=METRICS_TOML)
    port = metrics_port(cluster.processes["leader"].log)

    async def go() -> str:
        client = analyst(cluster)
        try:
            submitted = await client.submit(
                Query.parse("count() from hospitals"), deadline_seconds=60
            )
            for holder in ("org-1", "org-2"):
                await contribute(cluster, holder, submitted.query_id)
            with pytest.raises(NotFoundError):  # aborted by the servicer: NOT_FOUND
                await client.status("q-00000000000000ff")
            return submitted.query_id
        finally:
            await client.close()

    query_id = asyncio.run(go())
    rpc = "pets_rpcs_total"
    samples = scrape(port)
    assert samples[(rpc, (("code", "NOT_FOUND"), ("method", "pets.v1.Leader/GetQueryStatus")))] == 1
    assert samples[(rpc, (("code", "OK"), ("method", "pets.v1.Leader/SubmitQuery")))] == 1
    assert samples[("pets_contribution_seconds_count", ())] == 2
    assert samples[("pets_open_queries", ())] == 1
    assert samples[("pets_prepares_total", (("outcome", "accepted"),))] == 2
    commit = ("pets_store_seconds_count", (("operation", "commit_contributions"),))
    assert samples[commit] >= 1

    async def close() -> pb.QueryStatus:
        client = analyst(cluster)
        try:
            await client.close_query(query_id)
            return await client.wait(query_id)
        finally:
            await client.close()

    assert asyncio.run(close()).state == pb.QUERY_STATE_READY
    # The status follows the store: wait (bounded) for the finalisation to be counted.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        samples = scrape(port)
        if samples.get(("pets_finalisations_total", (("outcome", "ready"),))) == 1:
            break
        time.sleep(0.1)
    assert samples[("pets_finalisations_total", (("outcome", "ready"),))] == 1
    assert samples[("pets_open_queries", ())] == 0
    assert asyncio.run(query_status(cluster, query_id)).state == pb.QUERY_STATE_READY


def test_a_helper_serves_its_metrics_and_counts_refused_calls(tmp_path: Path) -> None:
    """A helper refuses a caller that is not the leader (PERMISSION_DENIED): counted."""
    import grpc

    from pets.transport.wire import INSECURE_IDENTITY_HEADER

    config = ServerConfig(
        role="helper",
        name="helper-1",
        listen="127.0.0.1:0",
        state_dir=tmp_path,
        min_holders=1,
        tls=None,
        metrics_listen="127.0.0.1:0",
    )

    # Scraped while the server runs (stop() closes the endpoint).
    samples: dict = {}  # type: ignore[type-arg]

    async def run() -> None:
        server = Server(config)
        port = await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                info = channel.unary_unary(
                    "/pets.v1.Helper/GetInfo",
                    request_serializer=pb.HelperInfoRequest.SerializeToString,
                    response_deserializer=pb.HelperInfo.FromString,
                )
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await info(
                        pb.HelperInfoRequest(),
                        metadata=[(INSECURE_IDENTITY_HEADER, "holder/mallory")],
                    )
                assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
                await info(
                    pb.HelperInfoRequest(),
                    metadata=[(INSECURE_IDENTITY_HEADER, "leader/leader")],
                )
            assert server.metrics_port is not None
            samples.update(await asyncio.to_thread(scrape, server.metrics_port))
        finally:
            await server.stop(grace=1)

    asyncio.run(run())
    rpc = "pets_rpcs_total"
    method = ("method", "pets.v1.Helper/GetInfo")
    assert samples[(rpc, (("code", "PERMISSION_DENIED"), method))] == 1
    assert samples[(rpc, (("code", "OK"), method))] == 1
    assert samples[("pets_open_queries", ())] == 0
