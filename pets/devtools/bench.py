"""The quick benchmark suites behind ``pets bench --quick``.

Each suite is a module ``pets.devtools.bench_<name>`` exposing
``quick() -> dict[str, float]`` (metric name to value), each one running in
well under a minute. The full pytest-benchmark suites live in ``benchmarks/``
(``make bench``). Where a metric compares two paths, both are measured in the
same run. To add a suite, write its module and add its name to :data:`SUITES`.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterable

from pets.errors import ConfigError

# The suites `pets bench --quick` runs by default, in this order.
SUITES: tuple[str, ...] = (
    "sharing",
    "service",
    "paillier",
    "zk",
    "sources",
    "vdaf",
    "prio3_service",
    "dp",
    "linkage",
    "postgres",
)


def run_quick(
    names: Iterable[str], progress: Callable[[str], None] | None = None
) -> dict[str, float]:
    """Run the named suites' ``quick()`` and merge their metrics."""
    names = list(names)
    unknown = sorted(set(names) - set(SUITES))
    if unknown:
        raise ConfigError(f"unknown benchmark area(s) {unknown}; choose from {list(SUITES)}")
    metrics: dict[str, float] = {}
    for name in names:
        if progress is not None:
            progress(name)
        module = importlib.import_module(f"pets.devtools.bench_{name}")
        metrics.update(module.quick())
    return metrics


def best_time(fn: Callable[[], object], *, repeat: int = 7, number: int = 1) -> float:
    """Best (minimum) wall time of ``number`` calls of ``fn``, over ``repeat`` runs, per call.

    The minimum is the estimate least disturbed by other load on the machine.
    """
    fn()  # warm up caches and lazy imports
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best
