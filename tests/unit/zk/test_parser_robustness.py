"""Parsers of credentials, wallets, presentations and predicates raise only pets errors.

Issue 15 item 16: ``"²".isdigit()`` is true, ``int()`` of a 5,000-digit string
raises ``ValueError`` and a 300-bit ``max_value`` or ``expires_at`` raised
``OverflowError`` when the signature payload was built, so ``pets credential
verify`` crashed instead of printing "rejected". Every property below feeds
arbitrary values into one field of a valid document (or arbitrary text, or
arbitrary protobuf fields) and accepts only :class:`~pets.errors.PetsError`.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pets.cli import main
from pets.errors import InvalidInputError, InvalidProofError, PetsError
from pets.v1 import credential_pb2 as pb
from pets.zk import proto
from pets.zk import serialization as ser
from pets.zk.credential import (
    IssuerKey,
    create_presentation,
    holder_keygen,
    issue_to_holder,
    verify_presentation,
)
from pets.zk.policy import parse_policy, parse_predicate
from tests.unit.zk.helpers import rng

NONCE = b"\x11" * 32
CONTEXT = b"fuzz"
NOW = 1_700_000_000

#: Values that broke or nearly broke the old parsers.
NASTY_TEXT = [
    "²",
    "¹²³",
    "١٢٣",  # Arabic-Indic digits: str.isdigit() and int() accept them
    "９",  # fullwidth digit
    "9" * 5000,  # int() refuses more than 4300 digits with ValueError
    "1" + "0" * 100,  # far above 2^64
    "-1",
    " 1",
    "1_000",
    "+5",
    "0x10",
    "\ud800",  # lone surrogate: cannot be encoded as UTF-8
    "",
]
NASTY_INTS = [-1, 2**63, 2**64, 2**64 - 1, 2**300, -(2**300), 2**5000]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from(NASTY_INTS)
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.sampled_from(NASTY_TEXT)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


@functools.cache
def _holder_and_presentation() -> tuple[Any, Any, bytes]:
    issuer = IssuerKey.from_bytes(b"\x07" * 32)
    secret, _ = holder_keygen(rng=rng("fuzz-holder"))
    holder = issue_to_holder(
        issuer,
        "fuzz/v1",
        secret,
        {"age": 42, "purpose": "research"},
        NOW + 3600,
        max_values={"age": 150},
        rng=rng("fuzz-issue"),
    )
    pres = create_presentation(
        holder,
        ["age >= 18", "reveal purpose"],
        nonce=NONCE,
        context=CONTEXT,
        rng=rng("fuzz-present"),
    )
    return holder, pres, issuer.public_key


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _replaced(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def _presentation_doc() -> dict[str, Any]:
    return ser.presentation_to_dict(_holder_and_presentation()[1])


def _wallet_doc() -> dict[str, Any]:
    return ser.wallet_to_dict(_holder_and_presentation()[0])


PRES_PATHS = _paths(_presentation_doc())
WALLET_PATHS = _paths(_wallet_doc())
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _verify(pres: Any) -> None:
    verify_presentation(
        pres,
        trusted_issuers=[_holder_and_presentation()[2]],
        context=CONTEXT,
        now=NOW,
        expected_nonce=NONCE,
    )


def test_the_unmutated_documents_round_trip() -> None:
    _verify(ser.presentation_from_dict(_presentation_doc()))
    ser.wallet_from_dict(_wallet_doc())
    _verify(
        proto.presentation_from_proto(proto.presentation_to_proto(_holder_and_presentation()[1]))
    )


@pytest.mark.parametrize("text", NASTY_TEXT, ids=lambda t: ascii(t)[:14])
def test_max_value_must_be_ascii_digits_within_bounds(text: str) -> None:
    doc = _presentation_doc()
    doc["credential"]["attributes"][0]["max_value"] = text
    with pytest.raises(InvalidProofError, match="malformed presentation"):
        ser.presentation_from_dict(doc)
    msg = proto.presentation_to_proto(_holder_and_presentation()[1])
    try:
        msg.credential.attributes[0].max_value = text
    except ValueError:  # protobuf refuses lone surrogates itself
        return
    with pytest.raises(InvalidProofError, match="malformed presentation"):
        proto.presentation_from_proto(msg)


@pytest.mark.parametrize("value", NASTY_INTS, ids=lambda v: f"{v.bit_length()}-bit")
def test_expires_at_out_of_range_is_malformed(value: int) -> None:
    doc = _presentation_doc()
    doc["credential"]["expires_at"] = value
    with pytest.raises(InvalidProofError, match="malformed presentation"):
        ser.presentation_from_dict(doc)


@pytest.mark.parametrize("text", ["9" * 5000, "[" * 100_000, "1e99999", '"\\ud800"'])
def test_loads_raises_only_pets_errors(text: str) -> None:
    with contextlib.suppress(PetsError):
        ser.loads(text)


@pytest.mark.parametrize(
    "text",
    ["age >= ²", "age >= ١٢", "age >= " + "9" * 5000, "x in {" + "9" * 5000 + "}", "age < ９"],
)
def test_predicates_take_ascii_digits_only(text: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_predicate(text)


@FUZZ
@given(text=st.text(max_size=200) | st.sampled_from(NASTY_TEXT))
def test_loads_arbitrary_text(text: str) -> None:
    with contextlib.suppress(PetsError):
        ser.loads(text)


@FUZZ
@given(
    text=st.text(max_size=60)
    | st.builds(lambda a, b: f"age >= {a}{b}", st.sampled_from(NASTY_TEXT), st.text(max_size=3))
)
def test_parse_policy_arbitrary_text(text: str) -> None:
    with contextlib.suppress(InvalidInputError):
        parse_policy(text)


@FUZZ
@given(path=st.sampled_from(PRES_PATHS), value=json_values)
def test_mutated_presentation_is_rejected_or_verified_never_crashes(
    path: tuple[Any, ...], value: Any
) -> None:
    doc = _replaced(_presentation_doc(), path, value)
    try:
        pres = ser.presentation_from_dict(doc)
    except InvalidProofError:
        return
    with contextlib.suppress(PetsError):
        _verify(pres)


@FUZZ
@given(path=st.sampled_from(WALLET_PATHS), value=json_values)
def test_mutated_wallet_raises_only_pets_errors(path: tuple[Any, ...], value: Any) -> None:
    try:
        holder = ser.wallet_from_dict(_replaced(_wallet_doc(), path, value))
    except PetsError:
        return
    with contextlib.suppress(PetsError):
        create_presentation(holder, ["age >= 18"], nonce=NONCE, context=CONTEXT)


attribute_messages = st.builds(
    pb.AttributeCommitment,
    name=st.text(max_size=8),
    kind=st.sampled_from(["int", "str", "", "float"]),
    max_value=st.sampled_from([*NASTY_TEXT[:-2], "150", "0"]) | st.text(max_size=8),
    commitment=st.binary(max_size=34),
)


@FUZZ
@given(
    attributes=st.lists(attribute_messages, max_size=3),
    expires_at=st.integers(-(2**63), 2**63 - 1),
    schema=st.text(max_size=8),
    use_real=st.booleans(),
    predicate=st.text(max_size=20) | st.sampled_from(["age >= ²", "age >= " + "9" * 5000]),
)
def test_arbitrary_proto_presentation_raises_only_pets_errors(
    attributes: list[Any], expires_at: int, schema: str, use_real: bool, predicate: str
) -> None:
    msg = proto.presentation_to_proto(_holder_and_presentation()[1])
    if not use_real:
        del msg.credential.attributes[:]
        msg.credential.attributes.extend(attributes)
    msg.credential.expires_at = expires_at
    msg.credential.schema_id = schema
    msg.predicates[0].predicate = predicate
    try:
        pres = proto.presentation_from_proto(msg)
    except InvalidProofError:
        return
    with contextlib.suppress(PetsError):
        _verify(pres)


@FUZZ
@given(data=st.binary(max_size=400))
def test_arbitrary_proto_bytes(data: bytes) -> None:
    from google.protobuf.message import DecodeError

    try:
        msg = pb.Presentation.FromString(data)
    except DecodeError:  # protobuf's own parser, before pets sees anything
        return
    with contextlib.suppress(InvalidProofError):
        proto.presentation_from_proto(msg)


def _cli(*argv: str) -> int:
    return main(["credential", *argv])


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_value", "²"), ("max_value", "9" * 5000), ("max_value", str(2**300))],
    ids=["superscript-2", "5000-digits", "2^300"],
)
def test_cli_verify_prints_rejected_for_malformed_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, value: str
) -> None:
    doc = _presentation_doc()
    doc["credential"]["attributes"][0][field] = value
    (tmp_path / "pres.json").write_text(json.dumps(doc))
    (tmp_path / "iss.pub").write_text(
        ser.dumps(ser.issuer_public_to_dict(_holder_and_presentation()[2]))
    )
    rc = _cli(
        "verify",
        "--presentation",
        str(tmp_path / "pres.json"),
        "--issuer-public-key",
        str(tmp_path / "iss.pub"),
        "--nonce",
        NONCE.hex(),
        "--context",
        CONTEXT.decode(),
        "--now",
        str(NOW),
    )
    assert rc == 1
    assert "presentation rejected" in capsys.readouterr().err


def test_cli_verify_prints_rejected_for_huge_expiry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _presentation_doc()
    doc["credential"]["expires_at"] = 2**300
    (tmp_path / "pres.json").write_text(json.dumps(doc))
    (tmp_path / "iss.pub").write_text(
        ser.dumps(ser.issuer_public_to_dict(_holder_and_presentation()[2]))
    )
    rc = _cli(
        "verify",
        "--presentation",
        str(tmp_path / "pres.json"),
        "--issuer-public-key",
        str(tmp_path / "iss.pub"),
        "--nonce",
        NONCE.hex(),
        "--context",
        CONTEXT.decode(),
    )
    assert rc == 1
    assert "presentation rejected" in capsys.readouterr().err


@FUZZ
@given(raw=st.binary(max_size=300) | st.sampled_from([b"\xff\xfe", b"[" * 5000, b"9" * 5000]))
def test_cli_presentation_bytes_are_rejected_not_crashing(raw: bytes) -> None:
    from pets.cli.credential import _presentation_json

    with contextlib.suppress(InvalidProofError):
        _presentation_json(raw)


def test_cli_issue_refuses_huge_integer_attributes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli("issuer-keygen", "--out", str(tmp_path / "iss.key")) == 0
    capsys.readouterr()
    rc = _cli(
        "issue",
        "--issuer-key",
        str(tmp_path / "iss.key"),
        "--schema",
        "s/v1",
        "--attr",
        "age=" + "9" * 5000,
        "--issuer-generates-holder-key",
        "--out",
        str(tmp_path / "w.json"),
    )
    assert rc == 1  # refused (pets.cli.exits.EXIT_FAILED)
    err = capsys.readouterr().err
    assert "--attr age must be at most" in err and "4300" not in err


@functools.cache
def _issuance_docs() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    from pets.zk.credential import create_issuance_request

    holder, _, _ = _holder_and_presentation()
    request = create_issuance_request(holder.holder_secret, schema_id="fuzz/v1", rng=rng("rq"))
    issued = ser.issued_to_dict(holder.credential, holder.values, holder.openings)
    return (
        ser.request_to_dict(request),
        issued,
        ser.holder_key_to_dict(holder.holder_secret),
    )


ISSUANCE_PATHS = [(i, path) for i, doc in enumerate(_issuance_docs()) for path in _paths(doc)]


@FUZZ
@given(where=st.sampled_from(ISSUANCE_PATHS), value=json_values)
def test_mutated_issuance_documents_raise_only_pets_errors(
    where: tuple[int, tuple[Any, ...]], value: Any
) -> None:
    from pets.zk.credential import accept_issued, verify_issuance_request

    which, path = where
    doc = _replaced(_issuance_docs()[which], path, value)
    with contextlib.suppress(PetsError):
        if which == 0:
            verify_issuance_request(ser.request_from_dict(doc), "fuzz/v1")
        elif which == 1:
            cred, values, openings = ser.issued_from_dict(doc)
            accept_issued(_holder_and_presentation()[0].holder_secret, cred, values, openings)
        else:
            ser.holder_secret_from_dict(doc)
