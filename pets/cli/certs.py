"""The ``pets certs`` command: create a CA and issue party certificates.

A thin argparse shell over :mod:`pets.identity.files`; :func:`register` is
called by :mod:`pets.cli`. Each subcommand stores its handler as
``args.func``; a handler takes the parsed namespace and returns an exit code.
Library errors (:class:`~pets.errors.ConfigError`) propagate to the
top-level ``pets`` entry point, which reports them in one place.
"""

from __future__ import annotations

import argparse

from pets.cli.exits import EXIT_OK
from pets.identity.certificates import (
    DEFAULT_CA_NAME,
    DEFAULT_CA_VALID_DAYS,
    DEFAULT_VALID_DAYS,
    Role,
)
from pets.identity.files import init_ca, issue_to_dir

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``certs init`` and ``certs issue`` to the ``pets`` command's subparsers."""
    certs = subparsers.add_parser(
        "certs",
        help="create the CA and issue mutual-TLS certificates",
        description="Create the deployment CA and issue certificates that carry a "
        "party's role and name (mutual TLS between all pets parties).",
    )
    sub = certs.add_subparsers(dest="certs_command", metavar="COMMAND", required=True)

    p_init = sub.add_parser(
        "init",
        help="create a new CA (ca.pem, ca-key.pem) in DIR",
        description="Create a new CA in DIR: ca.pem (give to every party) and "
        "ca-key.pem (mode 0600; keep it where certificates are issued).",
    )
    p_init.add_argument("--dir", required=True, help="certificate directory (created if missing)")
    p_init.add_argument("--ca-name", default=DEFAULT_CA_NAME, help="CA subject common name")
    p_init.add_argument(
        "--days", type=int, default=DEFAULT_CA_VALID_DAYS, help="validity in days (%(default)s)"
    )
    p_init.add_argument("--force", action="store_true", help="replace an existing CA")
    p_init.set_defaults(func=_cmd_init)

    p_issue = sub.add_parser(
        "issue",
        help="issue a certificate (NAME.pem, NAME-key.pem) from the CA in DIR",
        description="Issue a certificate carrying ROLE and NAME (SAN URI "
        "pets://ROLE/NAME) from the CA in DIR.",
    )
    p_issue.add_argument("--dir", required=True, help="certificate directory holding the CA")
    p_issue.add_argument(
        "--role", required=True, choices=[r.value for r in Role], help="the party's role"
    )
    p_issue.add_argument("--name", required=True, help="party name, [A-Za-z0-9._-]{1,64}")
    p_issue.add_argument(
        "--host",
        action="append",
        dest="hosts",
        metavar="HOST",
        help="DNS name or IP a server role is reached at; repeatable "
        "(default for leader/helper: localhost, 127.0.0.1, ::1)",
    )
    p_issue.add_argument(
        "--days", type=int, default=DEFAULT_VALID_DAYS, help="validity in days (%(default)s)"
    )
    p_issue.add_argument("--force", action="store_true", help="replace an existing certificate")
    p_issue.set_defaults(func=_cmd_issue)


def _cmd_init(args: argparse.Namespace) -> int:
    written = init_ca(args.dir, name=args.ca_name, valid_days=args.days, overwrite=args.force)
    for path in written:
        print(f"wrote {path}")
    return EXIT_OK


def _cmd_issue(args: argparse.Namespace) -> int:
    written = issue_to_dir(
        args.dir,
        args.role,
        args.name,
        args.hosts,
        valid_days=args.days,
        overwrite=args.force,
    )
    for path in written:
        print(f"wrote {path}")
    return EXIT_OK
