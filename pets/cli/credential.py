"""The ``pets credential`` command: a thin shell over :mod:`pets.zk`.

Subcommands, by role::

    issuer-keygen --out issuer.key [--public-out issuer.pub]           (issuer)
    request --schema ID --key-out holder.key --out request.json        (holder)
            [--holder-key FILE instead of --key-out, to reuse a key or wallet]
    issue   --issuer-key issuer.key --schema ID --attr age=42 [--attr ...]
            [--max age=150] [--expires-in SECONDS | --expires-at UNIX]
            --request request.json --out issued.json                     (issuer)
            [--credential-out cred.json]
    accept  --holder-key holder.key --issued issued.json --out wallet.json  (holder)
    nonce                                                               (verifier)
    present --wallet wallet.json --nonce HEX --context STR
            (--predicate "age >= 18" ... | --policy "...") --out presentation.json
    verify  --presentation presentation.json --issuer-public-key issuer.pub
            --nonce HEX --context STR [--policy "..." --schema ID] [--now UNIX]

The holder makes its own key: ``request`` proves possession of it (a Schnorr
proof bound to the schema), ``issue --request`` checks that proof and signs
to the holder's public key, and ``accept`` checks the result and writes the
wallet. The issuer never sees the holder's secret key (issue 15 item 17).
``issue --issuer-generates-holder-key`` keeps the old one-step flow, in which
the issuer makes the key and so can present as the holder; it says so.

Handlers only parse arguments, read and write files and call the library.
Exit statuses follow :mod:`pets.cli.exits`: 0 done; 1 failed or refused (a
rejected presentation, an issuance request that does not verify, a file that
cannot be read or would be overwritten: any :class:`pets.errors.PetsError`,
reported by :func:`pets.cli.main`); 2 a command line that is inconsistent
(:class:`pets.cli.exits.UsageError`, e.g. ``--policy`` without ``--schema``).
Files holding secrets (issuer keys, holder keys, issued credentials, wallets)
are written atomically with mode 0600 (:func:`pets.runtime.atomicfile.write_atomic`).
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pets.cli.exits import EXIT_FAILED, EXIT_OK, UsageError
from pets.errors import InvalidInputError, InvalidProofError
from pets.runtime.atomicfile import write_atomic
from pets.zk import serialization as ser
from pets.zk.credential import (
    HolderCredential,
    IssuerKey,
    accept_issued,
    create_issuance_request,
    create_presentation,
    holder_keygen,
    issue_to_holder,
    verify_presentation,
)
from pets.zk.policy import check_policy, parse_decimal, parse_policy, parse_predicate


def _read_json(path: str) -> Any:
    return ser.loads(Path(path).read_text(encoding="utf-8"))


def _write(path: str, text: str, *, secret: bool = False, overwrite: bool = True) -> None:
    if secret:
        write_atomic(path, text.encode("utf-8"), overwrite=overwrite)
    else:
        Path(path).write_text(text, encoding="utf-8")


def _parse_value(name: str, text: str) -> int | str:
    """An all-ASCII-digit value is an integer (bounded, like every parsed integer)."""
    if text.isascii() and text.isdigit():
        return parse_decimal(text, f"--attr {name}")
    return text


def _pairs(items: list[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"{what} must look like NAME=VALUE, got {item!r}")
        out[name.strip()] = value.strip()
    return out


def _cmd_issuer_keygen(args: argparse.Namespace) -> int:
    key = IssuerKey.generate()
    _write(args.out, ser.dumps(ser.issuer_key_to_dict(key)), secret=True)
    if args.public_out:
        _write(args.public_out, ser.dumps(ser.issuer_public_to_dict(key.public_key)))
    print(f"issuer public key: {key.public_key.hex()}")
    return EXIT_OK


ISSUER_KNOWS_KEY_WARNING = (
    "warning: --issuer-generates-holder-key: the issuer learns the holder's secret key "
    "and can present this credential as the holder. Use `pets credential request` on the "
    "holder's side and `pets credential issue --request` instead."
)


def _expires_at(args: argparse.Namespace) -> int:
    if args.expires_at is not None:
        return int(args.expires_at)
    return int(time.time()) + int(args.expires_in)


def _cmd_request(args: argparse.Namespace) -> int:
    if (args.key_out is None) == (args.holder_key is None):
        raise UsageError("give exactly one of --key-out (make a new key) or --holder-key")
    if args.holder_key:
        secret = ser.holder_secret_from_dict(_read_json(args.holder_key))
    else:
        secret, _ = holder_keygen()
    request = create_issuance_request(secret, schema_id=args.schema)
    if args.key_out:  # never overwrite a holder key: it may hold credentials already
        _write(
            args.key_out, ser.dumps(ser.holder_key_to_dict(secret)), secret=True, overwrite=False
        )
    _write(args.out, ser.dumps(ser.request_to_dict(request)))
    where = f"; holder key in {args.key_out}" if args.key_out else ""
    print(f"issuance request for {args.schema!r} written to {args.out}{where}")
    return EXIT_OK


def _cmd_issue(args: argparse.Namespace) -> int:
    if (args.request is None) == (not args.issuer_generates_holder_key):
        raise UsageError(
            "give --request FILE (the holder's `pets credential request`); "
            "--issuer-generates-holder-key is the insecure alternative"
        )
    issuer = ser.issuer_key_from_dict(_read_json(args.issuer_key))
    attributes = {k: _parse_value(k, v) for k, v in _pairs(args.attr, "--attr").items()}
    max_values = {k: parse_decimal(v, f"--max {k}") for k, v in _pairs(args.max, "--max").items()}
    expires_at = _expires_at(args)
    if args.request:
        request = ser.request_from_dict(_read_json(args.request))
        cred, openings = issuer.issue_for_request(
            request, args.schema, attributes, expires_at, max_values=max_values
        )
        _write(args.out, ser.dumps(ser.issued_to_dict(cred, attributes, openings)), secret=True)
        what = "the holder's `pets credential accept`"
    else:
        print(ISSUER_KNOWS_KEY_WARNING, file=sys.stderr)
        secret, _ = holder_keygen()
        holder: HolderCredential = issue_to_holder(
            issuer, args.schema, secret, attributes, expires_at, max_values=max_values
        )
        cred = holder.credential
        _write(args.out, ser.dumps(ser.wallet_to_dict(holder)), secret=True)
        what = "a holder wallet"
    if args.credential_out:
        _write(args.credential_out, ser.dumps(ser.credential_to_dict(cred)))
    print(
        f"issued credential {args.schema!r} with {len(attributes)} attribute(s) "
        f"to {args.out} ({what})"
    )
    return EXIT_OK


def _cmd_accept(args: argparse.Namespace) -> int:
    secret = ser.holder_secret_from_dict(_read_json(args.holder_key))
    cred, values, openings = ser.issued_from_dict(_read_json(args.issued))
    holder = accept_issued(secret, cred, values, openings)
    _write(args.out, ser.dumps(ser.wallet_to_dict(holder)), secret=True)
    print(f"credential {cred.schema_id!r} checked and stored in {args.out}")
    return EXIT_OK


def _cmd_nonce(args: argparse.Namespace) -> int:
    print(secrets.token_hex(32))
    return EXIT_OK


def _nonce(text: str) -> bytes:
    try:
        nonce = bytes.fromhex(text)
    except ValueError:
        raise UsageError("--nonce must be hex") from None
    if not 16 <= len(nonce) <= 64:
        raise UsageError("--nonce must be 16 to 64 bytes")
    return nonce


def _cmd_present(args: argparse.Namespace) -> int:
    holder = ser.wallet_from_dict(_read_json(args.wallet))
    if args.policy:
        predicates = list(parse_policy(args.policy).predicates)
    else:
        predicates = [parse_predicate(p) for p in args.predicate or []]
    if not predicates:
        raise UsageError("give at least one --predicate or a --policy")
    presentation = create_presentation(
        holder, predicates, nonce=_nonce(args.nonce), context=args.context
    )
    _write(args.out, ser.dumps(ser.presentation_to_dict(presentation)))
    print(f"presentation of {len(predicates)} predicate(s) written to {args.out}")
    return EXIT_OK


def _presentation_json(raw: bytes) -> Any:
    """A presentation file's JSON; anything unreadable is a malformed presentation."""
    try:
        return ser.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, InvalidInputError) as exc:
        raise InvalidProofError(
            f"malformed presentation: {exc.reason if isinstance(exc, UnicodeDecodeError) else exc}"
        ) from None


