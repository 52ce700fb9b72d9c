"""A holder's sealing (HolderClient.seal_seeds): each helper-key statement checked
once, by its exact bytes, and never standing for another key or query.

The holder remembers the statements it checked (a helper signs one for many
queries). These tests pin what that cache must not change: a fresh HPKE
encapsulation and signature per seed, a key substituted by the leader refused
even after the genuine one was checked for the same query, a rotated key (a
new statement) checked and used, another query sealed under its own context,
an expired statement refused although it was checked, and the cache bounded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from pets import seal
from pets.client import holder as holder_module
from pets.client.config import Endpoints
from pets.client.connect import Connector
from pets.client.holder import HolderClient
from pets.errors import InvalidProofError
from pets.identity import certificates as identity
from pets.identity.certificates import Role
from pets.runtime.tomlconfig import TlsFiles
from pets.v1 import aggregation_pb2 as pb

HELPER = "helper-1"
HOLDER = "h1"
FINGERPRINT = bytes(range(32))


class Deployment:
    """A CA, one helper's certificate key and a holder's TLS files."""

    def __init__(self, directory: Path) -> None:
        self.ca = identity.create_ca()
        helper = identity.issue(self.ca, Role.HELPER, HELPER)
        self.helper_cert = helper.cert_pem
        key = load_pem_private_key(helper.key_pem, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        self.helper_key = key
        holder = identity.issue(self.ca, Role.HOLDER, HOLDER)
        self.holder_public = seal.certificate_key(holder.cert_pem)
        files = TlsFiles(directory / "ca.pem", directory / "h1.pem", directory / "h1-key.pem")
        files.ca.write_bytes(self.ca.cert_pem)
        files.cert.write_bytes(holder.cert_pem)
        files.key.write_bytes(holder.key_pem)
        self.endpoints = Endpoints(
            name=HOLDER,
            leader="127.0.0.1:9",  # never dialled: sealing needs no server
            helpers={HELPER: "127.0.0.1:9"},
            tls=files,
            schema=directory / "schema.toml",
        )

    def statement(
        self, public: x25519.X25519PublicKey, *, not_after: int | None = None
    ) -> pb.HelperKey:
        """``public`` vouched for by the helper's certificate key."""
        raw = seal.public_bytes(public)
        until = int(time.time()) + 3600 if not_after is None else not_after
        return pb.HelperKey(
            helper=HELPER,
            seal_public_key=raw,
            certificate=self.helper_cert,
            signature=seal.sign_helper_key(HELPER, raw, self.helper_key, not_after=until),
            not_after_unix=until,
        )


def announcement(query_id: str, *keys: pb.HelperKey) -> pb.QueryAnnouncement:
    return pb.QueryAnnouncement(
        query_id=query_id,
        vector_length=1,
        helpers=[HELPER],
        fingerprint=FINGERPRINT,
        helper_keys=list(keys),
    )


@pytest.fixture
def d(tmp_path: Path) -> Deployment:
    return Deployment(tmp_path)


def with_holder(d: Deployment, test: Callable[[HolderClient], Any]) -> Any:
    """``test(client)`` with a holder client of ``d`` (gRPC channels need a loop)."""

    async def go() -> Any:
        client = HolderClient(Connector(d.endpoints, "holder"))
        try:
            return test(client)
        finally:
            await client.close()

    return asyncio.run(go())


def opens(sealed: pb.SealedSeed, key: x25519.X25519PrivateKey, query_id: str, seed: bytes) -> bool:
    context = seal.SeedContext(query_id, FINGERPRINT, HOLDER, HELPER)
    try:
        return seal.open_sealed(bytes(sealed.sealed), key, context) == seed
    except InvalidProofError:
        return False


def test_every_seed_is_sealed_afresh_and_signed(d: Deployment) -> None:
    helper_seal = x25519.X25519PrivateKey.generate()
    ann = announcement("q-1", d.statement(helper_seal.public_key()))
    seed = bytes(range(32))

    def test(client: HolderClient) -> None:
        first, second = client.seal_seeds(ann, [seed]), client.seal_seeds(ann, [seed])
        assert first[0].sealed != second[0].sealed  # a new encapsulation each time
        for sealed in (first[0], second[0]):
            assert sealed.helper == HELPER
            assert opens(sealed, helper_seal, "q-1", seed)
            context = seal.SeedContext("q-1", FINGERPRINT, HOLDER, HELPER)
            seal.verify_sealed(context, sealed.sealed, sealed.signature, d.holder_public)

    with_holder(d, test)


def test_a_key_the_leader_substitutes_is_refused_after_the_genuine_one_was_checked(
    d: Deployment,
) -> None:
    genuine = d.statement(x25519.X25519PrivateKey.generate().public_key())
    forged = pb.HelperKey()
    forged.CopyFrom(genuine)
    forged.seal_public_key = seal.public_bytes(x25519.X25519PrivateKey.generate().public_key())

    def test(client: HolderClient) -> None:
        client.seal_seeds(announcement("q-1", genuine), [bytes(32)])
        with pytest.raises(InvalidProofError, match="not signed by helper"):
            client.seal_seeds(announcement("q-1", forged), [bytes(32)])

    with_holder(d, test)


def test_a_rotated_key_in_a_new_announcement_is_checked_and_used(d: Deployment) -> None:
    old, new = x25519.X25519PrivateKey.generate(), x25519.X25519PrivateKey.generate()
    seed = bytes(32)

    def test(client: HolderClient) -> None:
        client.seal_seeds(announcement("q-1", d.statement(old.public_key())), [seed])
        [sealed] = client.seal_seeds(announcement("q-1", d.statement(new.public_key())), [seed])
        assert opens(sealed, new, "q-1", seed)
        assert not opens(sealed, old, "q-1", seed)

    with_holder(d, test)


def test_another_query_is_sealed_under_its_own_context(d: Deployment) -> None:
    helper_seal = x25519.X25519PrivateKey.generate()
    statement = d.statement(helper_seal.public_key())
    seed = bytes(32)

    def test(client: HolderClient) -> None:
        client.seal_seeds(announcement("q-1", statement), [seed])
        [sealed] = client.seal_seeds(announcement("q-2", statement), [seed])
        assert opens(sealed, helper_seal, "q-2", seed)
        assert not opens(sealed, helper_seal, "q-1", seed)

    with_holder(d, test)


def test_an_expired_statement_is_refused_even_when_it_was_checked(
    d: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    until = int(time.time()) + 60
    key = x25519.X25519PrivateKey.generate().public_key()
    ann = announcement("q-1", d.statement(key, not_after=until))

    def test(client: HolderClient) -> None:
        client.seal_seeds(ann, [bytes(32)])
        monkeypatch.setattr(time, "time", lambda: until + 1.0)
        with pytest.raises(InvalidProofError, match="expired"):
            client.seal_seeds(ann, [bytes(32)])

    with_holder(d, test)


def test_the_cache_of_checked_statements_is_bounded(d: Deployment) -> None:
    def test(client: HolderClient) -> int:
        for i in range(holder_module.STATEMENTS_CACHED + 5):
            statement = d.statement(x25519.X25519PrivateKey.generate().public_key())
            client.seal_seeds(announcement(f"q-{i}", statement), [bytes(32)])
        return len(client._checked_keys)

    assert with_holder(d, test) == holder_module.STATEMENTS_CACHED
