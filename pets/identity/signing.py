"""Signatures with a party's certificate key, for statements other parties relay.

A Paillier query travels from the analyst through the leader to the
holders. The holders must encrypt to the *analyst's* key: if the leader could
swap in a key of its own, it could decrypt every contribution. So the analyst
signs the query together with its public key using the private key of its
mutual-TLS certificate (ECDSA P-256, from the project CA), and each holder
checks the signature and that the certificate is an analyst's certificate of
its own project CA before encrypting anything.

A signature alone could be replayed: the leader could open a second query
with the same signed spec (a new query id, a longer deadline, a smaller
``close_after``) and collect a second set of ciphertexts under the analyst's
key (issue 15, item 15). So the analyst also signs the deadline,
``close_after``, a fresh random *spec id* (16 bytes from :mod:`secrets`) and a
``not_after`` time (submission + deadline + :data:`SPEC_GRACE_SECONDS`). The
leader and every holder refuse an expired spec or one whose query deadline
lies past ``not_after`` (:func:`verify_spec`, :func:`check_deadline`), and a
holder answers a spec id for one query id only (kept in its journal,
``pets.client.journal``, until ``not_after``).
"""

from __future__ import annotations

import secrets
import struct
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pets import lengthprefix
from pets.errors import InvalidInputError, InvalidProofError
from pets.identity.certificates import Peer, Role, peer_identity, verify_identity
from pets.v1 import aggregation_pb2 as pb

SPEC_DOMAIN = b"pets/v1/paillier-query-spec"
SPEC_ID_BYTES = 16
#: How long past its deadline a signed spec stays valid: room for clock skew
#: between the analyst, the leader and the holders, and for submission latency.
SPEC_GRACE_SECONDS = 300
#: The lifetime signed for a spec that leaves the deadline to the server's default.
DEFAULT_DEADLINE_ALLOWANCE_SECONDS = 3600


def spec_message(spec: pb.QuerySpec) -> bytes:
    """The bytes an analyst signs: everything that decides what holders encrypt,
    and which query, until when, they encrypt it for."""
    fields = (
        spec.query_json.encode(),
        spec.protocol.to_bytes(4, "big"),
        spec.min_holders.to_bytes(4, "big"),
        spec.max_holders.to_bytes(4, "big"),
        bytes(spec.paillier_public_key),
        struct.pack(">d", spec.deadline_seconds),
        spec.close_after.to_bytes(4, "big"),
        bytes(spec.spec_id),
        spec.not_after_unix.to_bytes(8, "big"),
    )
    return SPEC_DOMAIN + lengthprefix.join(fields)


def sign_spec(
    spec: pb.QuerySpec, cert_pem: bytes, key_pem: bytes, *, now: float | None = None
) -> None:
    """Sign ``spec`` in place with the analyst's certificate key.

    Draws a fresh spec id and sets ``not_after_unix`` to ``now`` (default: the
    clock) + the deadline (or :data:`DEFAULT_DEADLINE_ALLOWANCE_SECONDS` when
    the server's default applies) + :data:`SPEC_GRACE_SECONDS`.
    """
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InvalidInputError("the analyst's key must be an ECDSA key from `pets certs`")
    start = time.time() if now is None else now
    lifetime = spec.deadline_seconds or DEFAULT_DEADLINE_ALLOWANCE_SECONDS
    spec.spec_id = secrets.token_bytes(SPEC_ID_BYTES)
    spec.not_after_unix = int(start + lifetime + SPEC_GRACE_SECONDS)
    spec.analyst_certificate = cert_pem
    spec.analyst_signature = key.sign(spec_message(spec), ec.ECDSA(hashes.SHA256()))


def signer(spec: pb.QuerySpec) -> Peer:
    """Who signed ``spec`` (not yet checked against a CA); InvalidProofError if unsigned."""
    if not spec.analyst_certificate or not spec.analyst_signature:
        raise InvalidProofError("the query is not signed by its analyst")
    try:
        return peer_identity(bytes(spec.analyst_certificate))
    except Exception:
        raise InvalidProofError("the query's analyst certificate is malformed") from None


def verify_spec(spec: pb.QuerySpec, ca_pem: bytes | None, *, now: float | None = None) -> Peer:
    """Check the analyst's signature on ``spec``; return the analyst.

    With ``ca_pem`` the certificate must also be a currently valid analyst
    certificate of that CA. The spec must carry a spec id and its
    ``not_after_unix`` must not have passed at ``now`` (default: the clock).
    Raises :class:`InvalidProofError` otherwise.
    """
    peer = signer(spec)
    if len(spec.spec_id) != SPEC_ID_BYTES:
        raise InvalidProofError(f"the query's spec id must be {SPEC_ID_BYTES} bytes")
    if spec.not_after_unix <= (time.time() if now is None else now):
        raise InvalidProofError("the analyst's signature on the query has expired (not_after)")
    cert_pem = bytes(spec.analyst_certificate)
    if ca_pem is not None:
        try:
            peer = verify_identity(ca_pem, cert_pem)
        except Exception:
            raise InvalidProofError("the query's analyst certificate is not from this CA") from None
    if peer.role != Role.ANALYST:
        raise InvalidProofError("the query is signed by a party that is not an analyst")
    from cryptography import x509

    public_key = x509.load_pem_x509_certificate(cert_pem).public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise InvalidProofError("the query's analyst certificate has no ECDSA key")
    try:
        public_key.verify(
            bytes(spec.analyst_signature), spec_message(spec), ec.ECDSA(hashes.SHA256())
        )
    except InvalidSignature:
        raise InvalidProofError("the analyst's signature on the query does not verify") from None
    return peer


def check_deadline(spec: pb.QuerySpec, deadline_unix: float) -> None:
    """Refuse a query whose deadline lies past the signed ``not_after_unix``: the
    analyst did not sign for a query open that long."""
    if not deadline_unix <= spec.not_after_unix:
        raise InvalidProofError("the query's deadline lies past the not_after the analyst signed")
