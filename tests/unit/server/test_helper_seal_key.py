"""The helper's seal-key statement expires and is re-signed before it does (issue 15,
item 15): holders refuse an expired statement, so the helper never hands one out
that could expire before a query it is registered for closes."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import x25519

from pets import seal
from pets.identity import certificates as identity
from pets.identity.certificates import Role
from pets.runtime.tomlconfig import TlsFiles
from pets.server.config import Limits, ServerConfig
from pets.server.helper.seal_key import RESIGN_AFTER_SECONDS, KeyStatement


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_statement_expires_and_is_re_signed_in_time(tmp_path: Path) -> None:
    ca = identity.create_ca("helper CA")
    party = identity.issue(ca, Role.HELPER, "helper-1")
    files = TlsFiles(tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem")
    files.ca.write_bytes(ca.cert_pem)
    files.cert.write_bytes(party.cert_pem)
    files.key.write_bytes(party.key_pem)
    config = ServerConfig(
        role="helper",
        name="helper-1",
        listen="127.0.0.1:0",
        state_dir=tmp_path,
        min_holders=1,
        tls=files,
        limits=Limits(),
    )
    clock = Clock()
    statements = KeyStatement(config, x25519.X25519PrivateKey.generate(), clock=clock)
    first = statements.current()
    assert first.not_after_unix == int(clock.now) + seal.HELPER_KEY_LIFETIME_SECONDS
    # Every statement handed out outlives the longest query deadline (a day).
    assert seal.HELPER_KEY_LIFETIME_SECONDS - RESIGN_AFTER_SECONDS > 86_400
    clock.now += RESIGN_AFTER_SECONDS - 1
    assert statements.current() is first
    clock.now += 2
    second = statements.current()
    assert second.not_after_unix > first.not_after_unix

    key = seal.verify_helper_key(
        second.helper,
        bytes(second.seal_public_key),
        bytes(second.certificate),
        bytes(second.signature),
        ca.cert_pem,
        not_after=second.not_after_unix,
        now=clock.now,
    )
    assert seal.public_bytes(key) == bytes(first.seal_public_key)
