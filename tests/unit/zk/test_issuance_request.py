"""Issuing to a holder-generated key with proof of possession (issue 15 item 17).

Before, ``pets credential issue`` generated the holder's secret key itself,
so the issuer could present as the holder. Now the default flow is:

1. holder: ``pets credential request`` makes the key pair and an issuance
   request carrying a Schnorr proof of possession of the key, bound to the
   schema;
2. issuer: ``pets credential issue --request FILE`` checks that proof and signs
   the attribute commitments to that public key; its output has no secret key;
3. holder: ``pets credential accept`` checks the signature, its key and every
   opening, and writes the wallet.

The old flow stays only behind ``--issuer-generates-holder-key``. Presentations
checked against a policy must also name the schema (``--schema``), since a
policy without a schema accepts any schema from a trusted issuer.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from pets.cli import main
from pets.errors import CredentialError, InvalidInputError, InvalidProofError
from pets.zk import serialization as ser
from pets.zk.credential import (
    IssuerKey,
    accept_issued,
    create_issuance_request,
    create_presentation,
    holder_keygen,
    verify_issuance_request,
    verify_presentation,
)
from pets.zk.group import get_group
from pets.zk.rng import DeterministicRng
from tests.unit.zk.helpers import BACKENDS, load_vectors, rng

NOW = 1_700_000_000


def run(*argv: str) -> int:
    return main(["credential", *argv])


# -- library -------------------------------------------------------------------------


def test_request_issue_accept_present_round_trip() -> None:
    issuer = IssuerKey.from_bytes(b"\x05" * 32)
    secret, public = holder_keygen(rng=rng("req-holder"))
    request = create_issuance_request(secret, schema_id="researcher/v1", rng=rng("req"))
    assert request.holder_public_key == public
    cred, openings = issuer.issue_for_request(
        request, "researcher/v1", {"age": 42}, NOW + 60, max_values={"age": 150}, rng=rng("i")
    )
    holder = accept_issued(secret, cred, {"age": 42}, openings)
    pres = create_presentation(holder, ["age >= 18"], nonce=b"\x01" * 32, context="c")
    verified = verify_presentation(
        pres, trusted_issuers=[issuer.public_key], context="c", now=NOW, expected_nonce=b"\x01" * 32
    )
    assert verified.predicate_strings == ["age >= 18"]


def test_request_without_possession_is_refused() -> None:
    issuer = IssuerKey.from_bytes(b"\x05" * 32)
    secret, _ = holder_keygen(rng=rng("a"))
    _, other_public = holder_keygen(rng=rng("b"))
    request = create_issuance_request(secret, schema_id="s/v1", rng=rng("r"))
    # Someone else's public key with this proof: refused.
    forged = type(request)(other_public, request.schema_id, request.proof)
    with pytest.raises(InvalidProofError, match="possession"):
        issuer.issue_for_request(forged, "s/v1", {"age": 1}, NOW + 60)
    # A request made for another schema: refused.
    with pytest.raises(InvalidProofError, match="schema"):
        issuer.issue_for_request(request, "other/v1", {"age": 1}, NOW + 60)


def test_accept_checks_key_signature_and_openings() -> None:
    issuer = IssuerKey.from_bytes(b"\x05" * 32)
    secret, _ = holder_keygen(rng=rng("acc"))
    request = create_issuance_request(secret, schema_id="s/v1", rng=rng("r"))
    cred, openings = issuer.issue_for_request(request, "s/v1", {"age": 30}, NOW + 60)
    with pytest.raises(InvalidInputError, match="does not open"):
        accept_issued(secret, cred, {"age": 31}, openings)
    other_secret, _ = holder_keygen(rng=rng("other"))
    with pytest.raises(InvalidInputError, match="holder key"):
        accept_issued(other_secret, cred, {"age": 30}, openings)
    import dataclasses

    with pytest.raises(CredentialError):
        accept_issued(secret, dataclasses.replace(cred, expires_at=NOW + 61), {"age": 30}, openings)


# -- command line -----------------------------------------------------------------------


def _holder_request(d: Path, schema: str = "researcher/v1") -> None:
    assert (
        run(
            "request",
            "--schema",
            schema,
            "--key-out",
            str(d / "holder.key"),
            "--out",
            str(d / "request.json"),
        )
        == 0
    )


def _issue(d: Path, *extra: str) -> int:
    return run(
        "issue",
        "--issuer-key",
        str(d / "iss.key"),
        "--schema",
        "researcher/v1",
        "--attr",
        "age=42",
        "--max",
        "age=150",
        "--expires-in",
        "3600",
        *extra,
    )


@pytest.fixture
def issuer_dir(tmp_path: Path) -> Path:
    assert (
        run(
            "issuer-keygen",
            "--out",
            str(tmp_path / "iss.key"),
            "--public-out",
            str(tmp_path / "iss.pub"),
        )
        == 0
    )
    return tmp_path


def test_cli_default_flow_keeps_the_holder_secret_on_the_holder_side(issuer_dir: Path) -> None:
    d = issuer_dir
    _holder_request(d)
    assert stat.S_IMODE((d / "holder.key").stat().st_mode) == 0o600
    holder_secret = json.loads((d / "holder.key").read_text())["holder_secret_key"]
    request_text = (d / "request.json").read_text()
    assert holder_secret not in request_text
    assert _issue(d, "--request", str(d / "request.json"), "--out", str(d / "issued.json")) == 0
    issued_text = (d / "issued.json").read_text()
    assert holder_secret not in issued_text and "holder_secret_key" not in issued_text
    assert (
        run(
            "accept",
            "--holder-key",
            str(d / "holder.key"),
            "--issued",
            str(d / "issued.json"),
            "--out",
            str(d / "wallet.json"),
        )
        == 0
    )
    wallet = ser.wallet_from_dict(json.loads((d / "wallet.json").read_text()))
    assert f"{wallet.holder_secret:064x}" == holder_secret
    nonce = "ab" * 32
    assert (
        run(
            "present",
            "--wallet",
            str(d / "wallet.json"),
            "--nonce",
            nonce,
            "--context",
            "q",
            "--predicate",
            "age >= 18",
            "--out",
            str(d / "pres.json"),
        )
        == 0
    )
    verify = [
        "verify",
        "--presentation",
        str(d / "pres.json"),
        "--issuer-public-key",
        str(d / "iss.pub"),
        "--nonce",
        nonce,
        "--context",
        "q",
    ]
    assert run(*verify, "--policy", "age >= 18", "--schema", "researcher/v1") == 0
    assert run(*verify, "--policy", "age >= 18", "--schema", "other/v1") == 1


def test_cli_issue_without_request_needs_the_explicit_flag(
    issuer_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = issuer_dir
    assert _issue(d, "--out", str(d / "w.json")) == 2
    assert "--request" in capsys.readouterr().err
    assert _issue(d, "--issuer-generates-holder-key", "--out", str(d / "w.json")) == 0
    assert "learns the holder's secret key" in capsys.readouterr().err


def test_cli_policy_without_schema_is_refused(
    issuer_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = issuer_dir
    assert _issue(d, "--issuer-generates-holder-key", "--out", str(d / "w.json")) == 0
    nonce = "cd" * 32
    assert (
        run(
            "present",
            "--wallet",
            str(d / "w.json"),
            "--nonce",
            nonce,
            "--context",
            "q",
            "--predicate",
            "age >= 18",
            "--out",
            str(d / "pres.json"),
        )
        == 0
    )
    capsys.readouterr()
    rc = run(
        "verify",
        "--presentation",
        str(d / "pres.json"),
        "--issuer-public-key",
        str(d / "iss.pub"),
        "--nonce",
        nonce,
        "--context",
        "q",
        "--policy",
        "age >= 18",
    )
    assert rc == 2
    assert "--schema" in capsys.readouterr().err


def test_cli_request_for_another_schema_is_refused(
    issuer_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = issuer_dir
    _holder_request(d, schema="other/v1")
    capsys.readouterr()
    assert _issue(d, "--request", str(d / "request.json"), "--out", str(d / "issued.json")) == 1
    assert "schema" in capsys.readouterr().err
    assert not (d / "issued.json").exists()


# -- known-answer vectors (tests/vectors/zk/issuance_requests.json) ----------------------

REQUEST_VECTORS = load_vectors("issuance_requests.json")["vectors"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("vector", REQUEST_VECTORS, ids=lambda v: v["name"])
def test_issuance_request_known_answers(backend: str, vector: dict) -> None:
    group = get_group(backend)
    secret = group.random_scalar(DeterministicRng(vector["key_seed"].encode()))
    assert f"{secret:064x}" == vector["holder_secret_key"]
    schema = vector["request"]["schema_id"]
    made = create_issuance_request(
        secret, schema_id=schema, group=group, rng=DeterministicRng(vector["proof_seed"].encode())
    )
    assert ser.request_to_dict(made) == vector["request"]
    verify_issuance_request(ser.request_from_dict(vector["request"], group), schema)


@pytest.mark.parametrize(
    ("vector", "reject"),
    [(v, r) for v in REQUEST_VECTORS for r in v["rejects"]],
    ids=lambda x: x.get("note", x.get("name", "")),
)
def test_issuance_request_rejects(vector: dict, reject: dict) -> None:
    doc: dict[str, Any] = dict(vector["request"])
    issuer_schema: str = reject.get("issuer_schema", doc["schema_id"])
    for key in ("holder_public_key", "proof"):
        if key in reject:
            doc[key] = reject[key]
    with pytest.raises(InvalidProofError, match=reject["step"]):
        verify_issuance_request(ser.request_from_dict(doc), issuer_schema)
