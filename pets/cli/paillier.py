"""``pets paillier keygen``: make an analyst's Paillier key pair (:mod:`pets.paillier.keys`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pets.cli.exits import EXIT_OK
from pets.paillier.keys import (
    SUPPORTED_KEY_BITS,
    generate_keypair,
    public_key_fingerprint,
    public_key_to_bytes,
    save_private_key,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``paillier`` command and its ``keygen`` subcommand."""
    parser = subparsers.add_parser("paillier", help="Paillier key management")
    commands = parser.add_subparsers(dest="paillier_command", metavar="COMMAND", required=True)
    keygen = commands.add_parser(
        "keygen",
        help="generate a key pair; write the private key file (mode 0600)",
        description="Generate a Paillier key pair for an analyst. The private key file "
        "is JSON with n, p, q in decimal; keep it secret.",
    )
    keygen.add_argument("--out", required=True, type=Path, help="private key file to create")
    keygen.add_argument(
        "--bits", type=int, choices=SUPPORTED_KEY_BITS, default=2048, help="modulus size"
    )
    keygen.add_argument(
        "--public-out", type=Path, help="also write the public key (n, big-endian bytes)"
    )
    keygen.add_argument("--force", action="store_true", help="overwrite an existing key file")
    keygen.set_defaults(func=_keygen)


def _keygen(args: argparse.Namespace) -> int:
    public_key, private_key = generate_keypair(args.bits)
    save_private_key(args.out, private_key, overwrite=args.force)
    if args.public_out is not None:
        args.public_out.write_bytes(public_key_to_bytes(public_key))
    print(
        f"wrote {args.bits}-bit Paillier private key to {args.out} (mode 0600); "
        f"public key {public_key_fingerprint(public_key)}"
    )
    return EXIT_OK
