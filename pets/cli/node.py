"""``pets node``: run a data-holder node beside its data (:class:`pets.client.node.Node`)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from pets.cli.exits import UsageError
from pets.runtime.eventloop import LOOPS, loop_factory
from pets.runtime.gctuning import tune_gc


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``pets node``."""
    p = sub.add_parser(
        "node",
        help="run a data-holder node beside your data",
        description=(
            "Watch the leader for queries, check each against the local policy, evaluate "
            "it on the local data files, and contribute secret shares (or Paillier "
            "ciphertexts). Nothing but shares or ciphertexts ever leaves the node; for a "
            'linked query (with "linkage" in [policy] protocols) also blinded points '
            "and per-query pseudonyms of the identifiers, never an identifier. "
            "Every decision is kept in state_dir/node.sqlite: `pets node history` lists it."
        ),
        epilog=NODE_TOML,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, help="node TOML file (required)")
    p.add_argument(
        "--insecure",
        action="store_true",
        help="no TLS (local experiments only; the servers must run --insecure too)",
    )
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.add_argument(
        "--loop",
        default="auto",
        choices=LOOPS,
        help="event loop: uvloop if installed (auto, the default), or force one",
    )
    p.set_defaults(func=_node)
    commands = p.add_subparsers(dest="node_command", metavar="[history]")
    h = commands.add_parser(
        "history",
        help="list every query this node was asked (one reading a dataset it holds): "
        "answered or refused, why, when (no values)",
        description=(
            "List, from the node's own state (state_dir/node.sqlite), each query it saw: "
            "answered or refused, the reason, the analyst who asked, and when. It lists no "
            "values. Works while the node runs."
        ),
    )
    h.add_argument("--config", type=Path, required=True, help="node TOML file")
    h.add_argument("--json", action="store_true", help="one JSON object per line")
    h.set_defaults(func=_history)


NODE_TOML = """\
node.toml (relative paths are relative to the file; examples/local/node-01.toml):
  name = "hospital-01"             # the name in this holder's certificate
  schema = "schema.toml"           # the dataset schema all parties share
  leader = "127.0.0.1:7001"        # or its replicas: ["10.0.0.1:7001", "10.0.0.2:7001"]
                                   # (or "A:P,B:P"): calls spread by gRPC round_robin,
                                   # a replica that is down is skipped (retries too)
  leader_name = "leader"           # optional: the name in the leader's certificate
  state_dir = "state/hospital-01"  # seed key and node.sqlite (what it answered)
  [helpers]                        # helper name -> address (only checked, never dialled)
  helper-1 = "127.0.0.1:7002"
  [data]                           # dataset -> file (.csv/.parquet/.arrow/.npy) or table
  hospitals = "data/hospital-01/hospitals.csv"
  [tls]                            # from `pets certs issue --role holder --name NAME`
  ca = "certs/ca.pem"
  cert = "certs/hospital-01.pem"
  key = "certs/hospital-01-key.pem"
  [policy]                         # all optional
  datasets = ["hospitals"]
  columns = { hospitals = ["age", "sex", "cost"] }
  min_group_rows = 5               # refuse cells with 1..4 rows
  protocols = ["additive", "paillier"]   # the default; add "linkage" (or "prio3")
                                   # to answer linked queries ('... linked to ...'): the
                                   # node then reads the side it holds and its identifier
                                   # column, and sends pseudonyms (docs/LINKAGE.md)
  same_query_answers = 1           # one analyst's same query: at most this many answers
  same_query_window_seconds = 86400  # ... per this window (default: once a day)
The full reference is the docstring of client/config.py.

examples:
  pets node --config node.toml
  pets node history --config node.toml
"""


def _node(args: argparse.Namespace) -> int:
    from pets.client.config import load_node_config
    from pets.client.node import Node
    from pets.runtime.jsonlog import configure

    if args.config is None:
        raise UsageError("--config NODE_TOML is required (see `pets node --help`)")
    config = load_node_config(args.config, insecure=args.insecure)
    configure(args.log_level, config.endpoints.name, sys.stderr)
    if args.insecure:
        print("WARNING: --insecure: no TLS, no authentication.", file=sys.stderr)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):  # before start-up, so no signal is lost
            loop.add_signal_handler(sig, stop.set)
        node = Node(config)
        await node.run(stop)

    tune_gc()
    with asyncio.Runner(loop_factory=loop_factory(args.loop)) as runner:
        runner.run(main())
    return 0


def _history(args: argparse.Namespace) -> int:
    import json
    import time

    from pets.client.config import load_node_config
    from pets.client.journal import JOURNAL_FILE, Journal
    from pets.errors import ConfigError

    # Only the state_dir is needed: no certificates, data or leader.
    config = load_node_config(args.config, insecure=True)
    if not (config.state_dir / JOURNAL_FILE).exists():
        raise ConfigError(f"no history in {config.state_dir}: this node has not run yet")
    journal = Journal(config.state_dir)
    try:
        entries = journal.history()
    finally:
        journal.close()
    if not entries and not args.json:
        print(f"no queries seen yet ({config.state_dir})")
    for e in entries:
        if args.json:
            print(json.dumps(e.to_json_obj(), sort_keys=True))
            continue
        at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.at))
        why = f": {e.reason}" if e.reason else ""
        who = f" from {e.analyst}" if e.analyst else ""
        print(f"{at}  {e.query_id}  {e.outcome}{who}  {e.query}{why}")
    return 0
