"""Sealed seeds: a holder's helper seed, relayed by the leader it is hidden from.

In the additive protocol a holder gives helper ``i`` a 32-byte PRG seed and
the leader the masked vector ``x - sum_i PRG(seed_i)`` (:mod:`pets.sharing`).
Rather than opening a connection to every helper, the holder *seals* each
seed to its helper and sends everything to the leader in one call, the way
DAP clients upload reports (draft-ietf-ppm-dap, section 4.5: the leader
stores the helper's encrypted input share and forwards it when the helper
aggregates). The leader keeps the sealed seeds with the contribution and
hands a helper exactly those of the contributor set when it finalises.

Two layers, both over the same :class:`SeedContext` (query id, query
fingerprint, holder and helper):

* **Confidentiality** from the leader: RFC 9180 HPKE, base mode, single
  shot, DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-128-GCM
  (``cryptography``'s :class:`~cryptography.hazmat.primitives.hpke.Suite`),
  to the helper's long-term X25519 *seal key*, with the context as ``info``
  (RFC 9180 section 8.1: single-shot callers bind their context there). A
  sealed seed is ``enc || ciphertext``, :data:`SEALED_BYTES` long; moved to
  another query, holder or helper it no longer opens.
* **Origin**: HPKE base mode does not say who sealed, so the holder signs
  the context and the sealed bytes with the ECDSA P-256 key of its mTLS
  certificate. The helper checks it against the holder's certificate and
  the project CA, and opens the seed, before the leader may commit the
  contribution (``Helper.Prepare``), so a leader cannot invent holders to
  push a query over ``min_holders``, and a seed that does not open is
  refused before it counts. The helper parses each holder certificate's
  key once (:func:`certificate_key` keeps the last
  :data:`CERTIFICATE_KEYS_CACHED` by the certificate's bytes), not once per
  batch; the signature check and the opening stay per contribution.

Holders learn a helper's seal key from the leader's announcement; the helper
signs it with its own certificate key (:func:`helper_key_message`) so the
leader cannot substitute a key of its own. The statement carries a
``not_after`` (:data:`HELPER_KEY_LIFETIME_SECONDS` after signing) and holders
refuse it from then on, so a leader cannot keep relaying a statement for a
key the helper has since replaced or lost (issue 15, item 15); the helper
re-signs well before that (``pets.server.helper.seal_key``).

Randomness: HPKE draws its ephemeral key inside OpenSSL; ECDSA nonces come
from OpenSSL too. Known-answer tests therefore fix the *opening* side
(``tests/vectors/seal.json``): a sealed seed made once, with the recipient
key, context and expected seed, plus variants that must fail at a named step.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pets import lengthprefix
from pets.errors import CertificateValidityError, InvalidInputError, InvalidProofError
from pets.identity.certificates import Peer, Role, peer_identity, verify_identity_cached
from pets.prg import SEED_BYTES

SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_128_GCM)
ENC_BYTES = 32  # X25519 encapsulated key
TAG_BYTES = 16  # AES-GCM tag
SEALED_BYTES = ENC_BYTES + SEED_BYTES + TAG_BYTES
PUBLIC_KEY_BYTES = 32

SEAL_DOMAIN = b"pets/v1/sealed-seed"
SIGNATURE_DOMAIN = b"pets/v1/sealed-seed-signature"
HELPER_KEY_DOMAIN = b"pets/v1/helper-seal-key"
CONTRIBUTION_DOMAIN = b"pets/v1/additive-contribution"
_ECDSA = ec.ECDSA(hashes.SHA256())
#: How long a helper's signed seal-key statement is valid (48 h). The helper
#: re-signs it after 12 h, so every statement it hands out outlives the
#: longest query deadline (24 h) by at least 12 h.
HELPER_KEY_LIFETIME_SECONDS = 48 * 3600


@dataclass(frozen=True)
class SeedContext:
    """Everything a sealed seed is bound to."""

    query_id: str
    fingerprint: bytes  # SHA-256 of the query plan and schema (pets.query)
    holder: str
    helper: str

    def encode(self) -> bytes:
        return self._encoded

    def info(self) -> bytes:
        """The HPKE ``info``: the context under its own domain."""
        return self._info

    # Computed once per context object: sealing (info) and signing (encode) one
    # seed both need it, as do opening and verifying it.
    @functools.cached_property
    def _encoded(self) -> bytes:
        return b"".join(
            lengthprefix.encode(part)
            for part in (
                self.query_id.encode(),
                bytes(self.fingerprint),
                self.holder.encode(),
                self.helper.encode(),
            )
        )

    @functools.cached_property
    def _info(self) -> bytes:
        return SEAL_DOMAIN + self._encoded


# --------------------------------------------------------------------------- seal / open


def seal(seed: bytes, helper_key: x25519.X25519PublicKey, context: SeedContext) -> bytes:
    """Encrypt ``seed`` to ``helper_key`` for ``context``: ``enc || ciphertext``."""
    if len(seed) != SEED_BYTES:
        raise InvalidInputError(f"a seed is exactly {SEED_BYTES} bytes")
    sealed = SUITE.encrypt(bytes(seed), helper_key, info=context.info())
    if len(sealed) != SEALED_BYTES:  # the suite's sizes are fixed; guard against a change
        raise InvalidInputError(f"HPKE produced {len(sealed)} bytes, expected {SEALED_BYTES}")
    return sealed


def open_sealed(sealed: bytes, private_key: x25519.X25519PrivateKey, context: SeedContext) -> bytes:
    """The seed inside ``sealed``; InvalidProofError if it was not sealed for ``context``."""
    if len(sealed) != SEALED_BYTES:
        raise InvalidInputError(f"a sealed seed is exactly {SEALED_BYTES} bytes")
    try:
        seed = SUITE.decrypt(bytes(sealed), private_key, info=context.info())
    except (InvalidTag, ValueError):
        raise InvalidProofError(
            f"the seed of holder {context.holder} for helper {context.helper} in "
            f"{context.query_id} does not open with this helper's seal key"
        ) from None
    if len(seed) != SEED_BYTES:
        raise InvalidProofError(f"holder {context.holder} sealed {len(seed)} bytes, not a seed")
    return seed


# --------------------------------------------------------------------------- holder signatures


def signed_message(context: SeedContext, sealed: bytes) -> bytes:
    """The bytes a holder signs for one sealed seed."""
    return SIGNATURE_DOMAIN + context.encode() + lengthprefix.encode(bytes(sealed))


def sign_sealed(context: SeedContext, sealed: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    """The holder's ECDSA P-256 / SHA-256 signature over ``context`` and ``sealed``."""
    return key.sign(signed_message(context, sealed), _ECDSA)


