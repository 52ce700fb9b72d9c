"""Regenerate ``seal.json``: known-answer and reject vectors for :mod:`pets.seal`.

Run from the repository root: ``.venv/bin/python tests/vectors/seal_generate.py``.

HPKE encryption and ECDSA signing are randomised inside OpenSSL and cannot be
seeded, so these vectors pin the *receiving* side: a sealed seed made once,
with the recipient key, the context and the expected seed; a holder signature
with the signer's public key. They freeze the context encoding, the HPKE suite
and the signed-message layout: a change to any of them breaks the vectors.
(RFC 9180 conformance of the suite itself is ``cryptography``'s, tested there
against the RFC's own vectors.) Each reject vector names the step that must
fail: ``open`` (HPKE decryption), ``verify`` (holder signature), ``length`` or
``helper_key`` (a helper's seal-key statement: expired at ``now``, or its
``not_after`` changed after signing; issue 15, item 15). The helper statement
comes with the helper's certificate (checked without a CA: the certificate's
own validity period is not what these vectors test).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)

from pets import seal
from pets.identity import certificates as identity
from pets.identity.certificates import Role

HERE = Path(__file__).resolve().parent


def _scalar(label: str) -> int:
    return int.from_bytes(hashlib.sha256(label.encode()).digest(), "big") % (2**255)


def main() -> None:
    recipient = x25519.X25519PrivateKey.from_private_bytes(
        hashlib.sha256(b"pets seal vector: helper seal key").digest()
    )
    holder_key = ec.derive_private_key(_scalar("pets seal vector: holder key"), ec.SECP256R1())
    seed = hashlib.sha256(b"pets seal vector: seed").digest()
    ctx = seal.SeedContext("q-0123456789abcdef", b"\xab" * 32, "hospital-a", "helper-1")
    sealed = seal.seal(seed, recipient.public_key(), ctx)
    signature = seal.sign_sealed(ctx, sealed, holder_key)
    context = {
        "query_id": ctx.query_id,
        "fingerprint": ctx.fingerprint.hex(),
        "holder": ctx.holder,
        "helper": ctx.helper,
    }

    def ctx_with(**change: str) -> dict[str, str]:
        return {**context, **change}

    flipped = bytearray(sealed)
    flipped[40] ^= 0x01
    other_ctx = seal.SeedContext(ctx.query_id, ctx.fingerprint, ctx.holder, "helper-2")
    helper = identity.issue(identity.create_ca("pets seal vector CA"), Role.HELPER, "helper-1")
    helper_signing_key = load_pem_private_key(helper.key_pem, password=None)
    assert isinstance(helper_signing_key, ec.EllipticCurvePrivateKey)
    seal_public = recipient.public_key().public_bytes_raw()
    not_after = 1_900_000_000
    statement = {
        "helper": "helper-1",
        "public_key": seal_public.hex(),
        "certificate": helper.cert_pem.decode(),
        "not_after": not_after,
        "signature": seal.sign_helper_key(
            "helper-1", seal_public, helper_signing_key, not_after=not_after
        ).hex(),
    }
    data = {
        "description": __doc__,
        "suite": "DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM; base mode, single shot",
        "recipient_private_key": recipient.private_bytes_raw().hex(),
        "recipient_public_key": recipient.public_key().public_bytes_raw().hex(),
        "holder_public_key": holder_key.public_key()
        .public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        .hex(),
        "accept": [
            {
                "name": "open-and-verify",
                "step": "open",
                "context": context,
                "info": ctx.info().hex(),
                "seed": seed.hex(),
                "sealed": sealed.hex(),
                "signature": signature.hex(),
            },
            {
                "name": "contribution-digest",
                "step": "contribution_digest",
                "query_id": ctx.query_id,
                "seeds": [seed.hex(), (b"\x00" * 32).hex()],
                "digest": seal.contribution_digest(ctx.query_id, [seed, b"\x00" * 32]).hex(),
            },
            {
                "name": "helper-key-message",
                "step": "helper_key_message",
                "helper": "helper-1",
                "public_key": recipient.public_key().public_bytes_raw().hex(),
                "not_after": not_after,
                "message": seal.helper_key_message("helper-1", seal_public, not_after).hex(),
            },
            {
                "name": "helper-key-statement",
                "step": "helper_key",
                "statement": statement,
                "now": not_after - 1,
            },
        ],
        "reject": [
            {
                "name": "another query",
                "step": "open",
                "error": "InvalidProofError",
                "match": "does not open",
                "context": ctx_with(query_id="q-0123456789abcdee"),
                "sealed": sealed.hex(),
            },
            {
                "name": "another holder",
                "step": "open",
                "error": "InvalidProofError",
                "match": "does not open",
                "context": ctx_with(holder="hospital-b"),
                "sealed": sealed.hex(),
            },
            {
                "name": "another helper",
                "step": "open",
                "error": "InvalidProofError",
                "match": "does not open",
                "context": ctx_with(helper="helper-2"),
                "sealed": sealed.hex(),
            },
            {
                "name": "another fingerprint",
                "step": "open",
                "error": "InvalidProofError",
                "match": "does not open",
                "context": ctx_with(fingerprint="ac" * 32),
                "sealed": sealed.hex(),
            },
            {
                "name": "flipped ciphertext bit",
                "step": "open",
                "error": "InvalidProofError",
                "match": "does not open",
                "context": context,
                "sealed": flipped.hex(),
            },
            {
                "name": "truncated",
                "step": "length",
                "error": "InvalidInputError",
                "match": "exactly",
                "context": context,
                "sealed": sealed[:-1].hex(),
            },
            {
                "name": "signature for another helper",
                "step": "verify",
                "error": "InvalidProofError",
                "match": "not signed",
                "context": context,
                "sealed": sealed.hex(),
                "signature": seal.sign_sealed(other_ctx, sealed, holder_key).hex(),
            },
            {
                "name": "signature over other bytes",
                "step": "verify",
                "error": "InvalidProofError",
                "match": "not signed",
                "context": context,
                "sealed": sealed.hex(),
                "signature": seal.sign_sealed(ctx, bytes(flipped), holder_key).hex(),
            },
            {
                "name": "truncated signature",
                "step": "verify",
                "error": "InvalidProofError",
                "match": "not signed",
                "context": context,
                "sealed": sealed.hex(),
                "signature": signature[:-2].hex(),
            },
            {
                "name": "expired helper key statement",
                "step": "helper_key",
                "error": "InvalidProofError",
                "match": "expired",
                "statement": statement,
                "now": not_after,
            },
            {
                "name": "helper key statement with an extended not_after",
                "step": "helper_key",
                "error": "InvalidProofError",
                "match": "not signed",
                "statement": {**statement, "not_after": not_after + 86_400},
                "now": not_after - 1,
            },
        ],
    }
    (HERE / "seal.json").write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
