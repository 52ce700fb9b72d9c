"""Prometheus metrics of one server (``[metrics] listen = "127.0.0.1:9464"``).

Each server keeps its metrics in its own :class:`prometheus_client.CollectorRegistry`
(so several servers in one process never mix them) and, when its config has a
``[metrics]`` table, serves them over HTTP at ``/metrics`` on that address
(off by default: metrics name queries' counts and timings, which an operator
may not want on a public port).

What is measured (issue 15, item 20):

* ``pets_rpcs_total{method, code}``: every RPC by its final status code,
  counted by :class:`RpcMetricsInterceptor` around each handler, so a call the
  servicer ended with ``context.abort`` counts with the code it aborted with
  (a plain response-interceptor, like py-grpc-prometheus, sees those as
  exceptions and misses their code);
* ``pets_contribution_seconds``: a contribution from its header to its
  acknowledgement (leader);
* ``pets_open_queries``: queries accepting contributions;
* ``pets_prepares_total{outcome}``: contributions the helpers' Prepare check
  accepted, refused, or could not check (leader and helper);
* ``pets_finalisations_total{outcome}``: on the leader, queries finished
  (``ready``, ``failed``) and close or finalisation attempts that failed and
  are retried (``retried``); on a helper, Finalize calls answered
  (``finalised``; a retried call joins the one finalisation);
* ``pets_store_seconds{operation}``: the store's transactions
  (``commit_contributions`` is the group commit), via :class:`TimedStore`.

No label carries a holder's, analyst's or query's name, let alone a value.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from pets.errors import ConfigError
from pets.server.store import Store

log = logging.getLogger("pets.server")

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# The store calls that are transactions, timed by TimedStore.
TIMED_STORE_CALLS = (
    "commit_contributions",
    "insert_query",
    "update_query",
    "close_query",
    "finish_query",
)


class ServerMetrics:
    """The metrics of one server, in their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.rpcs = Counter(
            "pets_rpcs",
            "RPCs handled, by method and final status code",
            ["method", "code"],
            registry=r,
        )
        self.contribution_seconds = Histogram(
            "pets_contribution_seconds",
            "A contribution from its header to its acknowledgement",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.open_queries = Gauge(
            "pets_open_queries", "Queries accepting contributions", registry=r
        )
        self.prepares = Counter(
            "pets_prepares",
            "Contributions checked by Prepare, by outcome (accepted, refused, unavailable)",
            ["outcome"],
            registry=r,
        )
        self.finalisations = Counter(
            "pets_finalisations",
            "Queries finished (ready, failed) and failed attempts retried (retried)",
            ["outcome"],
            registry=r,
        )
        self.store_seconds = Histogram(
            "pets_store_seconds",
            "Store transactions by operation (commit_contributions is the group commit)",
            ["operation"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self._http: Any = None

    def count_open_queries(self, count: Callable[[], int]) -> None:
        """Read the open-query gauge from ``count`` at each scrape."""
        self.open_queries.set_function(count)

    def serve(self, listen: str) -> int:
        """Serve ``/metrics`` over HTTP on ``listen`` (HOST:PORT, port 0 picks one);
        the bound port."""
        host, _, port = listen.rpartition(":")
        try:
            server, _thread = start_http_server(int(port), host.strip("[]"), registry=self.registry)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"could not serve metrics on {listen}: {exc}") from None
        self._http = server
        bound = int(server.server_port)
        log.info("metrics listening", extra={"address": host, "port": bound})
        return bound

    def close(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None


class TimedStore:
    """A :class:`Store` whose transactions are timed into ``pets_store_seconds``;
    every other call goes straight to the wrapped store."""

    def __init__(self, store: Store, metrics: ServerMetrics) -> None:
        self._store = store
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)
        if name not in TIMED_STORE_CALLS:
            return method
        histogram = self._metrics.store_seconds.labels(name)

        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await method(*args, **kwargs)
            finally:
                histogram.observe(time.perf_counter() - started)

        return timed


def timed_store(store: Store, metrics: ServerMetrics) -> Store:
    """``store`` with its transactions timed (see :class:`TimedStore`)."""
    return cast(Store, TimedStore(store, metrics))


class RpcMetricsInterceptor(grpc.aio.ServerInterceptor):
    """Counts every RPC by method and *final* status code, aborted calls included.

    It wraps the handler's behaviour rather than looking at responses: when the
    servicer aborts (``context.abort`` raises), the code it set is read from the
    context; an exception that is no abort counts as UNKNOWN, a cancelled call
    as CANCELLED.
    """

    def __init__(self, metrics: ServerMetrics) -> None:
        self.metrics = metrics

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = str(handler_call_details.method).lstrip("/")
        count = self._counter(method)
        kinds = (
            ("unary_unary", grpc.unary_unary_rpc_method_handler, False),
            ("unary_stream", grpc.unary_stream_rpc_method_handler, True),
            ("stream_unary", grpc.stream_unary_rpc_method_handler, False),
            ("stream_stream", grpc.stream_stream_rpc_method_handler, True),
        )
        for attribute, make, streams in kinds:
            behaviour = getattr(handler, attribute)
            if behaviour is not None:
                wrapped = _streaming(behaviour, count) if streams else _unary(behaviour, count)
                return make(
                    wrapped,
                    request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer,
                )
        return handler  # pragma: no cover - every handler has one behaviour

    def _counter(self, method: str) -> Callable[[grpc.aio.ServicerContext, str | None], None]:
        def count(context: grpc.aio.ServicerContext, failed: str | None) -> None:
            code = _final_code(context)
            if code is None:
                code = failed or "OK"
            self.metrics.rpcs.labels(method, code).inc()

        return count


def _final_code(context: grpc.aio.ServicerContext) -> str | None:
    try:
        code = context.code()
    except Exception:  # pragma: no cover - older grpc without ServicerContext.code()
        return None
    if code is None:
        return None
    if isinstance(code, grpc.StatusCode):
        return code.name
    for status in grpc.StatusCode:  # some versions keep the raw integer
        if status.value[0] == code:
            return status.name
    return str(code)


def _failure(exc: BaseException) -> str:
    return "CANCELLED" if isinstance(exc, asyncio.CancelledError) else "UNKNOWN"


def _unary(
    behaviour: Callable[..., Awaitable[Any]],
    count: Callable[[grpc.aio.ServicerContext, str | None], None],
) -> Callable[..., Awaitable[Any]]:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            response = await behaviour(request, context)
        except BaseException as exc:
            count(context, _failure(exc))
            raise
        count(context, None)
        return response

    return wrapped


def _streaming(
    behaviour: Callable[..., AsyncIterator[Any]],
    count: Callable[[grpc.aio.ServicerContext, str | None], None],
) -> Callable[..., AsyncIterator[Any]]:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        try:
            responses = behaviour(request, context)
            if inspect.isawaitable(responses):  # writes with context.write (grpc health)
                await responses
            else:
                async for item in responses:
                    yield item
        except BaseException as exc:
            count(context, _failure(exc))
            raise
        count(context, None)

    return wrapped
