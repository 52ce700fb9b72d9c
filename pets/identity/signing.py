"""Signatures with a party's certificate key, for statements other parties relay.

A Paillier query travels from the analyst through the leader to the
holders. The holders must encrypt to the *analyst's* key: if the leader could
swap in a key of its own, it could decrypt every contribution. So the analyst
signs the query together with its public key using the private key of its
mutual-TLS certificate (ECDSA P-256, from the project CA), and each holder
checks the signature and that the certificate is an analyst's certificate of
its own project CA before encrypting anything.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pets import lengthprefix
from pets.errors import InvalidInputError, InvalidProofError
from pets.identity.certificates import Peer, Role, peer_identity, verify_identity
from pets.v1 import aggregation_pb2 as pb

SPEC_DOMAIN = b"pets/v1/paillier-query-spec"


def spec_message(spec: pb.QuerySpec) -> bytes:
    """The bytes an analyst signs: everything that decides what holders encrypt."""
    fields = (
        spec.query_json.encode(),
        spec.protocol.to_bytes(4, "big"),
        spec.min_holders.to_bytes(4, "big"),
        spec.max_holders.to_bytes(4, "big"),
        bytes(spec.paillier_public_key),
    )
    return SPEC_DOMAIN + lengthprefix.join(fields)


def sign_spec(spec: pb.QuerySpec, cert_pem: bytes, key_pem: bytes) -> None:
    """Sign ``spec`` in place with the analyst's certificate key."""
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InvalidInputError("the analyst's key must be an ECDSA key from `pets certs`")
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


def verify_spec(spec: pb.QuerySpec, ca_pem: bytes | None) -> Peer:
    """Check the analyst's signature on ``spec``; return the analyst.

    With ``ca_pem`` the certificate must also be a currently valid analyst
    certificate of that CA. Raises :class:`InvalidProofError` otherwise.
    """
    peer = signer(spec)
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
