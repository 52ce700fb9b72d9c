"""A presentation nonce is single use even when two submissions race (issue 15, item 12).

The interleaving is forced: each registry call waits at a barrier until both
submissions reach it, so the check of one cannot finish before the other's
starts. Exactly one of the two may be admitted.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pets.errors import CredentialError, PetsError
from pets.identity.certificates import Peer, Role
from pets.server.config import Policy
from pets.server.credentials import PresentationChecker
from pets.zk import serialization as ser
from pets.zk.contexts import submit_query_context
from pets.zk.credential import (
    IssuerKey,
    NonceRegistry,
    create_presentation,
    holder_keygen,
    issue_to_holder,
)
from pets.zk.proto import presentation_to_proto

SCHEMA = "pets/analyst/v1"


class LockstepNonces(NonceRegistry):
    """A registry whose every call waits until both racing submissions make it."""

    def __init__(self, parties: int) -> None:
        super().__init__(time.time, 300.0)
        self._barriers = {
            "is_live": threading.Barrier(parties, timeout=10),
            "consume": threading.Barrier(parties, timeout=10),
        }

    def is_live(self, nonce: bytes) -> bool:
        self._barriers["is_live"].wait()
        return super().is_live(nonce)

    def consume(self, nonce: bytes) -> None:
        self._barriers["consume"].wait()
        super().consume(nonce)


@pytest.fixture
def checker(tmp_path: Path) -> tuple[PresentationChecker, IssuerKey]:
    issuer = IssuerKey.generate()
    pub = tmp_path / "issuer.pub"
    pub.write_text(ser.dumps(ser.issuer_public_to_dict(issuer.public_key)))
    policy = Policy(require="accreditation >= 2", issuer_public_key=pub, schema_id=SCHEMA)
    return PresentationChecker(policy), issuer


def test_one_presentation_admits_one_of_two_concurrent_submissions(
    checker: tuple[PresentationChecker, IssuerKey],
) -> None:
    check, issuer = checker
    check.nonces = LockstepNonces(2)
    secret, _ = holder_keygen()
    wallet = issue_to_holder(
        issuer,
        SCHEMA,
        secret,
        {"accreditation": 3, "subject": "analyst"},
        int(time.time() + 3600),
        max_values={"accreditation": 10},
    )
    nonce = check.nonces.issue()
    presentation = create_presentation(
        wallet,
        ["accreditation >= 2", "reveal subject"],
        nonce=nonce,
        context=submit_query_context("analyst"),
    )
    data = presentation_to_proto(presentation).SerializeToString()
    peer = Peer(Role.ANALYST, "analyst")

    def submit() -> object:
        try:
            return check(peer, data, nonce)
        except PetsError as exc:
            return exc

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(lambda _: submit(), range(2)))
    admitted = [o for o in outcomes if isinstance(o, list)]
    refused = [o for o in outcomes if isinstance(o, CredentialError)]
    assert len(admitted) == 1, outcomes
    assert len(refused) == 1 and "nonce" in str(refused[0])
