"""The analyst: submit a query, follow it, fetch the aggregate shares, decode.

Python API behind ``pets query``::

    from pets.client import AnalystClient, load_analyst_config
    analyst = AnalystClient(load_analyst_config("analyst.toml"))
    outcome = asyncio.run(analyst.run(Query.parse("mean(cost) from hospitals")))
    print(outcome.result.to_json_obj() if outcome.result else outcome.status.failure)

Only the aggregate ever reaches the analyst: each server streams its share
of the sum (or, for Paillier, the product of ciphertexts), the analyst adds
the shares (or decrypts locally with a key that never left this process)
and decodes the fixed-layout vector into the answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import grpc
import numpy as np

from pets.client.config import Endpoints, load_schema
from pets.client.connect import Connector
from pets.errors import InvalidInputError, NotReadyError, UnavailableError
from pets.protocols import by_name, lookup
from pets.query import Query, QueryPlan, Result, Schema, decode
from pets.query import compile as compile_query
from pets.runtime.backoff import Backoff
from pets.transport import wire
from pets.transport.status import error_for
from pets.v1 import aggregation_pb2 as pb
from pets.v1 import aggregation_pb2_grpc as pb_grpc

TERMINAL = (pb.QUERY_STATE_READY, pb.QUERY_STATE_FAILED)
# How long past a query's deadline the analyst keeps re-attaching to a lost leader
# (finalisation included), and the longest wait between two attempts.
REATTACH_GRACE_SECONDS = 120.0
MAX_REATTACH_DELAY_SECONDS = 5.0


def transient(exc: grpc.aio.AioRpcError) -> bool:
    """A call that failed because the server went away, not because it refused."""
    if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return True
    # A server killed mid-stream can surface as UNKNOWN "Stream removed".
    return exc.code() == grpc.StatusCode.UNKNOWN and "Stream removed" in (exc.details() or "")


@dataclass
class Submitted:
    """A query the leader accepted, with what the analyst needs to decode it."""

    status: pb.QueryStatus
    plan: QueryPlan
    private_key: Any = None  # phe.PaillierPrivateKey for Paillier queries; never sent

    @property
    def query_id(self) -> str:
        return self.status.query_id


@dataclass
class Outcome:
    """How a query ended: READY with a result, or FAILED with a reason and no numbers."""

    status: pb.QueryStatus
    result: Result | None
    seconds: float

    @property
    def ok(self) -> bool:
        return self.result is not None


@dataclass(frozen=True)
class _Aggregate:
    header: pb.AggregateHeader
    data: bytes | bytearray


class AnalystClient:
    """Talks to the leader and helpers as one analyst."""

    def __init__(self, endpoints: Endpoints, *, schema: Schema | None = None) -> None:
        self.endpoints = endpoints
        self.schema = schema or load_schema(endpoints.schema)
        self.connector = Connector(endpoints, "analyst")
        self._channels: dict[str, grpc.aio.Channel] = {}

    def _channel(self, server: str) -> grpc.aio.Channel:
        """The channel to ``server``: "leader" or a helper's name."""
        if server not in self._channels:
            self._channels[server] = (
                self.connector.leader_channel()
                if server == "leader"
                else self.connector.helper_channel(server)
            )
        return self._channels[server]

    @property
    def leader(self) -> pb_grpc.LeaderStub:
        return pb_grpc.LeaderStub(self._channel("leader"))

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()

    async def _call(self, what: str, coro: Any) -> Any:
        try:
            return await coro
        except grpc.aio.AioRpcError as exc:
            raise error_for(exc, what) from None

    async def submit(
        self,
        query: Query,
        *,
        protocol: str = "additive",
        min_holders: int = 0,
        deadline_seconds: float = 0.0,
        close_after: int = 0,
        max_holders: int = 0,
        paillier_key_bits: int = 2048,
        private_key: Any = None,
        credential: Any = None,
        predicates: Sequence[str] = (),
    ) -> Submitted:
        """Validate locally, then submit. For Paillier a fresh key pair is made here
        unless ``private_key`` is given; only the public key travels.

        With ``credential`` (a :class:`pets.zk.credential.HolderCredential`) the
        analyst proves ``predicates`` to a leader that requires it: it fetches a
        fresh nonce from the leader's Verifier service and attaches a
        zero-knowledge presentation bound to that nonce and to its own name.
        """
        chosen = by_name(protocol)
        plan = compile_query(query, self.schema)  # fail fast, before any network
        spec = pb.QuerySpec(
            query_json=query.to_json(),
            protocol=chosen.wire_id,
            min_holders=min_holders,
            deadline_seconds=deadline_seconds,
            close_after=close_after,
            max_holders=max_holders,
        )
        # The protocol's fields (a Paillier key pair is made here; only the public
        # key travels); its private material stays in this process.
        private_key = await asyncio.to_thread(
            chosen.analyst_setup, spec, private_key, paillier_key_bits
        )
        if chosen.spec_signed and self.endpoints.tls is not None:
            # Holders encrypt only to a key that an analyst of the project signed.
            from pets.identity.signing import sign_spec

            tls = self.endpoints.tls
            sign_spec(spec, tls.cert.read_bytes(), tls.key.read_bytes())
        request = pb.SubmitQueryRequest(spec=spec)
        if credential is not None:
            request.presentation_nonce, request.presentation = await self._present(
                credential, predicates
            )
        status = await self._call(
            "submit query",
            self.leader.SubmitQuery(request, metadata=self.connector.metadata, timeout=30),
        )
        return Submitted(status=status, plan=plan, private_key=private_key)

    async def _present(self, credential: Any, predicates: Sequence[str]) -> tuple[bytes, bytes]:
        from pets.v1 import credential_pb2 as cpb
        from pets.v1 import credential_pb2_grpc as cpb_grpc
        from pets.zk.contexts import submit_query_context
        from pets.zk.credential import create_presentation
        from pets.zk.proto import presentation_to_proto

        if not predicates:
            raise InvalidInputError("name the predicates to prove (e.g. 'accreditation >= 2')")
        predicates = list(predicates)
        if "subject" in getattr(credential, "values", {}) and "reveal subject" not in predicates:
            # Leaders check that the credential was issued to this analyst's name.
            predicates.append("reveal subject")
        verifier = cpb_grpc.VerifierStub(self._channel("leader"))
        reply = await self._call(
            "get nonce",
            verifier.GetNonce(
                cpb.NonceRequest(context="submit-query"),
                metadata=self.connector.metadata,
                timeout=30,
            ),
        )
        presentation = await asyncio.to_thread(
            create_presentation,
            credential,
            list(predicates),
            nonce=reply.nonce,
            context=submit_query_context(self.endpoints.name),
        )
        return reply.nonce, presentation_to_proto(presentation).SerializeToString()

    async def status(self, query_id: str) -> pb.QueryStatus:
        return await self._call(
            "query status",
            self.leader.GetQueryStatus(
                pb.QueryRef(query_id=query_id), metadata=self.connector.metadata, timeout=30
            ),
        )

    async def close_query(self, query_id: str) -> pb.QueryStatus:
        return await self._call(
            "close query",
            self.leader.CloseQuery(
                pb.QueryRef(query_id=query_id), metadata=self.connector.metadata, timeout=30
            ),
        )

    async def wait(
        self,
        query_id: str,
        on_status: Callable[[pb.QueryStatus], None] | None = None,
        on_reattach: Callable[[str, float], None] | None = None,
    ) -> pb.QueryStatus:
        """Follow the query's status until it is READY or FAILED.

        A lost leader (a restart, a dropped connection) does not end the wait:
        the status stream is re-opened with :class:`~pets.runtime.backoff.Backoff`
        (``on_reattach(reason, delay)`` is told each time) until the query's
        deadline plus :data:`REATTACH_GRACE_SECONDS` has passed; only then an
        :class:`~pets.errors.UnavailableError` says how to fetch the result later.
        """
        last: pb.QueryStatus | None = None
        backoff = Backoff(0.25, MAX_REATTACH_DELAY_SECONDS)
        while True:
            call = self.leader.WatchQueryStatus(
                pb.QueryRef(query_id=query_id), metadata=self.connector.metadata
            )
            reason = "the status stream ended early"
            try:
                async for status in call:
                    backoff.reset()
                    last = status
                    if on_status is not None:
                        on_status(status)
                    if status.state in TERMINAL:
                        return status
            except grpc.aio.AioRpcError as exc:
                if not transient(exc):
                    raise error_for(exc, "watch query status") from None
                reason = f"{exc.code().name}: {exc.details()}"
            finally:
                call.cancel()
            await self._before_reattach(query_id, last, reason, backoff, on_reattach)

    async def _before_reattach(
        self,
        query_id: str,
        last: pb.QueryStatus | None,
        reason: str,
        backoff: Backoff,
        on_reattach: Callable[[str, float], None] | None,
    ) -> None:
        """Wait before re-attaching, or give up once the query must have ended long ago."""
        horizon = (last.deadline_unix if last is not None else time.time()) + (
            REATTACH_GRACE_SECONDS
        )
        if time.time() + backoff.delay > horizon:
            raise UnavailableError(
                f"lost the leader while following query {query_id} ({reason}); it may still "
                f"finish: fetch its result later with `pets result {query_id}`"
            )
        if on_reattach is not None:
            on_reattach(reason, backoff.delay)
        await backoff.sleep()

    async def _aggregate_stream(
        self,
        server: str,
        query_id: str,
        expected_bytes: int | None,
        consume: Callable[[pb.AggregateHeader], Callable[[memoryview | bytes], None]],
    ) -> pb.AggregateHeader:
        """Read one server's aggregate share, chunk by chunk.

        ``consume(header)`` returns the function that takes each chunk's data;
        the header is checked first (present, and of ``expected_bytes`` when
        given). GetAggregate is called with pets.transport.wire's decoder, so the data
        is not copied out of the messages (same method and wire format as the
        generated stub).
        """
        get_aggregate = self._channel(server).unary_stream(
            f"/pets.v1.{'Leader' if server == 'leader' else 'Helper'}/GetAggregate",
            request_serializer=pb.QueryRef.SerializeToString,
            response_deserializer=wire.decode_aggregate_chunk,
        )
        header: pb.AggregateHeader | None = None
        take: Callable[[memoryview | bytes], None] | None = None
        try:
            async for chunk in get_aggregate(
                pb.QueryRef(query_id=query_id), metadata=self.connector.metadata
            ):
                if header is None:
                    if not chunk.HasField("header"):
                        raise InvalidInputError(f"{server}: aggregate stream without a header")
                    header = chunk.header
                    if expected_bytes is not None and header.payload_bytes != expected_bytes:
                        raise InvalidInputError(
                            f"{server} announces an aggregate of {header.payload_bytes} bytes, "
                            f"expected {expected_bytes}"
                        )
                    take = consume(header)
                assert take is not None
                take(chunk.data)
        except grpc.aio.AioRpcError as exc:
            raise error_for(exc, f"aggregate from {server}") from None
        if header is None:
            raise InvalidInputError(f"{server}: empty aggregate stream")
        return header

    async def _fetch_one(
        self, server: str, query_id: str, expected_bytes: int | None = None
    ) -> _Aggregate:
        """One server's aggregate share; refuses a stream of any other size than expected."""
        assembler: wire.ChunkAssembler | None = None

        def consume(header: pb.AggregateHeader) -> Callable[[memoryview | bytes], None]:
            nonlocal assembler
            assembler = wire.ChunkAssembler(header.payload_bytes)
            # ChunkAssembler.add copies from any buffer, memoryviews included.
            return cast("Callable[[memoryview | bytes], None]", assembler.add)

        header = await self._aggregate_stream(server, query_id, expected_bytes, consume)
        assert assembler is not None
        return _Aggregate(header, assembler.finish())

    async def fetch(self, submitted: Submitted, status: pb.QueryStatus) -> Result:
        """Fetch every server's aggregate share, combine (as the chunks arrive), decode."""
        qid = status.query_id
        if status.state != pb.QUERY_STATE_READY:
            raise NotReadyError(f"query {qid} is {pb.QueryState.Name(status.state)}")
        protocol = lookup(status.spec.protocol)
        servers = protocol.share_servers(status)
        if protocol.uses_helpers:
            missing = [h for h in status.helpers if h not in self.endpoints.helpers]
            if missing or not status.helpers:
                raise InvalidInputError(
                    f"query {qid} has shares on helper(s) {list(status.helpers)}; this "
                    f"analyst's [helpers] lacks {missing or 'all of them'}"
                )
        combiner = protocol.combiner(status, submitted.plan, submitted.private_key)
        size = protocol.share_bytes(status)

        async def one(server: str) -> pb.AggregateHeader:
            def consume(header: pb.AggregateHeader) -> Callable[[memoryview | bytes], None]:
                return combiner.sink(server, header)

            return await self._aggregate_stream(server, qid, size, consume)

        headers = list(await asyncio.gather(*(one(s) for s in servers)))
        total = await asyncio.to_thread(combiner.total, headers)
        plan = submitted.plan
        if plan.query.dp is None:
            return decode(plan, total, headers[0].contributors)
        # Differential privacy: every server added its own noise, from the same noise
        # plan this process derives from the query plan (docs/DP.md).
        from pets.dp import decode_noisy, noise_plan

        modulus = protocol.noise_modulus(status)
        if not isinstance(total, np.ndarray):  # a field or Paillier total: reduce it
            total = [int(v) % modulus for v in total]
        noisy = decode_noisy(
            plan,
            noise_plan(plan),
            total,
            headers[0].contributors,
            len(servers),
            modulus=modulus,
        )
        return dataclasses.replace(
            noisy.result,
            dp=noisy.dp,
            intervals=tuple(noisy.intervals),
            notes=tuple(noisy.notes),
        )

    async def fetch_retrying(
        self,
        submitted: Submitted,
        status: pb.QueryStatus,
        on_reattach: Callable[[str, float], None] | None = None,
    ) -> Result:
        """:meth:`fetch`, started over (with backoff) when a server is briefly unreachable."""
        backoff = Backoff(0.25, MAX_REATTACH_DELAY_SECONDS)
        while True:
            try:
                return await self.fetch(submitted, status)
            except UnavailableError as exc:
                await self._before_reattach(status.query_id, None, str(exc), backoff, on_reattach)

    async def resume(
        self,
        query_id: str,
        *,
        private_key: Any = None,
        on_status: Callable[[pb.QueryStatus], None] | None = None,
        on_reattach: Callable[[str, float], None] | None = None,
    ) -> tuple[Query, Outcome]:
        """Follow (or fetch) a query submitted earlier, by its id: ``pets result``.

        The plan is recompiled from the spec the leader kept; a Paillier query's
        result needs the private key it was submitted with (``private_key``).
        """
        start = time.perf_counter()
        status = await self._retrying_status(query_id, on_reattach)
        query = Query.from_json(status.spec.query_json)
        plan = compile_query(query, self.schema)
        if lookup(status.spec.protocol).spec_signed and private_key is None:
            raise InvalidInputError(
                f"query {query_id} is a Paillier query: give the private key it was "
                "submitted with (--paillier-key)"
            )
        submitted = Submitted(status=status, plan=plan, private_key=private_key)
        if on_status is not None:
            on_status(status)
        final = (
            status
            if status.state in TERMINAL
            else await self.wait(query_id, on_status, on_reattach)
        )
        result = None
        if final.state == pb.QUERY_STATE_READY:
            result = await self.fetch_retrying(submitted, final, on_reattach)
        return query, Outcome(status=final, result=result, seconds=time.perf_counter() - start)

    async def _retrying_status(
        self, query_id: str, on_reattach: Callable[[str, float], None] | None
    ) -> pb.QueryStatus:
        backoff = Backoff(0.25, MAX_REATTACH_DELAY_SECONDS)
        while True:
            try:
                return await self.status(query_id)
            except UnavailableError as exc:
                await self._before_reattach(query_id, None, str(exc), backoff, on_reattach)

    async def run(
        self,
        query: Query,
        *,
        on_status: Callable[[pb.QueryStatus], None] | None = None,
        on_submitted: Callable[[Submitted], None] | None = None,
        on_reattach: Callable[[str, float], None] | None = None,
        **submit_options: Any,
    ) -> Outcome:
        """Submit, follow until the query ends, and fetch the result if there is one.

        ``on_submitted`` is called as soon as the leader accepted the query (its
        id is known); a lost leader is re-attached to (see :meth:`wait`).
        """
        start = time.perf_counter()
        submitted = await self.submit(query, **submit_options)
        if on_submitted is not None:
            on_submitted(submitted)
        final = await self.wait(submitted.query_id, on_status, on_reattach)
        result = None
        if final.state == pb.QUERY_STATE_READY:
            result = await self.fetch_retrying(submitted, final, on_reattach)
        return Outcome(status=final, result=result, seconds=time.perf_counter() - start)
