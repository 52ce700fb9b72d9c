"""Quick benchmark metrics behind ``pets bench --quick``.

Each module here measures one area and exposes ``quick_metrics() -> dict``;
the full pytest-benchmark suites live in ``benchmarks/`` (``make bench``).
Where a metric compares two paths, both are measured in the same run.
"""

from __future__ import annotations

import time
from collections.abc import Callable

AREAS = ("sharing", "service", "paillier", "zk")


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