def _cmd_verify(args: argparse.Namespace) -> int:
    if args.policy and not args.schema:
        raise UsageError(
            "--policy needs --schema: without it any schema from the trusted issuer "
            "would be accepted as proving the policy"
        )
    trusted = ser.issuer_public_from_dict(_read_json(args.issuer_public_key))
    raw = Path(args.presentation).read_bytes()
    now = args.now if args.now is not None else time.time()
    try:
        presentation = ser.presentation_from_dict(_presentation_json(raw))
        verified = verify_presentation(
            presentation,
            trusted_issuers=[trusted],
            context=args.context,
            now=now,
            expected_nonce=_nonce(args.nonce),
        )
        if args.schema is not None and verified.schema_id != args.schema:
            raise InvalidProofError(
                f"the credential's schema is {verified.schema_id!r}, not {args.schema!r}"
            )
        proven = (
            check_policy(args.policy, verified.predicates, max_values=verified.max_values)
            if args.policy
            else verified.predicate_strings
        )
    except InvalidProofError as exc:  # includes CredentialError
        print(f"presentation rejected: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"presentation accepted (schema {verified.schema_id!r})")
    for text in proven:
        print(f"  proven: {text}")
    for name, value in sorted(verified.revealed.items()):
        print(f"  revealed: {name} = {value}")
    return EXIT_OK


def _run(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A handler whose unreadable or unwritable files fail as a :class:`PetsError` (exit 1)."""

    def wrapped(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            raise InvalidInputError(f"{exc.strerror or exc}{where}") from None

    return wrapped


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``credential`` command and its subcommands."""
    cred = subparsers.add_parser(
        "credential",
        help="attribute credentials: issue, present and verify zero-knowledge proofs",
        description=(
            "An issuer signs commitments to a holder's attributes; the holder proves "
            "predicates over them (age >= 18, purpose in {research}, ...) to a verifier "
            "without revealing the values. For analysts of a leader with a [policy], issue "
            "the credential with --attr subject=<analyst certificate name>: the leader "
            "checks that the credential was issued to the analyst presenting it."
        ),
        epilog=(
            "round trip:\n"
            "  pets credential issuer-keygen --out issuer.key --public-out issuer.pub\n"
            "  pets credential request --schema person/v1 --key-out holder.key \\\n"
            "      --out request.json                                  # holder\n"
            "  pets credential issue --issuer-key issuer.key --schema person/v1 \\\n"
            "      --attr age=42 --max age=150 --expires-in 86400 \\\n"
            "      --request request.json --out issued.json            # issuer\n"
            "  pets credential accept --holder-key holder.key --issued issued.json \\\n"
            "      --out wallet.json                                   # holder\n"
            "  pets credential present --wallet wallet.json --nonce HEX --context demo \\\n"
            "      --predicate 'age >= 18' --out presentation.json\n"
            "  pets credential verify --presentation presentation.json \\\n"
            "      --issuer-public-key issuer.pub --nonce HEX --context demo \\\n"
            "      --policy 'age >= 18' --schema person/v1"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = cred.add_subparsers(dest="credential_command", required=True)

    p = sub.add_parser("issuer-keygen", help="create an Ed25519 issuer key")
    p.add_argument("--out", required=True, help="issuer key file (secret, mode 0600)")
    p.add_argument("--public-out", help="also write the public key file for verifiers")
    p.set_defaults(func=_run(_cmd_issuer_keygen))

    p = sub.add_parser(
        "request",
        help="holder: make a key pair and an issuance request proving possession of it",
    )
    p.add_argument("--schema", required=True, help="schema id to request, e.g. researcher/v1")
    p.add_argument("--key-out", help="new holder key file (secret, mode 0600; never overwritten)")
    p.add_argument("--holder-key", help="reuse this holder key file or wallet instead")
    p.add_argument("--out", required=True, help="request file to send to the issuer (public)")
    p.set_defaults(func=_run(_cmd_request))

    p = sub.add_parser(
        "issue", help="issuer: sign a credential to the public key of a holder's request"
    )
    p.add_argument("--issuer-key", required=True)
    p.add_argument("--schema", required=True, help="schema id, e.g. researcher/v1")
    p.add_argument("--attr", action="append", required=True, help="NAME=VALUE (repeatable)")
    p.add_argument("--max", action="append", help="NAME=INT certified maximum of an integer")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--expires-at", type=int, help="expiry, Unix seconds")
    when.add_argument("--expires-in", type=int, default=365 * 86400, help="seconds from now")
    p.add_argument("--request", help="the holder's request file (pets credential request)")
    p.add_argument(
        "--issuer-generates-holder-key",
        action="store_true",
        help=(
            "INSECURE: make the holder's key here and write a whole wallet; the issuer "
            "then knows the key and can present as the holder (tests and demos only)"
        ),
    )
    p.add_argument(
        "--out",
        required=True,
        help="issued credential for the holder (secret: values and blindings, mode 0600)",
    )
    p.add_argument("--credential-out", help="also write the public credential")
    p.set_defaults(func=_run(_cmd_issue))

    p = sub.add_parser(
        "accept", help="holder: check an issued credential against your key; write the wallet"
    )
    p.add_argument("--holder-key", required=True, help="the key file made by `request`")
    p.add_argument("--issued", required=True, help="the issuer's output of `issue --request`")
    p.add_argument("--out", required=True, help="holder wallet file (secret, mode 0600)")
    p.set_defaults(func=_run(_cmd_accept))

    p = sub.add_parser("nonce", help="print a fresh verifier nonce (hex)")
    p.set_defaults(func=_run(_cmd_nonce))

    p = sub.add_parser("present", help="prove predicates over a credential for a verifier")
    p.add_argument("--wallet", required=True)
    p.add_argument("--nonce", required=True, help="the verifier's nonce (hex)")
    p.add_argument("--context", required=True, help="the verifier's context string")
    p.add_argument("--predicate", action="append", help='e.g. "age >= 18" (repeatable)')
    p.add_argument("--policy", help='e.g. "age >= 18 and purpose in {research}"')
    p.add_argument("--out", required=True)
    p.set_defaults(func=_run(_cmd_present))

    p = sub.add_parser("verify", help="verify a presentation (exit 1 if rejected)")
    p.add_argument("--presentation", required=True)
    p.add_argument("--issuer-public-key", required=True, help="trusted issuer public key file")
    p.add_argument("--nonce", required=True, help="the nonce this verifier issued (hex)")
    p.add_argument("--context", required=True)
    p.add_argument("--policy", help="policy the presentation must imply (needs --schema)")
    p.add_argument("--schema", help="schema id the credential must have")
    p.add_argument("--now", type=float, help="override the current time (Unix seconds)")
    p.set_defaults(func=_run(_cmd_verify))
