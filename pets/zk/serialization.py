"""JSON forms of credentials, holder keys, wallets, issuance requests, issuer keys, presentations.

Human-readable, movable files: bytes are lowercase hex, big integers decimal
strings (ASCII digits, bounded, read by :func:`pets.zk.policy.parse_decimal`),
every document carries ``"type"`` and ``"version"``. Parsing is
strict (unknown types, wrong lengths, out-of-range numbers and bad encodings raise
:class:`~pets.errors.InvalidInputError`; a malformed *presentation* raises
:class:`~pets.errors.InvalidProofError`, like any malformed proof). Holder
keys, wallets, issued credentials (values and blindings) and issuer keys
contain secrets: write them with owner-only permissions (the CLI does).
Issuance requests and credentials are public.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from pets.errors import InvalidInputError, InvalidProofError, PetsError
from pets.zk.credential import (
    AttributeCommitment,
    Credential,
    HolderCredential,
    IssuanceRequest,
    IssuerKey,
    Presentation,
    Value,
)
from pets.zk.group import Group, get_group
from pets.zk.pedersen import Opening
from pets.zk.policy import parse_decimal, parse_predicate

VERSION = 1


def _hex(data: bytes) -> str:
    return bytes(data).hex()


def _unhex(value: Any, what: str, length: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a hex string")
    try:
        data = bytes.fromhex(value)
    except ValueError:
        raise InvalidInputError(f"{what} is not valid hex") from None
    if length is not None and len(data) != length:
        raise InvalidInputError(f"{what} must be {length} bytes")
    return data


def _check_type(doc: Any, kind: str) -> dict[str, Any]:
    if not isinstance(doc, dict) or doc.get("type") != kind or doc.get("version") != VERSION:
        raise InvalidInputError(f"not a document of type {kind!r} (version {VERSION})")
    return doc


def _field(doc: dict[str, Any], name: str, typ: type) -> Any:
    value = doc.get(name)
    if not isinstance(value, typ) or isinstance(value, bool):
        raise InvalidInputError(f"field {name!r} is missing or has the wrong type")
    return value


def credential_to_dict(cred: Credential) -> dict[str, Any]:
    return {
        "type": "pets-credential",
        "version": VERSION,
        "schema_id": cred.schema_id,
        "issuer_public_key": _hex(cred.issuer_public_key),
        "holder_public_key": _hex(cred.holder_public_key.to_bytes()),
        "expires_at": cred.expires_at,
        "attributes": [
            {
                "name": a.name,
                "kind": a.kind,
                "max_value": str(a.max_value),
                "commitment": _hex(a.commitment.to_bytes()),
            }
            for a in cred.attributes
        ],
        "signature": _hex(cred.signature),
    }


def credential_from_dict(doc: Any, group: Group | None = None) -> Credential:
    group = get_group() if group is None else group
    d = _check_type(doc, "pets-credential")
    attrs = []
    for item in _field(d, "attributes", list):
        if not isinstance(item, dict):
            raise InvalidInputError("attribute entries must be objects")
        kind = _field(item, "kind", str)
        if kind not in ("int", "str"):
            raise InvalidInputError("attribute kind must be 'int' or 'str'")
        attrs.append(
            AttributeCommitment(
                _field(item, "name", str),
                kind,
                parse_decimal(item.get("max_value"), "max_value"),
                group.point_from_bytes(_unhex(item.get("commitment"), "commitment")),
            )
        )
    return Credential(
        _field(d, "schema_id", str),
        _unhex(d.get("issuer_public_key"), "issuer_public_key", 32),
        group.point_from_bytes(_unhex(d.get("holder_public_key"), "holder_public_key")),
        _field(d, "expires_at", int),
        tuple(attrs),
        _unhex(d.get("signature"), "signature", 64),
    )


def wallet_to_dict(holder: HolderCredential) -> dict[str, Any]:
    """The holder's secret file: credential, holder secret key, attribute values and openings."""
    return {
        "type": "pets-holder-credential",
        "version": VERSION,
        "credential": credential_to_dict(holder.credential),
        "holder_secret_key": _hex(Group.scalar_to_bytes(holder.holder_secret)),
        "attributes": _openings_to_dict(holder.values, holder.openings),
    }


