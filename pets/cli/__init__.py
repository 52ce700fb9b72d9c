"""The ``pets`` command: a thin shell over the library.

Each command only parses arguments and calls library code (as uvicorn's CLI
hands everything to a ``Server`` object). Commands live next to the code they
drive and are registered here by module name, imported lazily so that
``pets --help`` stays fast and the core never imports the servers.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from pets import __version__
from pets.errors import PetsError

# Modules exposing ``register(subparsers)``; order is the order in --help.
COMMAND_MODULES: tuple[str, ...] = (
    "pets.server.cli",  # serve
    "pets.client.cli",  # node, query, demo
    "pets.cli.certs",  # certs
    "pets.zk.cli",  # credential
    "pets.paillier.cli",  # paillier keygen
)

EPILOG = """\
typical session (see README.md):
  pets certs init --dir certs
  pets certs issue --dir certs --role leader --name leader
  pets serve --role leader --config leader.toml
  pets node --config node.toml
  pets query --config analyst.toml --dataset hospitals --aggregate mean --column cost
  pets demo            # all of the above on loopback, checked against plaintext
"""


def _add_gen_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gen-data",
        help="write deterministic synthetic datasets for N holders",
        description=(
            "Write a schema (schema.toml) and one folder of data files per holder. "
            "The data is synthetic and deterministic for a given --seed."
        ),
    )
    p.add_argument("--kind", choices=("hospitals", "supply_chain"), required=True)
    p.add_argument("--holders", type=int, default=5, help="number of holders (default 5)")
    p.add_argument("--rows", type=int, default=2000, help="rows per holder (default 2000)")
    p.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.set_defaults(func=_gen_data)


def _gen_data(args: argparse.Namespace) -> int:
    from pets.client.datafiles import write_generated

    written = write_generated(args.kind, args.holders, args.rows, args.seed, args.out)
    for path in written:
        print(path)
    return 0


def _add_bench(sub: argparse._SubParsersAction) -> None:
    from pets.devtools.bench import SUITES

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
    quiet = args.json

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
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pets",
        description=(
            "Privacy-enhancing computation: aggregate statistics over many parties' data "
            "without anyone seeing another party's numbers."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pets {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    _add_gen_data(sub)
    _add_bench(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except PetsError as exc:
        print(f"pets {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
