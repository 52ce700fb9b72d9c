"""The ``pets credential`` command: a thin shell over :mod:`pets.zk`.

Subcommands::

    issuer-keygen --out issuer.key [--public-out issuer.pub]
    issue   --issuer-key issuer.key --schema ID --attr age=42 [--attr ...]
            [--max age=150] (--expires-in SECONDS | --expires-at UNIX)
            [--holder-key FILE] --out wallet.json [--credential-out cred.json]
    nonce                                     (verifier: print a fresh nonce)
    present --wallet wallet.json --nonce HEX --context STR
            (--predicate "age >= 18" ... | --policy "...") --out presentation.json
    verify  --presentation presentation.json --issuer-public-key issuer.pub
            --nonce HEX --context STR [--policy "..."] [--now UNIX]

Handlers only parse arguments, read and write files and call the library;
each returns an exit code: 0 success, 1 presentation rejected, 2 bad input.
Files holding secrets (issuer keys, holder wallets) are created with mode 0600.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from pets.errors import InvalidInputError, InvalidProofError, PetsError
from pets.zk import serialization as ser
from pets.zk.credential import (
    HolderCredential,
    IssuerKey,
    create_presentation,
    holder_keygen,
    verify_presentation,
)
from pets.zk.policy import check_policy, parse_policy, parse_predicate

EXIT_OK, EXIT_REJECTED, EXIT_BAD_INPUT = 0, 1, 2


def _err(message: str) -> None:
    print(f"pets credential: {message}", file=sys.stderr)


def _read_json(path: str) -> Any:
    return ser.loads(Path(path).read_text(encoding="utf-8"))


def _write(path: str, text: str, *, secret: bool = False) -> None:
    if secret:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # also when the file existed with wider permissions
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        Path(path).write_text(text, encoding="utf-8")


def _parse_value(text: str) -> int | str:
    return int(text) if text.isascii() and text.isdigit() else text


def _pairs(items: list[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"{what} must look like NAME=VALUE, got {item!r}")
        out[name.strip()] = value.strip()
    return out


def _cmd_issuer_keygen(args: argparse.Namespace) -> int:
    key = IssuerKey.generate()
    _write(args.out, ser.dumps(ser.issuer_key_to_dict(key)), secret=True)
    if args.public_out:
        _write(args.public_out, ser.dumps(ser.issuer_public_to_dict(key.public_key)))
    print(f"issuer public key: {key.public_key.hex()}")
    return EXIT_OK


def _cmd_issue(args: argparse.Namespace) -> int:
    issuer = ser.issuer_key_from_dict(_read_json(args.issuer_key))
    attributes = {k: _parse_value(v) for k, v in _pairs(args.attr, "--attr").items()}
    max_values = {k: int(v) for k, v in _pairs(args.max, "--max").items()}
    if args.holder_key:
        secret = ser.wallet_from_dict(_read_json(args.holder_key)).holder_secret
    else:
        secret, _ = holder_keygen()
    expires_at = (
        args.expires_at if args.expires_at is not None else int(time.time()) + args.expires_in
    )
    from pets.zk.credential import issue_to_holder

    holder: HolderCredential = issue_to_holder(
        issuer, args.schema, secret, attributes, expires_at, max_values=max_values
    )
    _write(args.out, ser.dumps(ser.wallet_to_dict(holder)), secret=True)
    if args.credential_out:
        _write(args.credential_out, ser.dumps(ser.credential_to_dict(holder.credential)))
    print(f"issued credential {args.schema!r} with {len(attributes)} attribute(s) to {args.out}")
    return EXIT_OK


def _cmd_nonce(args: argparse.Namespace) -> int:
    print(secrets.token_hex(32))
    return EXIT_OK


def _nonce(text: str) -> bytes:
    try:
        nonce = bytes.fromhex(text)
    except ValueError:
        raise ValueError("--nonce must be hex") from None
    if not 16 <= len(nonce) <= 64:
        raise ValueError("--nonce must be 16 to 64 bytes")
    return nonce


def _cmd_present(args: argparse.Namespace) -> int:
    holder = ser.wallet_from_dict(_read_json(args.wallet))
    if args.policy:
        predicates = list(parse_policy(args.policy).predicates)
    else:
        predicates = [parse_predicate(p) for p in args.predicate or []]
    if not predicates:
        raise ValueError("give at least one --predicate or a --policy")
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
        proven = (
            check_policy(args.policy, verified.predicates, max_values=verified.max_values)
            if args.policy
            else verified.predicate_strings
        )
    except InvalidProofError as exc:  # includes CredentialError
        print(f"presentation rejected: {exc}", file=sys.stderr)
        return EXIT_REJECTED
    print(f"presentation accepted (schema {verified.schema_id!r})")
    for text in proven:
        print(f"  proven: {text}")
    for name, value in sorted(verified.revealed.items()):
        print(f"  revealed: {name} = {value}")
    return EXIT_OK


def _run(handler: Any) -> Any:
    def wrapped(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except OSError as exc:
            _err(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
        except (PetsError, ValueError) as exc:
            _err(str(exc))
        return EXIT_BAD_INPUT

    return wrapped


def register(subparsers: Any) -> None:
    """Add the ``credential`` command (with its subcommands) to an argparse subparsers object."""
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
            "  pets credential issue --issuer-key issuer.key --schema person/v1 \\\n"
            "      --attr age=42 --max age=150 --expires-in 86400 --out wallet.json\n"
            "  pets credential present --wallet wallet.json --nonce HEX --context demo \\\n"
            "      --predicate 'age >= 18' --out presentation.json\n"
            "  pets credential verify --presentation presentation.json \\\n"
            "      --issuer-public-key issuer.pub --nonce HEX --context demo"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = cred.add_subparsers(dest="credential_command", required=True)

    p = sub.add_parser("issuer-keygen", help="create an Ed25519 issuer key")
    p.add_argument("--out", required=True, help="issuer key file (secret, mode 0600)")
    p.add_argument("--public-out", help="also write the public key file for verifiers")
    p.set_defaults(func=_run(_cmd_issuer_keygen))

    p = sub.add_parser("issue", help="issue a credential; writes the holder's wallet")
    p.add_argument("--issuer-key", required=True)
    p.add_argument("--schema", required=True, help="schema id, e.g. researcher/v1")
    p.add_argument("--attr", action="append", required=True, help="NAME=VALUE (repeatable)")
    p.add_argument("--max", action="append", help="NAME=INT certified maximum of an integer")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--expires-at", type=int, help="expiry, Unix seconds")
    when.add_argument("--expires-in", type=int, default=365 * 86400, help="seconds from now")
    p.add_argument("--holder-key", help="existing wallet whose holder key to reuse")
    p.add_argument("--out", required=True, help="holder wallet file (secret, mode 0600)")
    p.add_argument("--credential-out", help="also write the public credential")
    p.set_defaults(func=_run(_cmd_issue))

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
    p.add_argument("--policy", help="policy the presentation must imply")
    p.add_argument("--now", type=float, help="override the current time (Unix seconds)")
    p.set_defaults(func=_run(_cmd_verify))