def wallet_from_dict(doc: Any, group: Group | None = None) -> HolderCredential:
    group = get_group() if group is None else group
    d = _check_type(doc, "pets-holder-credential")
    cred = credential_from_dict(d.get("credential"), group)
    secret = Group.scalar_from_bytes(_unhex(d.get("holder_secret_key"), "holder_secret_key", 32))
    values, openings = _openings_from_dict(cred, d.get("attributes"), group, "wallet")
    return HolderCredential(cred, secret, values, openings)


def _openings_to_dict(
    values: Mapping[str, Value], openings: Mapping[str, Opening]
) -> dict[str, Any]:
    return {
        name: {
            "value": values[name],
            "blinding": _hex(Group.scalar_to_bytes(openings[name].blinding)),
        }
        for name in sorted(openings)
    }


def _openings_from_dict(
    cred: Credential, items: Any, group: Group, what: str
) -> tuple[dict[str, Value], dict[str, Opening]]:
    from pets.zk.credential import encode_attribute

    if not isinstance(items, dict):
        raise InvalidInputError(f"field 'attributes' of the {what} must be an object")
    values: dict[str, Value] = {}
    openings: dict[str, Opening] = {}
    for a in cred.attributes:
        entry = items.get(a.name)
        if not isinstance(entry, dict):
            raise InvalidInputError(f"{what} has no opening for attribute {a.name!r}")
        value = entry.get("value")
        if not isinstance(value, int | str) or isinstance(value, bool):
            raise InvalidInputError(f"{what} value of {a.name!r} must be an integer or string")
        blinding = Group.scalar_from_bytes(_unhex(entry.get("blinding"), "blinding", 32))
        values[a.name] = value
        openings[a.name] = Opening(encode_attribute(value, group), blinding)
    return values, openings


def holder_key_to_dict(secret: int, group: Group | None = None) -> dict[str, Any]:
    """The holder's secret key file (made by ``pets credential request``)."""
    group = get_group() if group is None else group
    return {
        "type": "pets-holder-key",
        "version": VERSION,
        "holder_secret_key": _hex(Group.scalar_to_bytes(secret)),
        "holder_public_key": _hex(group.mul_base(secret).to_bytes()),
    }


def holder_secret_from_dict(doc: Any, group: Group | None = None) -> int:
    """The holder secret key of a holder key file, or of a wallet (to reuse its key)."""
    group = get_group() if group is None else group
    if isinstance(doc, dict) and doc.get("type") == "pets-holder-credential":
        return wallet_from_dict(doc, group).holder_secret
    d = _check_type(doc, "pets-holder-key")
    secret = Group.scalar_from_bytes(_unhex(d.get("holder_secret_key"), "holder_secret_key", 32))
    if secret == 0:
        raise InvalidInputError("holder_secret_key must not be zero")
    public = _unhex(d.get("holder_public_key"), "holder_public_key")
    if public != group.mul_base(secret).to_bytes():
        raise InvalidInputError("holder key file: public key does not match the secret key")
    return secret


def request_to_dict(request: IssuanceRequest) -> dict[str, Any]:
    """The holder's issuance request (public: safe to send to the issuer)."""
    return {
        "type": "pets-issuance-request",
        "version": VERSION,
        "schema_id": request.schema_id,
        "holder_public_key": _hex(request.holder_public_key.to_bytes()),
        "proof": _hex(request.proof),
    }


def request_from_dict(doc: Any, group: Group | None = None) -> IssuanceRequest:
    group = get_group() if group is None else group
    d = _check_type(doc, "pets-issuance-request")
    return IssuanceRequest(
        group.point_from_bytes(_unhex(d.get("holder_public_key"), "holder_public_key")),
        _field(d, "schema_id", str),
        _unhex(d.get("proof"), "proof"),
    )


def issued_to_dict(
    cred: Credential, values: Mapping[str, Value], openings: Mapping[str, Opening]
) -> dict[str, Any]:
    """What the issuer returns to the holder: the credential, values and blindings (no key)."""
    return {
        "type": "pets-issued-credential",
        "version": VERSION,
        "credential": credential_to_dict(cred),
        "attributes": _openings_to_dict(values, openings),
    }


