"""Service benchmarks over real processes on loopback: secure vs clear, and throughput.

Everything here runs the real deployment: :class:`pets.devtools.localcluster.LocalCluster`
starts ``python -m pets serve`` for the leader and one helper, with mutual TLS
from a fresh project CA and SQLite state (WAL, ``synchronous=FULL``). Holders
are :class:`pets.client.holder.HolderClient` objects, each with its own
certificate, driven concurrently by asyncio in the calling process (no node
processes: the holders hand over ring vectors directly).

Two quick metrics (``pets bench --quick --only service``):

``e2e_secure_vs_clear_ratio``
    Secure sum of 10 holders' vectors of 10^6 values through leader + helper,
    over the same 10 vectors streamed in the clear to a minimal plaintext sink,
    both measured in the same run: :data:`E2E_ROUNDS` interleaved rounds of
    each (with the DP round below: secure, clear, DP, then DP, clear, secure,
    alternately, so neither kind always follows the other), ratio of the
    *medians*. (The minimums are reported too; their ratio
    swings by about ±20% from run to run on a shared 2-core machine, because
    now and then one clear round runs with the machine to itself.)

    *Timed, secure*: from the moment the first holder starts contributing to
    the moment the analyst holds the decoded sum: every holder shards its
    vector (PRG expansion), seals and signs its helper seed (:mod:`pets.seal`),
    streams the masked vector (~1 MB chunks, the sealed seed in the header)
    to the leader and waits for the durable acknowledgement; the helper
    checks each batch's certificates and signatures and opens the seeds
    before the leader commits it (``Prepare``); the leader closes the query
    after the 10th contribution (``close_after``) and has the helper
    finalise over exactly those 10 (expanding their seeds), then marks it
    READY; the analyst, already following the status stream, fetches both
    aggregate shares, adds them as they stream in and decodes the sum
    (:func:`pets.query.decode`).

    *Timed, clear*: from the moment the first holder starts sending to the
    moment the analyst holds the decoded sum: every holder streams its plain
    vector (same ~1 MB chunks, same message limits, same mutual TLS with its
    own certificate) to the sink, which adds each chunk into a running numpy
    sum in memory as it arrives (as the leader does; it used to join each
    stream into one copy first, which made the baseline slower than the best
    plain path) and acknowledges; the analyst then fetches the sum (one
    stream) and decodes it the same way.

    *Not timed, either side*: server start-up, certificates, generating the
    holders' vectors (they exist before the round), submitting the query and
    the holders learning its announcement (a node already watches the
    leader), and connection set-up: a warm-up round connects every channel
    first, as a long-running node keeps its channels open.

``e2e_secure_vs_clear_ratio_dp``
    The secure rounds again with differential privacy on (:data:`E2E_DP_CLAUSE`,
    interleaved in the same run, same clear baseline): each server adds its own
    noise to its share and the analyst decodes with :func:`pets.dp.decode_noisy`
    (both timed). The noise itself is drawn before the query is announced, in a
    worker thread of each server (:mod:`pets.server.privacy`): that is in the
    query's submission, not timed here, so its cost is reported beside it as
    ``e2e_submit_dp_seconds`` against ``e2e_submit_seconds`` (medians: submit,
    helper registration, announcement fetched by one holder).
    ``e2e_dp_overhead_ratio`` = DP / no-DP medians. Both ratios come with
    ``..._ci95_lo`` / ``..._ci95_hi``, a 95% bootstrap interval over the rounds:
    one round varies by about 14% (standard deviation) on this machine, so a ratio
    of two 25-round medians is itself uncertain by about ±7%.

    Context keys: ``e2e_secure_seconds``, ``e2e_clear_seconds``,
    ``e2e_decode_seconds`` (:func:`pets.query.decode` of the 10^6-value sum,
    timed apart; both sides pay it) and
    ``e2e_secure_vs_clear_ratio_excl_decode`` = (secure - decode) / (clear -
    decode), what the protocols themselves cost relative to each other.

``contributions_per_s``
    Many small contributions (length-1 vectors, the size of ``count() from
    hospitals``) from :data:`RATE_HOLDERS` concurrent holders, each its own
    identity, into one additive query. Each is acknowledged durably after the
    full protocol (shard, seal and sign the helper's seed, one message to the
    leader, which has the helper check the signature and commits). Timed:
    first holder starts → last acknowledgement; the holders run in
    :data:`RATE_PROCESSES` client processes so the client side is not a
    single Python thread, each run as ``pets node`` runs (its default event
    loop and collector settings, :func:`_rate_worker_main`). Holders send the
    way a node does by default: one message on their persistent
    ``ContributeStream`` (:mod:`pets.client.contribution_stream`). The best of
    :data:`RATE_ROUNDS` rounds (peak sustained rate) is the metric; the median
    round is reported beside it.

``contributions_per_s_stream`` and ``contributions_per_s_unary``
    The same rounds sent on the stream (the default; the same figure as
    ``contributions_per_s``) and as one ``ContributeOne`` call each,
    alternating round by round in the same run. Beside them, the CPU time
    each process spent per contribution over those rounds
    (``cpu_us_per_contribution_{leader,helper,holders}_{stream,unary}``: the
    servers' utime + stime from ``/proc/<pid>/stat`` in 10 ms ticks, the
    client processes' ``time.process_time``; query set-up and finalisation
    left out), which says which process bounds the rate.

The same building blocks (:class:`ServiceRig`, :func:`start_sink`) drive
``benchmarks/test_bench_service.py`` and ``tests/integration/test_memory.py``.

Server memory is read from ``/proc/<pid>/status`` of the server processes
(``VmHWM``: peak resident set; ``VmRSS``: current); :func:`reset_peak` writes
``5`` to ``/proc/<pid>/clear_refs`` so a peak can be measured per phase.

This module imports ``pets.client`` and ``pets.server``; it is benchmark
tooling (:mod:`pets.devtools`), loaded only by ``pets bench`` and the
benchmark suites, never by the core.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
import numpy as np

from pets import sharing
from pets.client.analyst import AnalystClient, Submitted
from pets.client.config import Endpoints, TlsFiles
from pets.client.connect import Connector
from pets.client.holder import HolderClient
from pets.devtools.localcluster import LocalCluster
from pets.identity.certificates import Role
from pets.query import Query, QueryPlan, Result, Schema, decode
from pets.query import compile as compile_query
from pets.runtime.eventloop import loop_factory
from pets.runtime.gctuning import tune_gc
from pets.transport import wire
from pets.v1 import aggregation_pb2 as pb
from pets.v1 import aggregation_pb2_grpc as pb_grpc

T = TypeVar("T")

E2E_HOLDERS = 10
E2E_LENGTH = 1_000_000
E2E_ROUNDS = 25
"""Rounds of each kind. One round's time varies by about 14% (standard deviation) on 2
shared cores (the helper's seed expansion alone took 18-60 ms); with 9 rounds the
DP/no-DP ratio of medians moved by ±8% between runs, more than the 5% it is compared
with."""
E2E_DP_CLAUSE = "dp epsilon 1"  # discrete Laplace on every element (the cheaper sampler)
RATE_HOLDERS = 200
RATE_PROCESSES = 2
RATE_ROUNDS = 5
VALUE_HI = 1000  # holders' values lie in [0, VALUE_HI]; scale 1, so ring values are the same
QUERY_DEADLINE_SECONDS = 600.0
SMALL_DATASET = "hospitals"
SINK_SERVICE = "pets.devtools.bench.ClearSink"
SINK_START_SECONDS = 30.0


def dataset_name(length: int) -> str:
    """The schema's name for the vector dataset of ``length`` values."""
    return f"vec_{length}"


def bench_schema(lengths: Iterable[int] = (E2E_LENGTH,)) -> Schema:
    """A schema with one vector dataset per length and the small ``hospitals`` table.

    Vector values are integers in ``[0, VALUE_HI]`` with scale 1, so a ring
    vector is just the values as ``uint64``. ``count() from hospitals`` has a
    1-value layout: the "small contribution" of the throughput benchmark.
    """
    parts = []
    for n in sorted(set(lengths)):
        parts.append(
            f'[datasets.{dataset_name(n)}]\nkind = "vector"\nlength = {n}\n'
            f"lo = 0\nhi = {VALUE_HI}\nscale = 1\n"
        )
    parts.append(
        f"[datasets.{SMALL_DATASET}]\nmax_rows = 10000\n\n"
        f"[[datasets.{SMALL_DATASET}.columns]]\n"
        'name = "age"\ntype = "int"\nlo = 0\nhi = 110\n'
    )
    return Schema.from_toml("\n".join(parts))


def holder_vector(index: int, length: int) -> np.ndarray:
    """Holder ``index``'s ring vector: the constant ``index % (VALUE_HI + 1)``.

    Cheap to make on the fly (the memory test needs 1000 of 8 MB), and the
    expected sum is easy to state; the masking makes every payload on the
    wire uniformly random anyway.
    """
    return np.full(length, index % (VALUE_HI + 1), dtype=np.uint64)


def random_vectors(count: int, length: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` benchmark vectors with values in ``[0, VALUE_HI]`` (test data, not secrets)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, VALUE_HI + 1, length, dtype=np.uint64) for _ in range(count)]


# --------------------------------------------------------------------------- memory


@dataclass(frozen=True)
class Memory:
    """Resident memory of one process, in MB (10^6 bytes)."""

    hwm_mb: float  # peak resident set size since start or since reset_peak
    rss_mb: float  # current resident set size


def process_memory(pid: int) -> Memory:
    """``VmHWM`` and ``VmRSS`` of process ``pid`` (Linux ``/proc``)."""
    values: dict[str, float] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                values[key] = int(rest.split()[0]) * 1024 / 1e6
    return Memory(hwm_mb=values["VmHWM"], rss_mb=values["VmRSS"])


def reset_peak(pid: int) -> bool:
    """Reset ``VmHWM`` of ``pid`` to its current RSS; False when the kernel refuses."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    return True


# --------------------------------------------------------------------------- the clear sink


def _sink_main(argv: Sequence[str]) -> None:
    """Entry point of the sink process: ``python -m pets.devtools.bench_service sink ...``."""
    p = argparse.ArgumentParser(prog="python -m pets.devtools.bench_service sink")
    p.add_argument("--ca", type=Path, required=True)
    p.add_argument("--cert", type=Path, required=True)
    p.add_argument("--key", type=Path, required=True)
    args = p.parse_args(argv)
    # As ``pets serve`` runs (its default loop and collector settings): the baseline
    # server gets everything the leader gets that is not the protocol.
    from pets.runtime.gctuning import tune_gc

    tune_gc()
    with asyncio.Runner(loop_factory=loop_factory("auto")) as runner:
        runner.run(_serve_sink(args.ca, args.cert, args.key))


async def _serve_sink(ca: Path, cert: Path, key: Path) -> None:
    """A minimal plaintext aggregation server: the "clear" baseline.

    One generic service, no protobuf: ``Send`` (client streaming, raw bytes:
    an 8-byte little-endian value count, then the little-endian ``uint64``
    vector in ~1 MB chunks) adds each chunk into a running numpy sum as it
    arrives (:class:`pets.transport.wire.RingAdder`, as the leader adds
    contributions), never joining the stream into one copy; ``Take`` (server
    streaming) returns the sum in ~1 MB chunks and resets it. Same server
    options and the same mutual TLS as a pets server; no storage, no
    authentication beyond TLS, no masking, and no recovery from a stream cut
    short (its chunks stay added): the best plain path, not a service.
    """
    from pets.server.app import SERVER_OPTIONS

    state: dict[str, Any] = {"total": None, "count": 0}

    async def send(
        request_iterator: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> bytes:
        chunks = aiter(request_iterator)
        length = int.from_bytes(await anext(chunks), "little")
        total = state["total"]
        if total is None or total.shape != (length,):
            total = state["total"] = np.zeros(length, dtype=np.uint64)
            state["count"] = 0
        adder = wire.RingAdder(total)
        async for chunk in chunks:
            adder.add(chunk)
        adder.finish()
        state["count"] += 1
        return str(state["count"]).encode()

    async def take(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        total = state["total"]
        data = b"" if total is None else wire.vector_view(total)  # no 8 MB copy
        state["total"], state["count"] = None, 0
        for chunk in wire.chunks(data):
            yield bytes(chunk)  # gRPC sends bytes: one copy per chunk, as the leader's

    handler = grpc.method_handlers_generic_handler(
        SINK_SERVICE,
        {
            "Send": grpc.stream_unary_rpc_method_handler(send),
            "Take": grpc.unary_stream_rpc_method_handler(take),
        },
    )
    server = grpc.aio.server(options=SERVER_OPTIONS)
    server.add_generic_rpc_handlers((handler,))
    creds = grpc.ssl_server_credentials(
        [(key.read_bytes(), cert.read_bytes())],
        root_certificates=ca.read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", creds)
    await server.start()
    print(port, flush=True)
    # Run until the parent closes our stdin (or dies).
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await server.stop(1.0)


@dataclass
class Sink:
    """A running sink process and its address."""

    process: subprocess.Popen
    address: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_sink(cluster: LocalCluster, cert_name: str = "leader") -> Sink:
    """Start the clear sink with ``cert_name``'s certificate (the leader's by default)."""
    tls = cluster.tls(cert_name)
    if tls is None:
        raise ValueError("the clear sink uses mutual TLS; the cluster must not be --insecure")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pets.devtools.bench_service",
            "sink",
            "--ca",
            str(tls.ca),
            "--cert",
            str(tls.cert),
            "--key",
            str(tls.key),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until the port is printed (or the process dies)
    if not line.strip().isdigit():
        proc.kill()
        proc.wait(5)
        raise RuntimeError(f"clear sink did not start (got {line!r})")
    return Sink(proc, f"127.0.0.1:{int(line)}")


class ClearHolder:
    """A holder of the clear baseline: its own certificate, one channel to the sink."""

    def __init__(self, connector: Connector, sink: str) -> None:
        self.connector = connector
        # The sink presents the leader's certificate, so it is pinned like the leader.
        self.channel = connector.channel(sink, "leader", connector.endpoints.leader_name)
        self._send = self.channel.stream_unary(f"/{SINK_SERVICE}/Send")
        self._take = self.channel.unary_stream(f"/{SINK_SERVICE}/Take")

    async def send(self, vector: np.ndarray) -> bytes:
        """Stream ``vector`` as ~1 MB chunks of little-endian bytes, as a holder does,
        behind its length (the header a pets contribution carries too). The chunks
        are views of the vector's own memory, copied once each into the bytes gRPC
        sends (an 8 MB copy of the whole vector first cost this baseline ~20,000 page
        faults and ~50 ms a round)."""
        payload = wire.vector_view(vector)

        async def messages() -> AsyncIterator[bytes]:
            yield len(vector).to_bytes(8, "little")
            for chunk in wire.chunks(payload):
                yield bytes(chunk)

        return await self._send(  # type: ignore[no-any-return]
            messages(), metadata=self.connector.metadata, timeout=max(30.0, len(payload) / 20e6)
        )

    async def take(self, length: int) -> np.ndarray:
        """Fetch (and reset) the sink's running sum, each chunk copied into place as it
        arrives (:class:`pets.transport.wire.ChunkAssembler`, as the leader assembles a
        payload: no list of chunks joined into a second copy)."""
        assembler = wire.ChunkAssembler(length * wire.RING_DTYPE.itemsize)
        async for chunk in self._take(b"", metadata=self.connector.metadata, timeout=60):
            assembler.add(chunk)
        return wire.vector_from_bytes(assembler.finish(), length)

    async def close(self) -> None:
        await self.channel.close()


# --------------------------------------------------------------------------- the rig


@dataclass
class Round:
    """One query the holders contribute to, as set up before a timed region."""

    submitted: Submitted
    announcement: pb.QueryAnnouncement

    @property
    def query_id(self) -> str:
        return self.submitted.query_id

    @property
    def plan(self) -> QueryPlan:
        return self.submitted.plan


@dataclass
class ServiceRig:
    """A leader + helper deployment on loopback, an analyst and holders, one event loop.

    All async work runs on one event loop (:meth:`run`), so gRPC
    channels opened in one call stay usable in the next: benchmark rounds
    reuse connected channels.
    """

    workdir: Path
    lengths: tuple[int, ...] = (E2E_LENGTH,)
    min_holders: int = 3
    limits: dict[str, float | int] = field(default_factory=dict)
    cluster: LocalCluster = field(init=False)
    _loop: asyncio.AbstractEventLoop = field(init=False)
    _analyst: AnalystClient | None = field(init=False, default=None)
    _issued: set[str] = field(init=False, default_factory=set)
    _clients: list[Any] = field(init=False, default_factory=list)
    _sink: Sink | None = field(init=False, default=None)
    _fetch_channels: dict[str, tuple[Connector, grpc.aio.Channel]] = field(
        init=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        self.cluster = LocalCluster(
            workdir=self.workdir,
            schema=bench_schema(self.lengths),
            min_holders=self.min_holders,
            # Benchmarks repeat one query over different holder sets (the holder-count
            # series), which the release rule (pets.server.release_policy) refuses
            # within its window: a 1 ms window lets them run; the rule has its tests.
            limits={"release_window_seconds": 0.001, **self.limits},
            # DP rounds (e2e_secure_vs_clear_ratio_dp) repeat one query: a budget
            # that never runs out here; budgets have their own tests.
            dp_toml="[dp]\nbudget_rho = 1000000\n",
        )
        # A plain loop, not asyncio.Runner: Python 3.11's Runner.run formats
        # repr(task) (and so repr of its result) on every call.
        self._loop = asyncio.new_event_loop()

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> ServiceRig:
        self.cluster.prepare()
        self.cluster.start_servers()

        async def make() -> AnalystClient:
            return AnalystClient(self.cluster.endpoints("analyst"))

        self._analyst = self.run(make())
        return self

    def close(self) -> None:
        async def close_all() -> None:
            for c in self._clients:
                await c.close()
            for _, channel in self._fetch_channels.values():
                await channel.close()
            if self._analyst is not None:
                await self._analyst.close()

        try:
            self.run(close_all())
            self.run(self._loop.shutdown_asyncgens())
        finally:
            self._loop.close()
            if self._sink is not None:
                self._sink.stop()
            self.cluster.stop()

    def __enter__(self) -> ServiceRig:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the rig's event loop and return its result."""
        return self._loop.run_until_complete(coro)

    # -- parties --------------------------------------------------------------
    def pid(self, name: str) -> int:
        popen = self.cluster.processes[name].popen
        assert popen is not None
        return popen.pid

    def memory(self, name: str) -> Memory:
        return process_memory(self.pid(name))

    def reset_peak(self, name: str) -> bool:
        return reset_peak(self.pid(name))

    def issue_holders(self, names: Iterable[str]) -> None:
        """Certificates from the cluster CA for ``names`` (once per name)."""
        for name in names:
            if name not in self._issued:
                self.cluster.issue(Role.HOLDER, name)
                self._issued.add(name)

    def connector(self, name: str) -> Connector:
        return Connector(self.cluster.endpoints(name), "holder")

    def holders(self, count: int, prefix: str = "holder") -> list[HolderClient]:
        """``count`` holder clients, each with its own certificate (issued if needed)."""
        names = [f"{prefix}-{i:05d}" for i in range(count)]
        self.issue_holders(names)

        async def make() -> list[HolderClient]:
            return [HolderClient(self.connector(n)) for n in names]

        clients = self.run(make())
        self._clients.extend(clients)
        return clients

    @property
    def analyst(self) -> AnalystClient:
        if self._analyst is None:
            raise RuntimeError("start the rig first")
        return self._analyst

    # -- rounds -----------------------------------------------------------------
    async def open_round(
        self, dataset: str, *, close_after: int = 0, announcer: HolderClient, dp: str = ""
    ) -> Round:
        """Submit ``vector_sum() from dataset`` (or ``count()`` for the small table),
        with a ``dp`` clause (e.g. ``"dp epsilon 1"``) if given.

        ``announcer`` fetches the leader's announcement the way a node learns
        of a query (``WatchQueries``); every holder then uses that announcement.
        """
        text = (
            f"count() from {dataset}"
            if dataset == SMALL_DATASET
            else f"vector_sum() from {dataset}"
        )
        text = f"{text} {dp}".strip()
        submitted = await self.analyst.submit(
            Query.parse(text), deadline_seconds=QUERY_DEADLINE_SECONDS, close_after=close_after
        )
        return Round(submitted, await announcer.announcement(submitted.query_id))

    async def finish_round(self, rnd: Round, *, close: bool = False) -> Result:
        """Wait until READY (closing first if asked), fetch both shares, add, decode."""
        if close:
            await self.analyst.close_query(rnd.query_id)
        return await self.analyst.fetch(rnd.submitted, await self.wait_ready(rnd))

    async def wait_ready(self, rnd: Round) -> pb.QueryStatus:
        """Follow the query until it ends; its status if READY, else RuntimeError."""
        status = await self.analyst.wait(rnd.query_id)
        if status.state != pb.QUERY_STATE_READY:
            raise RuntimeError(f"{rnd.query_id} ended {status.failure}: {status.failure_detail}")
        return status

    async def fetch_total(self, rnd: Round, status: pb.QueryStatus) -> np.ndarray:
        """The analyst's fetch without the decoding: every server's share, added.

        What :meth:`AnalystClient.fetch` does before :func:`pets.query.decode`
        (which builds Python objects per value and would dominate the scaling
        study at 10^7 values), over the analyst's own certificate.
        """
        servers = ["leader", *sorted(self.cluster.helper_names)]
        parts = await asyncio.gather(*(self._fetch_share(s, rnd.query_id) for s in servers))
        if len({count for count, _ in parts}) != 1:
            raise RuntimeError(f"servers disagree on the contributor count of {rnd.query_id}")
        return sharing.unshard([wire.vector_from_bytes(d, status.vector_length) for _, d in parts])

    async def _fetch_share(self, server: str, query_id: str) -> tuple[int, bytes]:
        if server not in self._fetch_channels:
            connector = Connector(self.cluster.endpoints("analyst"), "analyst")
            self._fetch_channels[server] = (
                connector,
                connector.leader_channel()
                if server == "leader"
                else connector.helper_channel(server),
            )
        connector, channel = self._fetch_channels[server]
        stub = pb_grpc.LeaderStub(channel) if server == "leader" else pb_grpc.HelperStub(channel)
        count = 0
        data: list[bytes] = []
        async for chunk in stub.GetAggregate(
            pb.QueryRef(query_id=query_id), metadata=connector.metadata, timeout=120
        ):
            if chunk.HasField("header"):
                count = chunk.header.contributors
            data.append(chunk.data)
        return count, b"".join(data)

    async def _contribute(
        self, rnd: Round, clients: Sequence[HolderClient], vectors: Sequence[np.ndarray]
    ) -> pb.QueryStatus:
        watching = asyncio.create_task(self.wait_ready(rnd))
        await asyncio.gather(
            *(
                c.contribute_additive(rnd.announcement, v)
                for c, v in zip(clients, vectors, strict=True)
            )
        )
        return await watching

    async def secure_sum(
        self, rnd: Round, clients: Sequence[HolderClient], vectors: Sequence[np.ndarray]
    ) -> Result:
        """The timed secure path: every holder contributes, the analyst decodes the sum.

        ``rnd`` must have been opened with ``close_after=len(clients)``, so the
        leader closes the query on the last contribution. The analyst follows
        the status stream from the start and fetches as soon as it is READY.
        """
        status = await self._contribute(rnd, clients, vectors)
        return await self.analyst.fetch(rnd.submitted, status)

    async def secure_total(
        self, rnd: Round, clients: Sequence[HolderClient], vectors: Sequence[np.ndarray]
    ) -> np.ndarray:
        """:meth:`secure_sum` up to the analyst holding the ring sum (no decoding)."""
        return await self.fetch_total(rnd, await self._contribute(rnd, clients, vectors))

    async def contribute_as(
        self,
        rnd: Round,
        names: Sequence[str],
        vector_for: Callable[[int], np.ndarray],
        *,
        concurrency: int,
    ) -> int:
        """Holder ``names[i]`` contributes ``vector_for(i)``, at most ``concurrency`` at once.

        Each holder connects with its own certificate (issue them first with
        :meth:`issue_holders`), contributes, and disconnects; its vector is
        made just before and dropped just after, so the client side holds at
        most ``concurrency`` vectors and connections at a time. Returns the
        number of newly accepted contributions.
        """
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int, name: str) -> bool:
            async with gate:
                client = HolderClient(self.connector(name))
                try:
                    ack = await client.contribute_additive(rnd.announcement, vector_for(i))
                finally:
                    await client.close()
                return ack.newly_accepted

        return sum(await asyncio.gather(*(one(i, n) for i, n in enumerate(names))))

    # -- the clear baseline -----------------------------------------------------
    def sink(self) -> Sink:
        if self._sink is None:
            self._sink = start_sink(self.cluster)
        return self._sink

    def clear_holders(self, clients: Sequence[HolderClient]) -> list[ClearHolder]:
        """Clear-baseline holders with the same identities (certificates) as ``clients``."""
        address = self.sink().address

        async def make() -> list[ClearHolder]:
            return [ClearHolder(c.connector, address) for c in clients]

        out = self.run(make())
        self._clients.extend(out)
        return out

    async def clear_sum(
        self, plan: QueryPlan, holders: Sequence[ClearHolder], vectors: Sequence[np.ndarray]
    ) -> Result:
        """The timed clear path: every holder streams its vector, the analyst decodes the sum."""
        await asyncio.gather(*(h.send(v) for h, v in zip(holders, vectors, strict=True)))
        total = await holders[0].take(plan.length)
        return decode(plan, total, len(holders))


async def timed(coro: Awaitable[T]) -> tuple[float, T]:
    """``(seconds, result)`` of awaiting ``coro``."""
    start = time.perf_counter()
    out = await coro
    return time.perf_counter() - start, out


# --------------------------------------------------------------------------- quick metrics


def e2e_metrics(rig: ServiceRig, *, rounds: int = E2E_ROUNDS) -> dict[str, float]:
    """Secure (with and without DP) vs clear sum of E2E_HOLDERS vectors of E2E_LENGTH,
    interleaved, medians of each."""
    clients = rig.holders(E2E_HOLDERS, prefix="e2e")
    clear = rig.clear_holders(clients)
    vectors = random_vectors(E2E_HOLDERS, E2E_LENGTH)
    dataset = dataset_name(E2E_LENGTH)
    expected = np.sum(vectors, axis=0)

    submit: list[float] = []
    submit_dp: list[float] = []

    def secure_once() -> float:
        opened, rnd = rig.run(
            timed(rig.open_round(dataset, close_after=E2E_HOLDERS, announcer=clients[0]))
        )
        submit.append(opened)
        seconds, result = rig.run(timed(rig.secure_sum(rnd, clients, vectors)))
        _check_vector(result, expected)
        return seconds

    def secure_dp_once() -> float:
        """The same secure round with DP on: each server adds its own noise (drawn before
        the query is announced: in the submission, not timed here, reported as
        e2e_submit_dp_seconds), the analyst decodes with pets.dp.decode_noisy."""
        opened, rnd = rig.run(
            timed(
                rig.open_round(
                    dataset, close_after=E2E_HOLDERS, announcer=clients[0], dp=E2E_DP_CLAUSE
                )
            )
        )
        submit_dp.append(opened)
        seconds, result = rig.run(timed(rig.secure_sum(rnd, clients, vectors)))
        if result.dp is None or len(result.rows[0]["vector"]) != expected.size:
            raise RuntimeError("the DP round did not return a noisy sum")
        return seconds

    plan = compile_query(Query.parse(f"vector_sum() from {dataset}"), rig.cluster.schema)

    def clear_once() -> float:
        seconds, result = rig.run(timed(rig.clear_sum(plan, clear, vectors)))
        _check_vector(result, expected)
        return seconds

    secure_once(), clear_once()  # warm-up: connect every channel, fault in memory
    secure_dp_once()
    submit.clear()
    submit_dp.clear()
    secure: list[float] = []
    clear_: list[float] = []
    secure_dp: list[float] = []
    kinds = ((secure, secure_once), (clear_, clear_once), (secure_dp, secure_dp_once))
    for i in range(rounds):
        # Alternate the order (S C D, then D C S): no kind always runs after another.
        for times, once in kinds if i % 2 == 0 else kinds[::-1]:
            times.append(once())
    t_secure, t_clear = statistics.median(secure), statistics.median(clear_)
    t_secure_dp = statistics.median(secure_dp)
    t_decode = min(_seconds(lambda: decode(plan, expected, E2E_HOLDERS)) for _ in range(3))
    return {
        "e2e_secure_vs_clear_ratio": t_secure / t_clear,
        # Same run, interleaved, with DP on (E2E_DP_CLAUSE): should stay within 5%.
        "e2e_secure_vs_clear_ratio_dp": t_secure_dp / t_clear,
        "e2e_secure_dp_seconds": t_secure_dp,
        "e2e_dp_overhead_ratio": t_secure_dp / t_secure,
        # How far the two medians' ratio can move from sampling alone: one round varies
        # by about 14% (standard deviation) here, so 25 rounds leave it uncertain by
        # about ±7%.
        **_ratio_interval("e2e_dp_overhead_ratio", secure_dp, secure),
        **_ratio_interval("e2e_secure_vs_clear_ratio", secure, clear_),
        # Query submission (+ the announcement), untimed above: DP draws each server's
        # noise there, before the query is announced (pets.server.privacy).
        "e2e_submit_seconds": statistics.median(submit),
        "e2e_submit_dp_seconds": statistics.median(submit_dp),
        "e2e_secure_seconds": t_secure,
        "e2e_clear_seconds": t_clear,
        "e2e_secure_min_seconds": min(secure),
        "e2e_clear_min_seconds": min(clear_),
        "e2e_secure_vs_clear_ratio_of_min": min(secure) / min(clear_),
        "e2e_decode_seconds": t_decode,
        # Both sides spend t_decode in pets.query.decode; without it, the ratio of
        # what the protocols themselves cost (approximate: decode timed apart).
        "e2e_secure_vs_clear_ratio_excl_decode": (t_secure - t_decode) / (t_clear - t_decode),
    }


def _ratio_interval(
    name: str, numerator: Sequence[float], denominator: Sequence[float], *, resamples: int = 4000
) -> dict[str, float]:
    """``{name}_ci95_lo`` / ``_hi``: a 95% percentile-bootstrap interval for
    median(numerator) / median(denominator) over the rounds of one run.

    ``numerator[i]`` and ``denominator[i]`` ran in the same iteration of the
    interleaved loop, under the same load, so iterations are resampled whole (a
    paired bootstrap: a slow spell of the machine moves both sides together
    instead of widening the interval). A fixed seed: a run's report is
    reproducible from its rounds (Efron and Tibshirani 1993, ch. 13).
    """
    num, den = np.asarray(numerator), np.asarray(denominator)
    if num.shape != den.shape or num.ndim != 1 or num.size == 0:
        raise ValueError("a paired interval needs the same number of rounds of each kind")
    rng = np.random.default_rng(20261201)
    picks = rng.integers(0, num.size, (resamples, num.size))
    ratios = np.median(num[picks], axis=1) / np.median(den[picks], axis=1)
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return {f"{name}_ci95_lo": float(lo), f"{name}_ci95_hi": float(hi)}


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _check_vector(result: Result, expected: np.ndarray) -> None:
    got = np.asarray(result.rows[0]["vector"])
    if got.shape != expected.shape or not np.array_equal(got, expected):
        raise RuntimeError("benchmark sum does not match the plaintext sum")


RATE_PATHS = ("stream", "unary")


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of process ``pid`` so far (Linux ``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def rate_metrics(
    rig: ServiceRig,
    *,
    holders: int = RATE_HOLDERS,
    processes: int = RATE_PROCESSES,
    rounds: int = RATE_ROUNDS,
    paths: Sequence[str] = RATE_PATHS,
) -> dict[str, float]:
    """Durable small contributions per second from ``holders`` concurrent holders.

    The holders are split over ``processes`` client processes
    (``python -m pets.devtools.bench_service rate-worker``), each one asyncio loop.
    A first round per path connects every channel and opens every stream and
    is not counted; then ``rounds`` rounds per path (``paths``; the first is
    the one ``contributions_per_s`` reports), alternating, each a fresh
    ``count() from hospitals`` query. Rate = holders / (earliest start to
    latest acknowledgement over all processes); the best round per path is
    its metric, the median beside it. CPU per contribution: each process's
    CPU time over the timed spans of a path's rounds (from just before the
    holders start to their last acknowledgement; query set-up and
    finalisation left out) over their contributions.
    """
    names = [f"rate-{i:05d}" for i in range(holders)]
    rig.issue_holders(names)
    announcer = rig.holders(1, prefix="announcer")[0]
    workers = [RateWorker.start(rig.cluster, names[i::processes]) for i in range(processes)]
    servers = {"leader": rig.pid("leader"), "helper": rig.pid("helper-1")}
    rates: dict[str, list[float]] = {path: [] for path in paths}
    cpu = {path: {**dict.fromkeys(servers, 0.0), "holders": 0.0} for path in paths}
    try:
        for r in range(rounds + 1):
            for path in paths:
                rnd = rig.run(rig.open_round(SMALL_DATASET, announcer=announcer))
                before = {name: process_cpu_seconds(pid) for name, pid in servers.items()}
                for w in workers:
                    w.send(rnd.announcement, path)
                results = [w.result() for w in workers]
                after = {name: process_cpu_seconds(pid) for name, pid in servers.items()}
                rig.run(rig.finish_round(rnd, close=True))
                if r:
                    for name in servers:
                        cpu[path][name] += after[name] - before[name]
                    cpu[path]["holders"] += sum(cpu_s for _, _, cpu_s in results)
                    seconds = max(e for _, e, _ in results) - min(s for s, _, _ in results)
                    rates[path].append(holders / seconds)
    finally:
        for w in workers:
            w.stop()
    out = {
        "contributions_per_s": max(rates[paths[0]]),
        "contributions_per_s_median": statistics.median(rates[paths[0]]),
    }
    for path in paths:
        out[f"contributions_per_s_{path}"] = max(rates[path])
        out[f"contributions_per_s_{path}_median"] = statistics.median(rates[path])
        for name, seconds in cpu[path].items():
            out[f"cpu_us_per_contribution_{name}_{path}"] = seconds / (rounds * holders) * 1e6
    return out


@dataclass
class RateWorker:
    """A client process of the throughput benchmark, driven over its stdin/stdout."""

    process: subprocess.Popen

    @classmethod
    def start(cls, cluster: LocalCluster, names: Sequence[str]) -> RateWorker:
        endpoints = [_endpoints_to_json(cluster.endpoints(n)) for n in names]
        proc = subprocess.Popen(
            [sys.executable, "-m", "pets.devtools.bench_service", "rate-worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        worker = cls(proc)
        worker._write(json.dumps(endpoints))
        return worker

    def _write(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def send(self, ann: pb.QueryAnnouncement, path: str = "stream") -> None:
        """Start a round: every holder contributes to ``ann`` by ``path``
        (:data:`RATE_PATHS`)."""
        self._write(f"{path} {ann.SerializeToString().hex()}")

    def result(self) -> tuple[float, float, float]:
        """``(first start, last acknowledgement, CPU seconds)`` of the current round."""
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("a benchmark client process exited")
        out = json.loads(line)
        if "error" in out:
            raise RuntimeError(f"benchmark client: {out['error']}")
        return float(out["start"]), float(out["end"]), float(out["cpu"])

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            with contextlib.suppress(OSError):
                self.process.stdin.close()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def _endpoints_to_json(e: Endpoints) -> dict[str, Any]:
    """``e`` as JSON for a client process (paths as strings, TLS files as a list)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(e):
        value = getattr(e, f.name)
        if isinstance(value, TlsFiles):
            value = [str(value.ca), str(value.cert), str(value.key)]
        elif isinstance(value, Path):
            value = str(value)
        out[f.name] = value
    return out


def _endpoints_from_json(d: dict[str, Any]) -> Endpoints:
    fields = dict(d)
    if fields.get("tls") is not None:
        fields["tls"] = TlsFiles(*(Path(p) for p in fields["tls"]))
    fields["schema"] = Path(fields["schema"])
    return Endpoints(**fields)


def _rate_worker_main() -> None:
    """Entry point of a throughput client process: one asyncio loop, many holders.

    stdin: one JSON line with the holders' endpoints, then one line per
    round: the path (``stream`` or ``unary``), a space and the hex-encoded
    ``QueryAnnouncement`` (EOF ends the process). For each round, every
    holder contributes a vector of ones concurrently by that path; stdout
    gets one JSON line ``{"start", "end", "cpu"}``: start and end on the
    system-wide monotonic clock (``perf_counter`` is ``CLOCK_MONOTONIC`` on
    Linux, comparable across processes), the process's CPU seconds in between.

    The process runs as ``pets node`` does: on its default loop (uvloop when
    installed, :mod:`pets.runtime.eventloop`) with its collector settings
    (:func:`pets.runtime.gctuning.tune_gc`). After each round it also collects
    its garbage and freezes what survives (:func:`gc.freeze`): a node is a
    process of its own with one client's objects, while this one holds a
    hundred clients' channels and streams, which a full collection would
    otherwise re-traverse during the rounds (~600 µs per contribution in a
    round that hit one), a cost no node pays.
    """

    async def main() -> None:
        loop = asyncio.get_running_loop()
        endpoints = json.loads(await loop.run_in_executor(None, sys.stdin.readline))
        clients = [HolderClient(Connector(_endpoints_from_json(e), "holder")) for e in endpoints]
        try:
            while line := await loop.run_in_executor(None, sys.stdin.readline):
                path, _, hex_ann = line.strip().partition(" ")
                ann = pb.QueryAnnouncement.FromString(bytes.fromhex(hex_ann))
                ones = [np.ones(ann.vector_length, dtype=np.uint64) for _ in clients]
                for c in clients:
                    c.use_stream = path == "stream"
                try:
                    cpu, start = time.process_time(), time.perf_counter()
                    await asyncio.gather(
                        *(c.contribute_additive(ann, v) for c, v in zip(clients, ones, strict=True))
                    )
                    out: dict[str, float | str] = {
                        "start": start,
                        "end": time.perf_counter(),
                        "cpu": time.process_time() - cpu,
                    }
                except Exception as exc:  # report, never leave the parent waiting
                    out = {"error": f"{type(exc).__name__}: {exc}"}
                print(json.dumps(out), flush=True)
                gc.collect()  # between rounds, untimed: see the docstring
                gc.freeze()
        finally:
            for c in clients:
                await c.close()

    tune_gc()
    with asyncio.Runner(loop_factory=loop_factory("auto")) as runner:
        runner.run(main())


def quick() -> dict[str, float]:
    """``e2e_secure_vs_clear_ratio`` and ``contributions_per_s`` (plus context:
    ``contributions_per_s_stream``, ``contributions_per_s_unary``, CPU per contribution).

    One leader + one helper for both; about 30 s on 2 cores (start-up and
    certificates ~3 s, 3 x 26 e2e rounds ~20 s, 2 x 6 throughput rounds, stream
    and unary, ~6 s).
    ``e2e_*_peak_rss_mb`` are the servers' VmHWM after the e2e rounds.
    """
    with (
        tempfile.TemporaryDirectory(prefix="pets-bench-service-") as tmp,
        ServiceRig(Path(tmp)) as rig,
    ):
        metrics = e2e_metrics(rig)
        metrics["e2e_leader_peak_rss_mb"] = rig.memory("leader").hwm_mb
        metrics["e2e_helper_peak_rss_mb"] = rig.memory("helper-1").hwm_mb
        metrics.update(rate_metrics(rig))
    return metrics


if __name__ == "__main__":
    if sys.argv[1:2] == ["sink"]:
        _sink_main(sys.argv[2:])
    elif sys.argv[1:2] == ["rate-worker"]:
        _rate_worker_main()
    else:
        print(json.dumps(quick(), indent=1, sort_keys=True))
