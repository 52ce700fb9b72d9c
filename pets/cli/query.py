"""``pets query``: submit an aggregate query, follow it, print the result.

The flags are turned into a :class:`pets.query.Query` here (that is parsing);
running it is :class:`pets.client.analyst.AnalystClient`. Exit status follows
:mod:`pets.cli.exits`, with :data:`~pets.cli.exits.EXIT_NO_RESULT` when the
query ended without a result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pets.cli.exits import EXIT_NO_RESULT, EXIT_OK, UsageError
from pets.errors import ConfigError, InvalidInputError
from pets.protocols import names as protocol_names

if TYPE_CHECKING:
    from pets.client.analyst import Outcome
    from pets.query import Query


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``pets query``."""
    p = sub.add_parser(
        "query",
        help="submit an aggregate query and print the result",
        description=(
            "Submit a query to the leader, show progress while holders contribute, then "
            "fetch every server's aggregate share, combine and decode them locally. Give "
            "the query as text (--query), as a JSON file (--query-file), or with flags."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  pets query --config analyst.toml --query \\\n"
            "      'mean(cost) from hospitals where age >= 65 group by prefecture'\n"
            "  pets query --config analyst.toml --dataset supply_chain --aggregate sum \\\n"
            "      --column kg_co2e --group-by stage --json\n"
            "  pets query --config analyst.toml --protocol paillier \\\n"
            "      --query 'count() from hospitals'\n"
            "  pets query --config analyst.toml --query \\\n"
            "      'mean(care_cost) from ltc linked to hospitals where hospitals.diagnosis = E \\\n"
            "       group by care_level min_intersection 20'\n"
            "      (a linked query: the people of ltc also in hospitals, matched by\n"
            "      pseudonymised ids; runs under --protocol linkage; the servers refuse a\n"
            "      matched set below [limits] min_intersection, default 10, which the query\n"
            '      may raise, never lower; nodes answer it only with "linkage" in their\n'
            "      [policy] protocols; see docs/LINKAGE.md)\n\n"
            "The query id is printed as soon as the leader accepts the query (stderr; with\n"
            "--json, the first line on stdout). A lost leader is re-attached to; a result\n"
            "can be fetched later with `pets result --config analyst.toml QUERY_ID`.\n\n"
            "exit status: 0 with a result; 3 when the query ended without one (for example\n"
            "fewer holders than min_holders contributed); 1 on an error."
        ),
    )
    p.add_argument(
        "--config",
        type=Path,
        required=True,
        help="analyst TOML file: name, schema, leader, [helpers], [tls]; a server run as "
        'several replicas takes a list of addresses, e.g. leader = ["10.0.0.1:7001", '
        '"10.0.0.2:7001"] (calls spread by gRPC round_robin; a replica that is down is '
        "skipped)",
    )
    src = p.add_argument_group("the query")
    src.add_argument("--query", dest="text", help="query text, e.g. 'sum(cost) from hospitals'")
    src.add_argument("--query-file", type=Path, help="a JSON query file (Query.to_json format)")
    src.add_argument("--dataset", help="the dataset to query (with --aggregate and friends)")
    src.add_argument(
        "--aggregate", choices=("count", "sum", "mean", "variance", "histogram", "vector_sum")
    )
    src.add_argument("--column", help="the column for sum/mean/variance/histogram")
    src.add_argument("--columns", help="comma-separated columns for vector_sum")
    src.add_argument("--where", help="filters, e.g. 'age >= 65 and sex = F'")
    src.add_argument("--group-by", help="comma-separated category columns")
    src.add_argument("--bins", help="comma-separated histogram bin edges")
    src.add_argument("--clip", help="LO,HI clipping bounds (narrow the schema's)")
    opt = p.add_argument_group("how it runs")
    opt.add_argument(
        "--protocol",
        choices=protocol_names(),
        default=None,
        help="additive: secret sharing over leader and helpers (the default for an ordinary "
        "query); paillier: a key pair made here, the leader alone aggregates; prio3: "
        "additive with a validity proof per contribution; linkage: record linkage, the "
        "default and the only choice for a linked query ('... linked to ...', "
        "docs/LINKAGE.md)",
    )
    opt.add_argument(
        "--min-holders",
        type=int,
        default=0,
        help="raise the server's floor of contributors (0: the floor)",
    )
    opt.add_argument(
        "--deadline",
        type=float,
        default=0.0,
        help="seconds until the query closes (0: the server default)",
    )
    opt.add_argument(
        "--close-after", type=int, default=0, help="close as soon as this many holders contributed"
    )
    opt.add_argument(
        "--max-holders",
        type=int,
        default=0,
        help="paillier: holders the packing leaves room for (default: 1000, or fewer "
        "when the query's sums could not be decoded exactly for that many)",
    )
    opt.add_argument(
        "--paillier-key",
        type=Path,
        help="paillier: use this private key file instead of a fresh key pair (keep it to "
        "fetch the result later with `pets result`)",
    )
    opt.add_argument(
        "--credential",
        type=Path,
        help="wallet file (from `pets credential accept`) to prove attributes with",
    )
    opt.add_argument(
        "--prove",
        action="append",
        metavar="PREDICATE",
        help="predicate to prove with --credential, e.g. 'accreditation >= 2' (repeatable)",
    )
    opt.add_argument(
        "--resume",
        metavar="QUERY_ID",
        help="follow a query submitted earlier (by a `pets query` that was interrupted or "
        "lost the leader) instead of submitting one; same as `pets result QUERY_ID`",
    )
    opt.add_argument(
        "--json",
        action="store_true",
        help='JSON Lines on stdout: {"event": "submitted", "query_id": ...} as soon as the '
        'leader accepted the query, then {"event": "outcome", ...} with the result',
    )
    opt.add_argument("--insecure", action="store_true", help="no TLS (local experiments only)")
    p.set_defaults(func=_query)


