"""``pets demo``: the whole system on loopback, checked against plaintext.

The work is :func:`pets.devtools.demo.run_demo`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from pets.cli.exits import EXIT_FAILED, EXIT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``pets demo``."""
    p = sub.add_parser(
        "demo",
        help="run the whole system on loopback and check it against plaintext",
        description=(
            "Create certificates and synthetic data in a temporary folder, start a leader, "
            "a helper and five holder nodes as separate processes, run queries of every "
            "aggregate type over both datasets and both protocols, and print each secure "
            "result beside the plaintext result computed directly from the data files. "
            "Then a second deployment (hospitals, municipal long-term care and insurer "
            "claims, `pets gen-data --kind linked`) answers linked queries (record "
            "linkage by pseudonymised ids, --protocol linkage), each compared with a "
            "pandas join of the same files, and a cohort below the floor is refused. "
            "Exits non-zero if any result differs beyond fixed-point rounding."
        ),
    )
    p.add_argument(
        "--json",
        action="store_true",
        help='print {"queries": [...], "seconds": ...} instead of tables',
    )
    p.add_argument("--holders", type=int, default=5, help="number of holder nodes (default 5)")
    p.add_argument("--rows", type=int, default=400, help="rows per holder (default 400)")
    p.add_argument(
        "--keep",
        type=Path,
        help="use this folder (kept afterwards) instead of a temporary one; the linked "
        "deployment goes in its subfolder linked/",
    )
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from pets.devtools.demo import run_demo

    start = time.perf_counter()
    report = run_demo(
        holders=args.holders, rows=args.rows, workdir=args.keep, verbose=not args.json
    )
    report["seconds"] = round(time.perf_counter() - start, 3)
    if args.json:
        print(json.dumps(report, sort_keys=True))
    ok = all(q["match"] for q in report["queries"]) and report["clean_shutdown"]
    if not args.json:
        n = len(report["queries"])
        verdict = "all match" if ok else "MISMATCH"
        print(f"\n{n} queries, {verdict}, {report['seconds']:.1f} s")
    return EXIT_OK if ok else EXIT_FAILED
