"""Known answers and rejects for the analyst's signed Paillier spec
(tests/vectors/paillier/spec_signing.json; issue 15, item 15)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pets.client.journal import Journal
from pets.errors import InvalidProofError
from pets.identity.signing import check_deadline, spec_message, verify_spec
from pets.v1 import aggregation_pb2 as pb
from tests.vectors.loader import cases, load, rejected

VECTORS = load("paillier/spec_signing.json")


def _spec(d: dict) -> pb.QuerySpec:
    return pb.QuerySpec(
        query_json=d["query_json"],
        protocol=d["protocol"],
        min_holders=d["min_holders"],
        max_holders=d["max_holders"],
        paillier_public_key=bytes.fromhex(d["paillier_public_key"]),
        deadline_seconds=d["deadline_seconds"],
        close_after=d["close_after"],
        spec_id=bytes.fromhex(d["spec_id"]),
        not_after_unix=d["not_after_unix"],
        analyst_certificate=d["analyst_certificate"].encode(),
        analyst_signature=bytes.fromhex(d["analyst_signature"]),
    )


@pytest.mark.parametrize("vector", cases(VECTORS.accept))
def test_known_signed_spec(vector: dict) -> None:
    spec = _spec(vector["spec"])
    assert spec_message(spec).hex() == vector["message"]
    assert verify_spec(spec, None, now=vector["now"]).name == vector["analyst"]
    check_deadline(spec, vector["deadline_unix"])


def _claim(journal: Journal, spec: pb.QuerySpec, query_id: str) -> None:
    """What a holder does before answering (pets.client.node.Node.reserve_answer)."""
    earlier = journal.claim_spec(bytes(spec.spec_id), query_id, not_after=spec.not_after_unix)
    if earlier is not None:
        raise InvalidProofError(f"replayed spec: answered for {earlier}")


@pytest.mark.parametrize("vector", cases(VECTORS.reject))
def test_rejected(vector: dict, tmp_path: Path) -> None:
    spec = _spec(vector["spec"])
    step = vector["step"]
    if step == "verify":
        with rejected(vector):
            verify_spec(spec, None, now=vector["now"])
    elif step == "deadline":
        verify_spec(spec, None, now=spec.not_after_unix - 1)  # the signature itself is fine
        with rejected(vector):
            check_deadline(spec, vector["deadline_unix"])
    else:
        assert step == "replay"
        verify_spec(spec, None, now=vector["now"])
        journal = Journal(tmp_path, clock=lambda: float(vector["now"]))
        _claim(journal, spec, vector["answered"])
        journal.close()
        restarted = Journal(tmp_path, clock=lambda: float(vector["now"]))
        _claim(restarted, spec, vector["answered"])  # the same query again is fine
        with rejected(vector):
            _claim(restarted, spec, vector["query_id"])