def _csv(text: str | None) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip()) if text else ()


def build_query(args: argparse.Namespace) -> Query:
    """The Query described by ``pets query`` arguments."""
    from pets.query import Query, parse_where

    given = [x is not None for x in (args.text, args.query_file, args.dataset)]
    if sum(given) != 1:
        raise InvalidInputError(
            "give the query exactly one way: --query, --query-file or --dataset"
        )
    if args.text:
        return Query.parse(args.text)
    if args.query_file:
        try:
            return Query.from_json(args.query_file.read_text())
        except FileNotFoundError:
            raise ConfigError(f"query file {args.query_file} does not exist") from None
    if not args.aggregate:
        raise InvalidInputError("--aggregate is required with --dataset")
    try:
        clip = tuple(float(x) for x in _csv(args.clip)) if args.clip else None
        bins = [float(b) for b in _csv(args.bins)] if args.bins else None
    except ValueError:
        raise InvalidInputError("--clip and --bins take comma-separated numbers") from None
    if clip is not None and len(clip) != 2:
        raise InvalidInputError("--clip takes two numbers: LO,HI")
    return Query.from_dict(
        {
            "dataset": args.dataset,
            "aggregate": args.aggregate,
            **({"column": args.column} if args.column else {}),
            **({"columns": list(_csv(args.columns))} if args.columns else {}),
            **({"where": [f.to_dict() for f in parse_where(args.where)]} if args.where else {}),
            **({"group_by": list(_csv(args.group_by))} if args.group_by else {}),
            **({"bins": bins} if bins else {}),
            **({"clip": list(clip)} if clip else {}),
        }
    )


def protocol_for(query: Query, chosen: str | None) -> str:
    """``--protocol``, or its default: linkage for a linked query, else additive."""
    if not query.is_linked:
        return chosen or "additive"
    if chosen not in (None, "linkage"):
        raise InvalidInputError(
            f"a linked query ('linked to ...') runs only under --protocol linkage, "
            f"not {chosen}; leave --protocol out or give --protocol linkage"
        )
    return "linkage"


