"""``pets node``: run a data-holder node beside its data (:class:`pets.client.node.Node`)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``pets node``."""
    p = sub.add_parser(
        "node",
        help="run a data-holder node beside your data",
        description=(
            "Watch the leader for queries, check each against the local policy, evaluate "
            "it on the local data files, and contribute secret shares (or Paillier "
            "ciphertexts). Nothing but shares or ciphertexts ever leaves the node. "
            "See the docstring of pets.client.config for the node.toml format."
        ),
        epilog="example: pets node --config node.toml",
    )
    p.add_argument("--config", type=Path, required=True, help="node TOML file")
    p.add_argument(
        "--insecure",
        action="store_true",
        help="no TLS (local experiments only; the servers must run --insecure too)",
    )
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.set_defaults(func=_node)


def _node(args: argparse.Namespace) -> int:
    from pets.client.config import load_node_config
    from pets.client.node import Node
    from pets.runtime.jsonlog import configure

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

    asyncio.run(main())
    return 0
