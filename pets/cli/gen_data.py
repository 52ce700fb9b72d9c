"""``pets gen-data``: write deterministic synthetic datasets (:mod:`pets.devtools.datagen`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pets.cli.exits import EXIT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``pets gen-data``."""
    p = sub.add_parser(
        "gen-data",
        help="write deterministic synthetic datasets for N holders",
        description=(
            "Write a schema (schema.toml) and one folder of data files per holder. "
            "The data is synthetic and deterministic for a given --seed."
        ),
    )
    p.add_argument(
        "--kind",
        choices=("hospitals", "supply_chain", "linked"),
        required=True,
        help="linked: hospitals, municipal long-term care (ltc) and insurer claims about one "
        "population, with messy pseudonymous ids and linkage domain 'resident' (N holders of "
        "each; out/linkage.json lists the known overlaps)",
    )
    p.add_argument("--holders", type=int, default=5, help="number of holders (default 5)")
    p.add_argument("--rows", type=int, default=2000, help="rows per holder (default 2000)")
    p.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--format",
        choices=("parquet", "csv"),
        default=None,
        help="write with the chunked columnar generator (10^7 rows per holder in seconds; "
        "pets.devtools.gen_fast) as Parquet or CSV; default: the demo's small CSV generator",
    )
    p.set_defaults(func=_gen_data)


def _gen_data(args: argparse.Namespace) -> int:
    if args.format is not None:
        from pets.devtools.gen_fast import write_generated_fast

        written = write_generated_fast(
            args.kind, args.holders, args.rows, args.seed, args.out, args.format
        )
    else:
        from pets.devtools.datafiles import write_generated

        written = write_generated(args.kind, args.holders, args.rows, args.seed, args.out)
    for path in written:
        print(path)
    return EXIT_OK
