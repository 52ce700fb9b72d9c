"""``pets result``: fetch the result of a query submitted earlier, by its id.

``pets query`` prints the query id as soon as the leader accepts the query; if
that command was interrupted or lost the leader for longer than it waits, this
command follows the query to its end (re-attaching to a restarting leader) and
prints the outcome exactly as ``pets query`` would (same ``--json`` lines, same
exit statuses, :mod:`pets.cli.exits`). A Paillier query's result can be
decrypted only with the private key it was submitted with (``--paillier-key``).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``pets result``."""
    p = sub.add_parser(
        "result",
        help="fetch the result of a query submitted earlier",
        description=(
            "Follow a query submitted earlier to its end, fetch every server's aggregate "
            "share, combine and decode them locally. Only the analyst who submitted the "
            "query may read it."
        ),
        epilog=(
            "example: pets result --config analyst.toml q-0123456789abcdef\n"
            "exit status: 0 with a result; 3 when the query ended without one; 1 on an error."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("query_id", metavar="QUERY_ID", help="the id `pets query` printed")
    p.add_argument("--config", type=Path, required=True, help="analyst TOML file")
    p.add_argument(
        "--paillier-key", type=Path, help="paillier: the private key the query was submitted with"
    )
    p.add_argument(
        "--json", action="store_true", help='print {"event": "outcome", ...} (one JSON line)'
    )
    p.add_argument("--insecure", action="store_true", help="no TLS (local experiments only)")
    p.set_defaults(func=_result)


def _result(args: argparse.Namespace) -> int:
    from pets.cli.query import follow

    return follow(args, args.query_id)
