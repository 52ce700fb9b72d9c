"""``pets budget show|grant``: an operator's view of a server's privacy budgets.

Each aggregation server keeps one :class:`pets.dp.PrivacyFilter` per
(analyst, dataset) in its own durable store (docs/DP.md, "Budgets in the
service"). These commands read and write that store directly, located
through the server's configuration file (``pets serve --config``): its
SQLite database in ``state_dir``, or its PostgreSQL database (``state``).

The server need not be stopped: it reads a filter from the store at every
admission and release (nothing is cached), and each change here is one
transaction, so a grant applies to the next release. A grant raises the
budget of one pair on ONE server; with DP on every server, grant on each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

from pets.cli.exits import EXIT_OK, UsageError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``budget`` command and its ``show`` and ``grant`` subcommands."""
    parser = subparsers.add_parser(
        "budget",
        help="show or grant the privacy budgets a server enforces",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="budget_command", metavar="COMMAND", required=True)
    show = commands.add_parser("show", help="list budgets: spent, remaining, (epsilon, delta)")
    grant = commands.add_parser("grant", help="raise one (analyst, dataset) budget")
    for sub in (show, grant):
        sub.add_argument("--config", required=True, type=Path, help="the server's config file")
    show.add_argument("--analyst", help="only this analyst")
    show.add_argument("--dataset", help="only this dataset")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(func=_show)
    grant.add_argument("--analyst", required=True)
    grant.add_argument("--dataset", required=True)
    amount = grant.add_mutually_exclusive_group(required=True)
    amount.add_argument("--rho", help="extra zCDP rho, exact decimal or fraction (0.5, 1/8)")
    amount.add_argument("--epsilon", help="extra pure-DP epsilon, charged as rho = epsilon^2/2")
    grant.add_argument("--json", action="store_true", help="machine-readable output")
    grant.set_defaults(func=_grant)


def _load(path: Path) -> Any:
    from pets.server.config import load_config

    # Only the state directory and [dp] matter here; TLS files are not read.
    return load_config(path, insecure=True)


def _extra_rho(args: argparse.Namespace) -> Fraction:
    from pets.dp.accountant import rho_of_pure_dp
    from pets.dp.rational import exact
    from pets.errors import InvalidInputError

    try:
        if args.rho is not None:
            rho = exact(args.rho, "rho")
        else:
            rho = rho_of_pure_dp(exact(args.epsilon, "epsilon"))
    except InvalidInputError as exc:
        raise UsageError(str(exc)) from None
    if rho <= 0:
        raise UsageError("a grant must be positive")
    return rho


def _show(args: argparse.Namespace) -> int:
    from pets.dp import PrivacyFilter
    from pets.server.store import connect_store

    cfg = _load(args.config)

    async def read() -> list[str]:
        store = await connect_store(cfg.state_url or cfg.database)
        try:
            return await store.list_budgets()
        finally:
            await store.close()

    filters = [PrivacyFilter.from_json(s) for s in asyncio.run(read())]
    rows = [
        f.summary()
        for f in filters
        if (args.analyst is None or f.analyst == args.analyst)
        and (args.dataset is None or f.dataset == args.dataset)
    ]
    if args.json:
        print(json.dumps({"server": cfg.name, "budgets": rows}, indent=2))
        return EXIT_OK
    if not rows:
        print(
            f"{cfg.name}: no budget spent yet; a new (analyst, dataset) starts at "
            f"rho={cfg.dp.budget_rho}"
        )
        return EXIT_OK
    print(f"{cfg.name}: privacy budgets (zCDP rho, and epsilon at delta):")
    for r in rows:
        print(
            f"  {r['analyst']} on {r['dataset']}: spent rho={r['spent_rho']} of "
            f"{r['budget_rho']} in {r['releases']} release(s); remaining rho={r['remaining_rho']}"
            f" (epsilon={r['remaining_epsilon']:.4g} at delta={r['delta']:g})"
        )
    return EXIT_OK


def _grant(args: argparse.Namespace) -> int:
    from pets.dp import PrivacyFilter
    from pets.server.store import connect_store

    cfg = _load(args.config)
    extra = _extra_rho(args)

    def update(stored: str | None) -> str:
        filt = (
            cfg.dp.new_filter(args.analyst, args.dataset)
            if stored is None
            else PrivacyFilter.from_json(stored)
        )
        filt.grant(extra)
        return str(filt.to_json())

    async def write() -> str:
        store = await connect_store(cfg.state_url or cfg.database)
        try:
            return await store.update_budget(args.analyst, args.dataset, update)
        finally:
            await store.close()

    summary = PrivacyFilter.from_json(asyncio.run(write())).summary()
    if args.json:
        print(json.dumps({"server": cfg.name, "budget": summary}, indent=2))
    else:
        print(
            f"{cfg.name}: granted rho={extra} to {args.analyst} on {args.dataset}; budget now "
            f"rho={summary['budget_rho']}, remaining rho={summary['remaining_rho']} "
            f"(epsilon={summary['remaining_epsilon']:.4g} at delta={summary['delta']:g})"
        )
    return EXIT_OK
