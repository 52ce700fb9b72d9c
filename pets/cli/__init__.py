"""The ``pets`` command: a thin shell over the library.

One module per command, each exposing ``register(subparsers) -> None`` that
adds its parser and stores its handler as ``func``; a handler takes the
parsed namespace and returns an exit status. Commands only parse arguments
and call library code (as uvicorn's CLI hands everything to a ``Server``
object). They are imported lazily by name, in :data:`COMMAND_MODULES`, and
import the servers or clients inside their handlers, so ``pets --help``
stays fast.

Exit statuses (:mod:`pets.cli.exits`), the same for every command:

* 0: done;
* 1: the command ran and failed or was refused: any :class:`pets.errors.PetsError`,
  or an :class:`OSError` on a file or folder it needed, reported here on stderr as
  ``pets <command>: error: <message>``;
* 2: the command line is wrong (argparse, or a handler's
  :class:`pets.cli.exits.UsageError`), or no command was given;
* 3: ``pets query`` only: the query ended without a result;
* 130: interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from pets import __version__
from pets.cli.exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, UsageError
from pets.errors import PetsError

# Modules exposing ``register(subparsers)``; order is the order in --help.
COMMAND_MODULES: tuple[str, ...] = (
    "pets.cli.serve",
    "pets.cli.node",
    "pets.cli.query",
    "pets.cli.result",
    "pets.cli.demo",
    "pets.cli.certs",
    "pets.cli.credential",
    "pets.cli.paillier",
    "pets.cli.gen_data",
    "pets.cli.bench",
    "pets.cli.budget",
)

EPILOG = """\
typical session (see README.md):
  pets certs init --dir certs
  pets certs issue --dir certs --role leader --name leader
  pets serve --role leader --config leader.toml
  pets node --config node.toml
  pets query --config analyst.toml --dataset hospitals --aggregate mean --column cost
  pets result --config analyst.toml QUERY_ID   # fetch a query's result later
  pets node history --config node.toml         # what a node answered or refused, and why
  pets demo            # all of the above on loopback, checked against plaintext
"""


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
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except PetsError as exc:
        print(f"pets {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        # A file or folder the command needed (a missing, read-only or non-directory path):
        # one line naming it, not a traceback.
        where = f": {exc.filename}" if exc.filename else ""
        print(f"pets {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_FAILED
    except UsageError as exc:
        print(f"pets {args.command}: usage: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