def _query(args: argparse.Namespace) -> int:
    from pets.client.analyst import AnalystClient
    from pets.client.config import load_analyst_config

    if args.resume:
        if any(x is not None for x in (args.text, args.query_file, args.dataset)):
            raise UsageError("--resume QUERY_ID follows a query submitted earlier: give no query")
        return follow(args, args.resume)
    endpoints = load_analyst_config(args.config, insecure=args.insecure)
    analyst = AnalystClient(endpoints)
    query = build_query(args)
    options: dict[str, Any] = {
        "protocol": protocol_for(query, args.protocol),
        "min_holders": args.min_holders,
        "deadline_seconds": args.deadline,
        "close_after": args.close_after,
        "max_holders": args.max_holders,
    }
    if args.credential:
        from pets.zk import serialization as zk_files

        try:
            options["credential"] = zk_files.wallet_from_dict(
                zk_files.loads(args.credential.read_text())
            )
        except FileNotFoundError:
            raise ConfigError(f"wallet file {args.credential} does not exist") from None
        options["predicates"] = args.prove or []
    if args.paillier_key:
        from pets.paillier import load_private_key

        options["private_key"] = load_private_key(args.paillier_key)
    reporter = _Reporter(args)

    async def main() -> Outcome:
        try:
            with reporter.printer:
                return await analyst.run(
                    query,
                    on_status=reporter.printer.update,
                    on_submitted=lambda submitted: reporter.submitted(submitted.query_id),
                    on_reattach=reporter.reattach,
                    **options,
                )
        finally:
            await analyst.close()

    return reporter.outcome(query, asyncio.run(main()))


def follow(args: argparse.Namespace, query_id: str) -> int:
    """Follow a query submitted earlier to its end and print it: ``pets result``,
    ``pets query --resume``. A Paillier query needs ``--paillier-key``."""
    from pets.client.analyst import AnalystClient
    from pets.client.config import load_analyst_config

    endpoints = load_analyst_config(args.config, insecure=args.insecure)
    analyst = AnalystClient(endpoints)
    private_key = None
    if args.paillier_key:
        from pets.paillier import load_private_key

        private_key = load_private_key(args.paillier_key)
    reporter = _Reporter(args, f"following query {query_id} ...")

    async def main() -> tuple[Query, Outcome]:
        try:
            with reporter.printer:
                return await analyst.resume(
                    query_id,
                    private_key=private_key,
                    on_status=reporter.printer.update,
                    on_reattach=reporter.reattach,
                )
        finally:
            await analyst.close()

    query, outcome = asyncio.run(main())
    return reporter.outcome(query, outcome)


class _Reporter:
    """What ``pets query`` and ``pets result`` print while they wait, and at the end.

    With ``--json`` stdout is JSON Lines: a first line
    ``{"event": "submitted", "query_id": ...}`` as soon as the leader accepted
    the query (``pets query`` only), and a last line ``{"event": "outcome", ...}``
    with the result. Without it, a line on stderr names the query id and how to
    fetch its result later, and the outcome is a table on stdout.
    """

    def __init__(self, args: argparse.Namespace, title: str = "submitting query ...") -> None:
        from pets.client.progress import StatusPrinter

        self.args = args
        self.printer = StatusPrinter(enabled=not args.json, title=title)

    def submitted(self, query_id: str) -> None:
        if self.args.json:
            print(json.dumps({"event": "submitted", "query_id": query_id}), flush=True)
        else:
            self.printer.note(
                f"query {query_id} submitted; if this command stops, fetch its result with "
                f"`pets result --config {self.args.config} {query_id}`"
            )

    def reattach(self, reason: str, delay: float) -> None:
        text = f"leader unreachable ({reason}); re-attaching in {delay:.1f} s"
        if self.args.json:
            print(f"pets: {text}", file=sys.stderr, flush=True)
        else:
            self.printer.note(text)

    def outcome(self, query: Query, outcome: Outcome) -> int:
        from pets.client.render import outcome_json, print_outcome

        if self.args.json:
            print(json.dumps({"event": "outcome", **outcome_json(query, outcome)}, sort_keys=True))
        else:
            print_outcome(query, outcome)
        return EXIT_OK if outcome.ok else EXIT_NO_RESULT
