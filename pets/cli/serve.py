"""``pets serve``: run a leader or helper server (:class:`pets.server.app.Server`)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from pets.cli.exits import EXIT_OK
from pets.runtime.eventloop import LOOPS, loop_factory
from pets.runtime.gctuning import tune_gc


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``pets serve``."""
    p = sub.add_parser(
        "serve",
        help="run an aggregation server (leader or helper)",
        description=(
            "Run a gRPC aggregation server. The leader accepts queries from analysts and "
            "contributions from holders (with their seeds for the helpers, sealed); helpers "
            "check those seeds before the leader commits a contribution and sum them when "
            "it closes the query. Mutual TLS is on by default; see `pets certs --help`. "
            "Logs are JSON lines on stderr and never contain contributed values, seeds or keys."
        ),
        epilog=SERVER_TOML,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--role", choices=("leader", "helper"), help="must match `role` in the config")
    p.add_argument("--config", type=Path, required=True, help="server TOML file")
    p.add_argument("--listen", help="override `listen` (HOST:PORT; port 0 picks a free one)")
    p.add_argument("--port-file", type=Path, help="write the bound port to this file")
    p.add_argument(
        "--insecure",
        action="store_true",
        help="no TLS and no authentication (local experiments only; prints a warning)",
    )
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.add_argument(
        "--loop",
        default="auto",
        choices=LOOPS,
        help="event loop: uvloop if installed (auto, the default), or force one",
    )
    p.set_defaults(func=_serve)


SERVER_TOML = """\
server TOML (relative paths are relative to the file; examples/local/leader.toml,
examples/local/helper.toml):
  role = "leader"                  # or "helper"
  name = "leader"                  # the name in this server's certificate
  listen = "127.0.0.1:7001"        # port 0 picks a free one (see --port-file)
  state_dir = "state/leader"       # its SQLite database (or state = "postgresql://...")
  schema = "data/schema.toml"      # leader: the dataset schema all parties share
  min_holders = 3                  # the floor of contributors a release needs
  [tls]                            # from `pets certs issue --role leader --name leader`
  ca = "certs/ca.pem"
  cert = "certs/leader.pem"
  key = "certs/leader-key.pem"
  [[helpers]]                      # leader: the helpers, in share order
  name = "helper-1"
  address = "127.0.0.1:7002"       # or its replicas: ["10.0.1.1:7002", "10.0.1.2:7002"]
                                   # (round_robin; a replica that is down is skipped)
  [limits]                         # optional; e.g. linked queries (docs/LINKAGE.md):
  min_intersection = 10            # fewest matched records a linked query releases
                                   # (a query may raise it, never lower it)
  linked_queries_per_domain = 50   # linked queries per linkage domain, all analysts,
  linked_query_window_seconds = 604800  # within this window (0: no linked queries)
Optional tables: [limits], [policy] (analyst credentials), [dp], [metrics]. The full
reference, with every key and its default, is the docstring of server/config.py.

example: pets serve --role leader --config leader.toml
"""


def _serve(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from pets.errors import ConfigError
    from pets.runtime.jsonlog import configure
    from pets.server.app import Server
    from pets.server.config import load_config

    config = load_config(args.config, insecure=args.insecure)
    if args.role and args.role != config.role:
        raise ConfigError(f"--role {args.role} but {args.config} says role = {config.role!r}")
    if args.listen:
        config = replace(config, listen=args.listen)
    if args.port_file:
        config = replace(config, port_file=args.port_file)
    if args.insecure:
        print(
            "WARNING: --insecure: no TLS, no authentication. Never use this with real data.",
            file=sys.stderr,
        )
    configure(args.log_level, config.name, sys.stderr)
    tune_gc()
    with asyncio.Runner(loop_factory=loop_factory(args.loop)) as runner:
        runner.run(Server(config).serve())
    return EXIT_OK
