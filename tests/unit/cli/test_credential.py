"""CLI round trip: issue, present ``age >= 18`` without revealing the age, verify, tamper."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from pets.cli import main


def run(*argv: str) -> int:
    """``pets credential ARGV...``, through the real entry point (its exit statuses)."""
    return main(["credential", *argv])


@pytest.fixture
def issued(tmp_path: Path) -> Path:
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
    # The default flow: the holder makes its key and a request, the issuer signs to it,
    # the holder checks the result and writes its wallet.
    assert (
        run(
            "request",
            "--schema",
            "researcher/v1",
            "--key-out",
            str(tmp_path / "holder.key"),
            "--out",
            str(tmp_path / "request.json"),
        )
        == 0
    )
    assert (
        run(
            "issue",
            "--issuer-key",
            str(tmp_path / "iss.key"),
            "--schema",
            "researcher/v1",
            "--attr",
            "age=42",
            "--attr",
            "purpose=research",
            "--max",
            "age=150",
            "--expires-in",
            "3600",
            "--request",
            str(tmp_path / "request.json"),
            "--out",
            str(tmp_path / "issued.json"),
            "--credential-out",
            str(tmp_path / "cred.json"),
        )
        == 0
    )
    assert (
        run(
            "accept",
            "--holder-key",
            str(tmp_path / "holder.key"),
            "--issued",
            str(tmp_path / "issued.json"),
            "--out",
            str(tmp_path / "wallet.json"),
        )
        == 0
    )
    return tmp_path


def _present(d: Path, nonce: str, *preds: str) -> int:
    args = [
        "present",
        "--wallet",
        str(d / "wallet.json"),
        "--nonce",
        nonce,
        "--context",
        "q1",
        "--out",
        str(d / "pres.json"),
    ]
    for p in preds:
        args += ["--predicate", p]
    return run(*args)


def _verify(d: Path, nonce: str, *extra: str) -> int:
    return run(
        "verify",
        "--presentation",
        str(d / "pres.json"),
        "--issuer-public-key",
        str(d / "iss.pub"),
        "--nonce",
        nonce,
        "--context",
        "q1",
        *extra,
    )


def test_round_trip_hides_the_age(issued: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for secret_file in ("wallet.json", "holder.key", "issued.json"):
        assert stat.S_IMODE((issued / secret_file).stat().st_mode) == 0o600
    assert stat.S_IMODE((issued / "iss.key").stat().st_mode) == 0o600
    nonce = "ab" * 32
    assert _present(issued, nonce, "age >= 18") == 0
    doc = json.loads((issued / "pres.json").read_text())
    assert doc["revealed"] == {}
    assert [item["predicate"] for item in doc["predicates"]] == ["age >= 18"]
    capsys.readouterr()
    assert _verify(issued, nonce, "--policy", "age >= 18", "--schema", "researcher/v1") == 0
    out = capsys.readouterr().out
    assert "presentation accepted" in out and "proven: age >= 18" in out and "42" not in out


def test_tampered_presentation_is_rejected_clearly(
    issued: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nonce = "cd" * 32
    assert _present(issued, nonce, "age >= 18") == 0
    path = issued / "pres.json"
    path.write_text(path.read_text().replace('"age >= 18"', '"age >= 17"'))
    capsys.readouterr()
    assert _verify(issued, nonce) == 1
    err = capsys.readouterr().err
    assert "presentation rejected: proof for predicate 'age >= 17' does not verify" in err


def test_wrong_nonce_expired_and_unmet_policy(issued: Path, capsys) -> None:
    nonce = "ef" * 32
    assert _present(issued, nonce, "age >= 18") == 0
    assert _verify(issued, "00" * 32) == 1
    assert _verify(issued, nonce, "--now", "99999999999") == 1
    policy = ("--policy", "purpose in {research}", "--schema", "researcher/v1")
    assert _verify(issued, nonce, *policy) == 1
    err = capsys.readouterr().err
    assert "different nonce" in err and "expired" in err and "does not prove" in err


def test_inconsistent_command_lines_exit_2(issued: Path, capsys) -> None:
    """Arguments that parse but do not fit together: usage, exit 2 (pets.cli.exits)."""
    assert _present(issued, "zz", "age >= 18") == 2
    assert _present(issued, "ab" * 32) == 2
    assert (
        run(
            "issue",
            "--issuer-key",
            str(issued / "iss.key"),
            "--schema",
            "s",
            "--attr",
            "noequals",
            "--issuer-generates-holder-key",
            "--out",
            str(issued / "w2.json"),
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("pets credential: usage:") == 3
    assert "--nonce must be hex" in err and "NAME=VALUE" in err


def test_refusals_and_unreadable_files_exit_1(issued: Path, capsys) -> None:
    """The command ran and failed: a predicate the credential does not meet, a missing file."""
    assert _present(issued, "ab" * 32, "age >= 99") == 1
    assert (
        run(
            "verify",
            "--presentation",
            str(issued / "missing.json"),
            "--issuer-public-key",
            str(issued / "iss.pub"),
            "--nonce",
            "ab" * 32,
            "--context",
            "q1",
        )
        == 1
    )
    err = capsys.readouterr().err
    assert err.count("pets credential: error:") == 2
    assert "does not satisfy 'age >= 99'" in err and "missing.json" in err
    assert "42" not in err


def test_nonce_and_holder_key_reuse(issued: Path, capsys) -> None:
    assert run("nonce") == 0
    assert len(bytes.fromhex(capsys.readouterr().out.strip())) == 32
    # A second credential to the same holder key: the holder requests with its wallet's key.
    assert (
        run(
            "request",
            "--schema",
            "s2",
            "--holder-key",
            str(issued / "wallet.json"),
            "--out",
            str(issued / "r2.json"),
        )
        == 0
    )
    assert (
        run(
            "issue",
            "--issuer-key",
            str(issued / "iss.key"),
            "--schema",
            "s2",
            "--attr",
            "level=3",
            "--request",
            str(issued / "r2.json"),
            "--expires-at",
            "99999999999",
            "--out",
            str(issued / "i2.json"),
        )
        == 0
    )
    assert (
        run(
            "accept",
            "--holder-key",
            str(issued / "holder.key"),
            "--issued",
            str(issued / "i2.json"),
            "--out",
            str(issued / "w2.json"),
        )
        == 0
    )
    w1 = json.loads((issued / "wallet.json").read_text())
    w2 = json.loads((issued / "w2.json").read_text())
    assert w1["holder_secret_key"] == w2["holder_secret_key"]
    # The holder key file is never overwritten by a new request.
    assert (
        run(
            "request",
            "--schema",
            "s3",
            "--key-out",
            str(issued / "holder.key"),
            "--out",
            str(issued / "r3.json"),
        )
        == 1
    )
    assert "refusing to overwrite" in capsys.readouterr().err
