"""``pets bench --quick``: the headline performance metrics (:mod:`pets.devtools.bench`).

The suites it runs are :data:`pets.devtools.bench.SUITES`; ``--only`` picks some.
"""

from __future__ import annotations

import argparse
import json
import sys

from pets.cli.exits import EXIT_OK
from pets.devtools.bench import SUITES


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``pets bench``."""
    p = sub.add_parser(
        "bench",
        help="measure the headline performance metrics",
        description=(
            "Run the quick benchmark set (each area in well under a minute) and print "
            "its metrics. The full pytest-benchmark suite is `make bench`."
        ),
    )
    p.add_argument("--quick", action="store_true", help="the reduced set (the only set here)")
    p.add_argument("--json", action="store_true", help='print one JSON object {"metrics": {...}}')
    p.add_argument(
        "--only",
        default=",".join(SUITES),
        help=f"comma-separated areas to run (default: {','.join(SUITES)})",
    )
    p.set_defaults(func=_bench)


def _bench(args: argparse.Namespace) -> int:
    from pets.devtools.bench import run_quick

    areas = [a.strip() for a in args.only.split(",") if a.strip()]
    quiet = bool(args.json)

    def progress(area: str) -> None:
        if not quiet:
            print(f"measuring {area} ...", file=sys.stderr)

    metrics = run_quick(areas, progress)
    if args.json:
        print(json.dumps({"metrics": metrics}, sort_keys=True))
    else:
        width = max(map(len, metrics), default=0)
        for name, value in sorted(metrics.items()):
            print(f"{name:<{width}}  {value:.6g}")
    return EXIT_OK