def issued_from_dict(
    doc: Any, group: Group | None = None
) -> tuple[Credential, dict[str, Value], dict[str, Opening]]:
    group = get_group() if group is None else group
    d = _check_type(doc, "pets-issued-credential")
    cred = credential_from_dict(d.get("credential"), group)
    values, openings = _openings_from_dict(cred, d.get("attributes"), group, "issued credential")
    return cred, values, openings


def issuer_key_to_dict(key: IssuerKey) -> dict[str, Any]:
    return {
        "type": "pets-issuer-key",
        "version": VERSION,
        "algorithm": "ed25519",
        "private_key": _hex(key.private_bytes()),
        "public_key": _hex(key.public_key),
    }


def issuer_key_from_dict(doc: Any) -> IssuerKey:
    d = _check_type(doc, "pets-issuer-key")
    key = IssuerKey.from_bytes(_unhex(d.get("private_key"), "private_key", 32))
    if "public_key" in d and _unhex(d["public_key"], "public_key", 32) != key.public_key:
        raise InvalidInputError("issuer key file: public key does not match the private key")
    return key


def issuer_public_to_dict(public_key: bytes) -> dict[str, Any]:
    return {
        "type": "pets-issuer-public-key",
        "version": VERSION,
        "algorithm": "ed25519",
        "public_key": _hex(public_key),
    }


def issuer_public_from_dict(doc: Any) -> bytes:
    if isinstance(doc, dict) and doc.get("type") == "pets-issuer-key":
        return issuer_key_from_dict(doc).public_key
    d = _check_type(doc, "pets-issuer-public-key")
    return _unhex(d.get("public_key"), "public_key", 32)


def presentation_to_dict(p: Presentation) -> dict[str, Any]:
    return {
        "type": "pets-presentation",
        "version": VERSION,
        "credential": credential_to_dict(p.credential),
        "nonce": _hex(p.nonce),
        "context": _hex(p.context),
        "predicates": [
            {"predicate": str(pred), "proof": _hex(proof)}
            for pred, proof in zip(p.predicates, p.proofs, strict=True)
        ],
        "revealed": dict(p.revealed),
        "holder_proof": _hex(p.holder_proof),
    }


def presentation_from_dict(doc: Any, group: Group | None = None) -> Presentation:
    """Strict parse; any malformation raises InvalidProofError."""
    try:
        d = _check_type(doc, "pets-presentation")
        cred = credential_from_dict(d.get("credential"), group)
        preds, proofs = [], []
        for item in _field(d, "predicates", list):
            if not isinstance(item, dict):
                raise InvalidInputError("predicate entries must be objects")
            preds.append(parse_predicate(_field(item, "predicate", str)))
            proofs.append(_unhex(item.get("proof"), "proof"))
        revealed = _field(d, "revealed", dict)
        for value in revealed.values():
            if not isinstance(value, int | str) or isinstance(value, bool):
                raise InvalidInputError("revealed values are integers or strings")
        return Presentation(
            cred,
            _unhex(d.get("nonce"), "nonce"),
            _unhex(d.get("context"), "context"),
            tuple(preds),
            dict(revealed),
            _unhex(d.get("holder_proof"), "holder_proof"),
            tuple(proofs),
        )
    except PetsError as exc:
        raise InvalidProofError(f"malformed presentation: {exc}") from None


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


#: Deepest JSON nesting accepted; documents here nest 4 levels. CPython's C decoder
#: recurses per level and can overflow the C stack (a crash, not an exception) first.
MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def _json_depth(text: str) -> int:
    depth = deepest = 0
    for ch in _JSON_BRACKET.findall(_JSON_STRING.sub('""', text)):
        depth += 1 if ch in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def loads(text: str) -> Any:
    """Parse JSON; any failure (syntax, a >4300-digit number, deep nesting) is InvalidInputError."""
    if _json_depth(text) > MAX_JSON_DEPTH:
        raise InvalidInputError(f"not valid JSON here: nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"not valid JSON: {exc.msg} (line {exc.lineno})") from None
    except (ValueError, RecursionError):
        raise InvalidInputError(
            "not valid JSON: a number is too long or nesting too deep"
        ) from None
