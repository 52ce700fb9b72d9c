"""Regenerate ``spec_signing.json``: the analyst's signed Paillier spec (issue 15, item 15).

Run from the repository root:
``.venv/bin/python tests/vectors/paillier/spec_signing_generate.py``.

The signing message is built here by hand from the layout in
``protos/pets/v1/aggregation.proto`` (domain, then nine 4-byte-length-prefixed
items), not by ``pets.identity.signing.spec_message``, so the accept case
cross-checks that function. ECDSA signatures are randomised inside OpenSSL, so
the signature is pinned as made once, with the analyst's certificate (checked
without a CA: the certificate's own validity period is not what this tests).

Reject cases name the step that must fail: ``verify`` (the signature or the
not_after, :func:`pets.identity.signing.verify_spec` at ``now``), ``deadline``
(:func:`pets.identity.signing.check_deadline` against the announced deadline)
or ``replay`` (a holder that answered the spec id for ``answered`` refuses it
for ``query_id``: ``pets.client.journal.Journal.claim_spec``).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from pets.identity import certificates as identity
from pets.identity.certificates import Role

HERE = Path(__file__).resolve().parent
DOMAIN = b"pets/v1/paillier-query-spec"
NOT_AFTER = 1_900_000_360


def _item(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def message(spec: dict) -> bytes:
    items = (
        spec["query_json"].encode(),
        spec["protocol"].to_bytes(4, "big"),
        spec["min_holders"].to_bytes(4, "big"),
        spec["max_holders"].to_bytes(4, "big"),
        bytes.fromhex(spec["paillier_public_key"]),
        struct.pack(">d", spec["deadline_seconds"]),
        spec["close_after"].to_bytes(4, "big"),
        bytes.fromhex(spec["spec_id"]),
        spec["not_after_unix"].to_bytes(8, "big"),
    )
    return DOMAIN + b"".join(_item(i) for i in items)


def main() -> None:
    analyst = identity.issue(identity.create_ca("pets spec vector CA"), Role.ANALYST, "alice")
    key = load_pem_private_key(analyst.key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    spec = {
        "query_json": '{"aggregate":"count","dataset":"hospitals"}',
        "protocol": 2,  # PROTOCOL_PAILLIER
        "min_holders": 3,
        "max_holders": 50,
        "paillier_public_key": "c5" * 256,
        "deadline_seconds": 60.0,
        "close_after": 5,
        "spec_id": "00112233445566778899aabbccddeeff",
        "not_after_unix": NOT_AFTER,
    }
    signed = {
        **spec,
        "analyst_certificate": analyst.cert_pem.decode(),
        "analyst_signature": key.sign(message(spec), ec.ECDSA(hashes.SHA256())).hex(),
    }
    data = {
        "description": __doc__,
        "accept": [
            {
                "name": "signed-spec",
                "step": "verify",
                "spec": signed,
                "message": message(spec).hex(),
                "now": NOT_AFTER - 1,
                "deadline_unix": NOT_AFTER,
                "analyst": "alice",
            },
        ],
        "reject": [
            {
                "name": "expired not_after",
                "step": "verify",
                "error": "InvalidProofError",
                "match": "expired",
                "spec": signed,
                "now": NOT_AFTER,
            },
            {
                "name": "changed deadline",
                "step": "verify",
                "error": "InvalidProofError",
                "match": "does not verify",
                "spec": {**signed, "deadline_seconds": 3600.0},
                "now": NOT_AFTER - 1,
            },
            {
                "name": "changed close_after",
                "step": "verify",
                "error": "InvalidProofError",
                "match": "does not verify",
                "spec": {**signed, "close_after": 3},
                "now": NOT_AFTER - 1,
            },
            {
                "name": "extended not_after",
                "step": "verify",
                "error": "InvalidProofError",
                "match": "does not verify",
                "spec": {**signed, "not_after_unix": NOT_AFTER + 86_400},
                "now": NOT_AFTER - 1,
            },
            {
                "name": "announced deadline past not_after",
                "step": "deadline",
                "error": "InvalidProofError",
                "match": "not_after",
                "spec": signed,
                "deadline_unix": NOT_AFTER + 1,
            },
            {
                "name": "replayed spec under another query id",
                "step": "replay",
                "error": "InvalidProofError",
                "match": "replayed",
                "spec": signed,
                "answered": "q-first",
                "query_id": "q-replay",
                "now": NOT_AFTER - 1,
            },
        ],
    }
    (HERE / "spec_signing.json").write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