def verify_sealed(
    context: SeedContext, sealed: bytes, signature: bytes, public_key: ec.EllipticCurvePublicKey
) -> None:
    """Return if the holder signed ``sealed`` for ``context``; else InvalidProofError."""
    try:
        public_key.verify(bytes(signature), signed_message(context, sealed), _ECDSA)
    except (InvalidSignature, ValueError):
        raise InvalidProofError(
            f"the seed of holder {context.holder} for helper {context.helper} in "
            f"{context.query_id} is not signed by that holder"
        ) from None


CERTIFICATE_KEYS_CACHED = 4096
"""Parsed certificate keys :func:`certificate_key` remembers (least recently used go)."""


def certificate_key(cert_pem_or_der: bytes) -> ec.EllipticCurvePublicKey:
    """The ECDSA public key of a pets certificate (PEM or DER).

    Parsed once per certificate: the key is remembered by the certificate's
    exact bytes (immutable, so the same bytes always carry the same key) in a
    bounded LRU; a certificate that does not parse is not remembered. Whether
    the certificate is from the CA, names the party and is valid is
    :func:`check_party`'s job, on every use.
    """
    return _certificate_key(bytes(cert_pem_or_der))


@functools.lru_cache(maxsize=CERTIFICATE_KEYS_CACHED)
def _certificate_key(data: bytes) -> ec.EllipticCurvePublicKey:
    try:
        cert = (
            x509.load_pem_x509_certificate(data)
            if data.lstrip().startswith(b"-----")
            else x509.load_der_x509_certificate(data)
        )
    except ValueError:
        raise InvalidProofError("not a valid X.509 certificate") from None
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise InvalidProofError("the certificate has no ECDSA key")
    return key


