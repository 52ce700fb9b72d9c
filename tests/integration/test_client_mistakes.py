"""A client's mistakes are refused as such, not reported as server faults (issue 15, item 8).

Garbage sent to ``Contribute``, ``Helper.Prepare`` and ``Helper.Finalize``
is answered INVALID_ARGUMENT; each server logs one WARNING line per caller
and method (no traceback, no payload), however many times it is sent.
"""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest

from pets.devtools.localcluster import LocalCluster
from pets.transport.wire import INSECURE_IDENTITY_HEADER

GARBAGE = b"\xff\xff\xff not a protobuf message \x00\x01"
CALLS = 5
METHODS = [
    ("leader", "/pets.v1.Leader/Contribute", "holder/org-1"),
    ("helper-1", "/pets.v1.Helper/Prepare", "leader/leader"),
    ("helper-1", "/pets.v1.Helper/Finalize", "leader/leader"),
    ("leader", "/pets.v1.Leader/GetQueryStatus", "analyst/analyst"),
]


async def _garbage(cluster: LocalCluster, server: str, method: str, identity: str) -> list:  # type: ignore[type-arg]
    codes = []
    async with grpc.aio.insecure_channel(cluster.address(server)) as channel:
        metadata = [(INSECURE_IDENTITY_HEADER, identity)]
        for _ in range(CALLS):
            try:
                if method.endswith("GetQueryStatus"):
                    unary = channel.unary_unary(method, request_serializer=None)
                    await unary(GARBAGE, metadata=metadata, timeout=10)
                else:
                    stream = channel.stream_unary(method, request_serializer=None)
                    await stream(iter([GARBAGE]), metadata=metadata, timeout=10)
                codes.append(grpc.StatusCode.OK)
            except grpc.aio.AioRpcError as exc:
                codes.append(exc.code())
    return codes


@pytest.mark.parametrize(("server", "method", "identity"), METHODS)
def test_garbage_is_invalid_argument_logged_once(
    make_cluster,  # type: ignore[no-untyped-def]
    server: str,
    method: str,
    identity: str,
) -> None:
    cluster = make_cluster(insecure=True)
    codes = asyncio.run(_garbage(cluster, server, method, identity))
    assert codes == [grpc.StatusCode.INVALID_ARGUMENT] * CALLS
    cluster.stop()
    text = cluster.processes[server].log.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    name = method.rsplit("/", 1)[1]
    refused = [r for r in lines if r.get("method") == name]
    # One WARNING for the five calls (rate-limited per caller and method), no traceback.
    assert [r["level"] for r in refused] == ["warning"]
    assert refused[0]["code"] == "INVALID_ARGUMENT"
    assert "malformed" in refused[0]["error"]
    assert not [r for r in lines if r["level"] in ("error", "critical")]
    assert not [r for r in lines if "exc" in r]
    assert "not a protobuf" not in text