def check_party(
    cert: bytes,
    ca_pem: bytes | None,
    role: Role,
    name: str,
    *,
    during: tuple[datetime, datetime] | None = None,
) -> Peer:
    """The party ``cert`` names, checked against the CA (when given), ``role`` and ``name``.

    Valid now, or at some moment of ``during`` (see
    :func:`pets.identity.certificates.verify_identity_cached`).
    """
    try:
        peer = (
            peer_identity(cert)
            if ca_pem is None
            else verify_identity_cached(ca_pem, _pem(cert), during=during)
        )
    except CertificateValidityError:
        raise InvalidProofError(
            f"the certificate of {role.value} {name} is expired or not yet valid"
        ) from None
    except Exception:
        raise InvalidProofError(
            f"the certificate of {role.value} {name} is not from this CA"
        ) from None
    if peer.role != role or peer.name != name:
        raise InvalidProofError(f"the certificate names {peer}, not {role.value} {name}")
    return peer


def _pem(cert: bytes) -> bytes:
    data = bytes(cert)
    if data.lstrip().startswith(b"-----"):
        return data
    return x509.load_der_x509_certificate(data).public_bytes(Encoding.PEM)


# --------------------------------------------------------------------------- helper seal keys


def public_bytes(key: x25519.X25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def helper_key_message(helper: str, public_key: bytes, not_after: int) -> bytes:
    """The bytes a helper signs to vouch for its seal key until ``not_after``
    (Unix seconds)."""
    return HELPER_KEY_DOMAIN + lengthprefix.join(
        [helper.encode(), bytes(public_key), int(not_after).to_bytes(8, "big")]
    )


def sign_helper_key(
    helper: str, public_key: bytes, key: ec.EllipticCurvePrivateKey, *, not_after: int
) -> bytes:
    return key.sign(helper_key_message(helper, public_key, not_after), _ECDSA)


def verify_helper_key(
    helper: str,
    public_key: bytes,
    certificate: bytes,
    signature: bytes,
    ca_pem: bytes | None,
    *,
    not_after: int,
    now: float | None = None,
) -> x25519.X25519PublicKey:
    """Check that helper ``helper`` vouches for ``public_key`` until ``not_after``,
    still in force at ``now`` (default: the clock); return the key.

    ``certificate`` must be a helper certificate naming ``helper`` (from the
    CA ``ca_pem``, when given) whose key signed :func:`helper_key_message`.
    Raises InvalidProofError otherwise.
    """
    if not 0 <= not_after < 2**64:
        raise InvalidProofError(f"helper {helper}'s seal key statement has a bad not_after")
    if not_after <= (time.time() if now is None else now):
        raise InvalidProofError(f"helper {helper}'s seal key statement has expired (not_after)")
    check_party(certificate, ca_pem, Role.HELPER, helper)
    try:
        certificate_key(certificate).verify(
            bytes(signature), helper_key_message(helper, public_key, not_after), _ECDSA
        )
    except (InvalidSignature, ValueError):
        raise InvalidProofError(
            f"helper {helper}'s seal key is not signed by helper {helper}"
        ) from None
    return load_public_key(public_key)


def load_public_key(raw: bytes) -> x25519.X25519PublicKey:
    if len(raw) != PUBLIC_KEY_BYTES:
        raise InvalidProofError(f"a seal key is {PUBLIC_KEY_BYTES} bytes, got {len(raw)}")
    return x25519.X25519PublicKey.from_public_bytes(bytes(raw))


# --------------------------------------------------------------------------- contribution ids


def contribution_digest(query_id: str, seeds: Sequence[bytes]) -> bytes:
    """What identifies an additive contribution to the leader: a hash of its seeds.

    The masked vector is ``x - sum PRG(seed_i)``, so the seeds fix the sharing:
    a re-send of the same sharing carries the same digest (idempotent), a new
    sharing (fresh seeds, or derived seeds of another vector) a different one
    (a conflict). Hashing 32-byte seeds instead of the payload spares both
    sides a pass over the vector; the seeds themselves stay secret (one-way,
    and each has 256 bits of entropy).
    """
    h = hashlib.sha256(CONTRIBUTION_DOMAIN + lengthprefix.encode(query_id.encode()))
    for seed in seeds:
        h.update(lengthprefix.encode(bytes(seed)))
    return h.digest()
