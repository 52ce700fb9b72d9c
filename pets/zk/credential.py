"""Attribute credentials: issuance, presentation and verification.

Issuer (trusted for the truth of attributes) signs, with Ed25519 (RFC 8032,
via ``cryptography``), a credential made of:

* ``schema_id``, ``expires_at`` (Unix seconds) and the issuer's public key;
* the holder's public key X = x*G (holder binding: presentations prove
  knowledge of x, so a copied credential file is useless without x);
* one Pedersen commitment per attribute, with the attribute's kind (``int``
  or ``str``) and, for integers, a certified upper bound ``max_value``
  (default 2^64 - 1) that makes ``>=`` proofs as short as the bound allows.

Attribute encoding: an integer v in [0, max_value] is the scalar v; a string
s is ``hash_to_scalar(UTF-8(s))`` (RFC 9380 hash_to_field, tag
``PETS-V01-scalar-attribute-string/v1``), so equality and set membership
work on strings; ordering predicates only apply to integers.

Issuance (issue 15 item 17): the holder makes its key pair and sends an
:class:`IssuanceRequest` with a Schnorr proof of possession bound to the
schema (:func:`create_issuance_request`); the issuer checks it and signs
(:meth:`IssuerKey.issue_for_request`); the holder checks the result against
its key and the openings (:func:`accept_issued`). The issuer learns the
attribute values it certifies and the blindings, never the holder's secret
key, so it cannot present as the holder. (:func:`issue_to_holder`, where
the issuer picks the key, remains for tests.)

The holder keeps the openings. A presentation proves chosen predicates
(reveal, ==, >=, <=, in [lo, hi], in {..}) and knowledge of x; every proof's
context binds the credential digest, the verifier's nonce, the verifier's
context string and the predicate, so a proof cannot be replayed elsewhere.
The verifier checks trust in the issuer, the signature, expiry (time
injected), context, every proof, and finally consumes the nonce in its
:class:`NonceRegistry` (single use, TTL, clock injected). It learns the
predicates and revealed values only.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pets import lengthprefix
from pets.errors import CredentialError, InvalidInputError, InvalidProofError
from pets.zk.group import Group, Point, get_group
from pets.zk.membership import MembershipRelation
from pets.zk.pedersen import Opening, PedersenParams
from pets.zk.policy import (
    EQ,
    GE,
    IN,
    LE,
    MAX_INTEGER,
    RANGE,
    REVEAL,
    Predicate,
    Value,
    parse_predicate,
)
from pets.zk.range_proof import RangeProof, RangeRelation
from pets.zk.rng import DEFAULT_RNG, RandomSource, random_scalar
from pets.zk.schnorr import DLogRelation
from pets.zk.sigma import SigmaProof

INT_MAX = MAX_INTEGER
#: ``expires_at`` is signed as an 8-byte signed integer; negative times are refused.
EXPIRES_AT_MAX = (1 << 63) - 1
KIND_INT, KIND_STR = "int", "str"
STRING_DOMAIN = b"attribute-string/v1"
NONCE_BYTES = 32
_SIGNATURE_DOMAIN = b"pets/credential/v1"
_PRESENTATION_DOMAIN = b"pets/presentation/v1"
_REQUEST_DOMAIN = b"pets/issuance-request/v1"


_lp = lengthprefix.encode


def encode_attribute(value: Value, group: Group | None = None) -> int:
    """Scalar encoding of an attribute value (see module docstring)."""
    group = get_group() if group is None else group
    if isinstance(value, bool):
        raise InvalidInputError("attribute values are integers or strings")
    if isinstance(value, int):
        if not 0 <= value <= INT_MAX:
            raise InvalidInputError("integer attributes must be in [0, 2^64 - 1]")
        return value
    if isinstance(value, str):
        return group.hash_to_scalar(_utf8(value, "a string attribute"), STRING_DOMAIN)
    raise InvalidInputError("attribute values are integers or strings")


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, e.g. from JSON "\ud800"
        raise InvalidInputError(f"{what} is not valid Unicode text") from None


@dataclass(frozen=True)
class AttributeCommitment:
    """Public part of one attribute: name, kind, certified bound and commitment."""

    name: str
    kind: str
    max_value: int
    commitment: Point

    def __post_init__(self) -> None:
        _utf8(self.name, "an attribute name")
        if self.kind not in (KIND_INT, KIND_STR):
            raise InvalidInputError("attribute kind must be 'int' or 'str'")
        if isinstance(self.max_value, bool) or not isinstance(self.max_value, int):
            raise InvalidInputError("max_value must be an integer")
        if not 0 <= self.max_value <= INT_MAX:
            raise InvalidInputError("max_value must be in [0, 2^64 - 1]")


@dataclass(frozen=True)
class Credential:
    """An issued credential (public; safe to show to verifiers)."""

    schema_id: str
    issuer_public_key: bytes
    holder_public_key: Point
    expires_at: int
    attributes: tuple[AttributeCommitment, ...]
    signature: bytes = b""

    def __post_init__(self) -> None:
        """Bounds every field so that :meth:`signed_payload` cannot fail later."""
        _utf8(self.schema_id, "the schema id")
        if isinstance(self.expires_at, bool) or not isinstance(self.expires_at, int):
            raise InvalidInputError("expires_at must be an integer")
        if not 0 <= self.expires_at <= EXPIRES_AT_MAX:
            raise InvalidInputError("expires_at must be in [0, 2^63 - 1] (Unix seconds)")

    def signed_payload(self) -> bytes:
        """Canonical, length-prefixed bytes covered by the issuer's signature."""
        parts = [
            _lp(_SIGNATURE_DOMAIN),
            _lp(self.schema_id.encode("utf-8")),
            _lp(self.issuer_public_key),
            _lp(self.holder_public_key.to_bytes()),
            _lp(self.expires_at.to_bytes(8, "big", signed=True)),
            len(self.attributes).to_bytes(4, "big"),
        ]
        for a in self.attributes:
            parts += [
                _lp(a.name.encode("utf-8")),
                _lp(a.kind.encode("utf-8")),
                _lp(a.max_value.to_bytes(32, "big")),
                _lp(a.commitment.to_bytes()),
            ]
        return b"".join(parts)

    def digest(self) -> bytes:
        return hashlib.sha256(self.signed_payload() + _lp(self.signature)).digest()

    def attribute(self, name: str) -> AttributeCommitment:
        for a in self.attributes:
            if a.name == name:
                return a
        raise InvalidInputError(f"credential has no attribute {name!r}")

    def verify_signature(self) -> None:
        """Raise CredentialError unless the issuer's signature is valid."""
        try:
            key = Ed25519PublicKey.from_public_bytes(self.issuer_public_key)
            key.verify(self.signature, self.signed_payload())
        except (InvalidSignature, ValueError):
            raise CredentialError("credential signature is invalid") from None


@dataclass(frozen=True)
class HolderCredential:
    """What the holder keeps: the credential, its secret key and the openings."""

    credential: Credential
    holder_secret: int = field(repr=False)
    values: Mapping[str, Value] = field(repr=False)
    openings: Mapping[str, Opening] = field(repr=False)


class IssuerKey:
    """An issuer's Ed25519 signing key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key = private_key.public_key().public_bytes_raw()

    @classmethod
    def generate(cls) -> IssuerKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_bytes(cls, raw: bytes) -> IssuerKey:
        if len(raw) != 32:
            raise InvalidInputError("an Ed25519 private key is 32 bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    def private_bytes(self) -> bytes:
        return self._key.private_bytes_raw()

    def issue(
        self,
        schema_id: str,
        holder_public_key: Point,
        attributes: Mapping[str, Value],
        expires_at: int,
        *,
        max_values: Mapping[str, int] | None = None,
        rng: RandomSource = DEFAULT_RNG,
    ) -> tuple[Credential, dict[str, Opening]]:
        """Commit to and sign ``attributes``; returns the credential and the openings."""
        if not attributes:
            raise InvalidInputError("a credential needs at least one attribute")
        if holder_public_key.is_identity:
            raise InvalidInputError("the holder public key must not be the identity")
        params = PedersenParams(holder_public_key.group)
        bounds = dict(max_values or {})
        committed, openings = [], {}
        for name in sorted(attributes):
            value = attributes[name]
            kind = KIND_INT if isinstance(value, int) else KIND_STR
            max_value = bounds.pop(name, INT_MAX) if kind == KIND_INT else 0
            if kind == KIND_INT and not 0 <= value <= max_value <= INT_MAX:  # type: ignore[operator]
                raise InvalidInputError(f"attribute {name!r} exceeds its declared maximum")
            scalar = encode_attribute(value, params.group)
            commitment, opening = params.commit(scalar, rng=rng)
            committed.append(AttributeCommitment(name, kind, max_value, commitment))
            openings[name] = opening
        if bounds:
            raise InvalidInputError("max_values names attributes that are not integers issued")
        unsigned = Credential(
            schema_id, self.public_key, holder_public_key, int(expires_at), tuple(committed)
        )
        signature = self._key.sign(unsigned.signed_payload())
        return Credential(**{**unsigned.__dict__, "signature": signature}), openings

    def issue_for_request(
        self,
        request: IssuanceRequest,
        schema_id: str,
        attributes: Mapping[str, Value],
        expires_at: int,
        *,
        max_values: Mapping[str, int] | None = None,
        rng: RandomSource = DEFAULT_RNG,
    ) -> tuple[Credential, dict[str, Opening]]:
        """Issue to a holder-generated key after checking its proof of possession.

        The issuer never sees the holder's secret key, so it cannot present
        the credential itself. Raises :class:`InvalidProofError` if the
        request was made for another schema or does not prove possession.
        """
        verify_issuance_request(request, schema_id)
        return self.issue(
            schema_id,
            request.holder_public_key,
            attributes,
            expires_at,
            max_values=max_values,
            rng=rng,
        )


@dataclass(frozen=True)
class IssuanceRequest:
    """A holder's request for a credential: its public key, the schema, a proof of possession.

    ``proof`` is a Schnorr proof of knowledge of x with X = x*G whose context
    binds the schema id and X (:func:`create_issuance_request`).
    """

    holder_public_key: Point
    schema_id: str
    proof: bytes


def _request_context(schema_id: str, holder_public_key: Point) -> bytes:
    return hashlib.sha256(
        lengthprefix.join(
            (
                _REQUEST_DOMAIN,
                _utf8(schema_id, "the schema id"),
                holder_public_key.to_bytes(),
            )
        )
    ).digest()


def create_issuance_request(
    holder_secret: int,
    *,
    schema_id: str,
    group: Group | None = None,
    rng: RandomSource = DEFAULT_RNG,
) -> IssuanceRequest:
    """Holder role: a request proving possession of ``holder_secret`` for ``schema_id``."""
    group = get_group() if group is None else group
    if not 0 < holder_secret < group.order:
        raise InvalidInputError("the holder secret key must be in [1, n)")
    public = group.mul_base(holder_secret)
    proof = DLogRelation(public).prove(
        holder_secret, context=_request_context(schema_id, public), rng=rng
    )
    return IssuanceRequest(public, schema_id, proof.to_bytes())


def verify_issuance_request(request: IssuanceRequest, schema_id: str) -> None:
    """Issuer role: None if ``request`` is for ``schema_id`` and proves possession; else raise."""
    if not hmac.compare_digest(
        _utf8(request.schema_id, "the requested schema id"), _utf8(schema_id, "the schema id")
    ):
        raise InvalidProofError(
            f"the request was made for schema {request.schema_id!r}, not {schema_id!r}"
        )
    if request.holder_public_key.is_identity:
        raise InvalidProofError("the requested holder public key is the identity")
    try:
        DLogRelation(request.holder_public_key).verify(
            request.proof, context=_request_context(schema_id, request.holder_public_key)
        )
    except InvalidProofError:
        raise InvalidProofError("the request does not prove possession of the holder key") from None


def accept_issued(
    holder_secret: int,
    credential: Credential,
    values: Mapping[str, Value],
    openings: Mapping[str, Opening],
) -> HolderCredential:
    """Holder role: check an issued credential against its own key and wrap it.

    Checks the issuer's signature, that the credential is bound to this
    holder's key, and that every attribute's value and blinding open its
    commitment (so a wrong value from the issuer is caught now, not at the
    first presentation). Raises :class:`CredentialError` or
    :class:`InvalidInputError`.
    """
    credential.verify_signature()
    group = credential.holder_public_key.group
    if not 0 < holder_secret < group.order or not hmac.compare_digest(
        group.mul_base(holder_secret).to_bytes(), credential.holder_public_key.to_bytes()
    ):
        raise InvalidInputError("the credential was issued to another holder key")
    names = {a.name for a in credential.attributes}
    if set(values) != names or set(openings) != names:
        raise InvalidInputError("the issued values do not match the credential's attributes")
    params = PedersenParams(group)
    checked: dict[str, Opening] = {}
    for attr in credential.attributes:
        value = values[attr.name]
        if (attr.kind == KIND_INT) != (isinstance(value, int) and not isinstance(value, bool)):
            raise InvalidInputError(f"attribute {attr.name!r}: value has the wrong kind")
        if attr.kind == KIND_INT and not 0 <= value <= attr.max_value:  # type: ignore[operator]
            raise InvalidInputError(f"attribute {attr.name!r}: value above its certified maximum")
        opening = Opening(
            encode_attribute(value, group), openings[attr.name].blinding % group.order
        )
        if not params.opens(attr.commitment, opening):
            raise InvalidInputError(f"attribute {attr.name!r}: the issued value does not open it")
        checked[attr.name] = opening
    return HolderCredential(credential, holder_secret, dict(values), checked)


def holder_keygen(group: Group | None = None, rng: RandomSource = DEFAULT_RNG) -> tuple[int, Point]:
    """A holder key pair (x, X = x*G)."""
    group = get_group() if group is None else group
    x = random_scalar(rng, group.order)
    return x, group.mul_base(x)


def issue_to_holder(
    issuer: IssuerKey,
    schema_id: str,
    holder_secret: int,
    attributes: Mapping[str, Value],
    expires_at: int,
    *,
    group: Group | None = None,
    max_values: Mapping[str, int] | None = None,
    rng: RandomSource = DEFAULT_RNG,
) -> HolderCredential:
    """Issue and wrap with the holder's secrets in one step: the *issuer* knows the key.

    For tests and single-party demos only. Real issuance goes through
    :func:`create_issuance_request` (holder), :meth:`IssuerKey.issue_for_request`
    (issuer) and :func:`accept_issued` (holder), so that the issuer never
    learns ``holder_secret`` and cannot present as the holder.
    """
    group = get_group() if group is None else group
    cred, openings = issuer.issue(
        schema_id,
        group.mul_base(holder_secret),
        attributes,
        expires_at,
        max_values=max_values,
        rng=rng,
    )
    return HolderCredential(cred, holder_secret, dict(attributes), openings)


@dataclass(frozen=True)
class Presentation:
    """A holder's answer to a verifier's nonce: predicates with their proofs."""

    credential: Credential
    nonce: bytes
    context: bytes
    predicates: tuple[Predicate, ...]
    revealed: Mapping[str, Value]
    holder_proof: bytes
    proofs: tuple[bytes, ...]


def _proof_context(cred: Credential, nonce: bytes, context: bytes, index: int, label: str) -> bytes:
    return hashlib.sha256(
        _lp(_PRESENTATION_DOMAIN)
        + _lp(cred.digest())
        + _lp(nonce)
        + _lp(context)
        + index.to_bytes(4, "big")
        + _lp(label.encode())
    ).digest()


def _relation(
    params: PedersenParams, attr: AttributeCommitment, pred: Predicate, revealed: Value | None
) -> MembershipRelation | RangeRelation:
    """The proof relation for one predicate; InvalidInputError if it does not apply."""
    c = attr.commitment
    if pred.op in (REVEAL, EQ, IN):
        values = (revealed,) if pred.op == REVEAL else pred.values
        for v in values:
            if (attr.kind == KIND_INT) != isinstance(v, int):
                raise InvalidInputError(f"predicate '{pred}' does not match the attribute type")
        encoded = [encode_attribute(v, params.group) for v in values]  # type: ignore[arg-type]
        return MembershipRelation(params, c, encoded)
    if attr.kind != KIND_INT:
        raise InvalidInputError(f"predicate '{pred}' needs an integer attribute")
    bounds = [v for v in pred.values if isinstance(v, int)]  # all of them: Predicate checks
    if pred.op == GE:
        lo, hi = bounds[0], attr.max_value
    elif pred.op == LE:
        lo, hi = 0, min(bounds[0], attr.max_value)
    elif pred.op == RANGE:
        lo, hi = bounds[0], min(bounds[1], attr.max_value)
    else:  # pragma: no cover - Predicate validates op
        raise InvalidInputError(f"unsupported predicate '{pred}'")
    if lo > hi:
        raise InvalidInputError(f"predicate '{pred}' is impossible for this attribute")
    return RangeRelation(params, c, lo, hi)


def create_presentation(
    holder: HolderCredential,
    predicates: Sequence[Predicate | str],
    *,
    nonce: bytes,
    context: bytes | str,
    rng: RandomSource = DEFAULT_RNG,
) -> Presentation:
    """Holder role: prove ``predicates`` for the verifier's ``nonce`` and ``context``."""
    ctx = context.encode() if isinstance(context, str) else bytes(context)
    cred = holder.credential
    group = cred.holder_public_key.group
    params = PedersenParams(group)
    preds = tuple(p if isinstance(p, Predicate) else parse_predicate(p) for p in predicates)
    revealed: dict[str, Value] = {}
    proofs = []
    for i, pred in enumerate(preds):
        attr = cred.attribute(pred.attribute)
        value = holder.values[pred.attribute]
        if pred.op == REVEAL:
            revealed[pred.attribute] = value
        relation = _relation(params, attr, pred, value if pred.op == REVEAL else None)
        opening = holder.openings[pred.attribute]
        proof_ctx = _proof_context(cred, nonce, ctx, i, str(pred))
        try:
            proof = relation.prove(opening, context=proof_ctx, rng=rng)
        except InvalidInputError:
            raise InvalidInputError(f"the credential does not satisfy '{pred}'") from None
        proofs.append(proof.to_bytes())
    holder_ctx = _proof_context(cred, nonce, ctx, len(preds), "holder")
    holder_proof = DLogRelation(cred.holder_public_key).prove(
        holder.holder_secret, context=holder_ctx, rng=rng
    )
    return Presentation(
        cred, bytes(nonce), ctx, preds, revealed, holder_proof.to_bytes(), tuple(proofs)
    )


class NonceRegistry:
    """Verifier-side nonces: random, single use, expiring after ``ttl`` seconds.

    ``clock`` (seconds, e.g. ``time.time``) is injected. Thread-safe. At most
    ``capacity`` nonces are outstanding; the oldest are dropped beyond that.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        ttl: float = 300.0,
        *,
        capacity: int = 100_000,
        rng: Callable[[int], bytes] | None = None,
    ) -> None:
        import secrets

        if ttl <= 0 or capacity <= 0:
            raise InvalidInputError("nonce TTL and capacity must be positive")
        self._clock, self._ttl, self._capacity = clock, ttl, capacity
        self._token = rng or secrets.token_bytes
        self._live: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()

    def _purge(self, now: float) -> None:
        while self._live:
            nonce, expiry = next(iter(self._live.items()))
            if expiry > now and len(self._live) <= self._capacity:
                break
            del self._live[nonce]

    def issue(self) -> bytes:
        """A fresh nonce, valid once within the TTL."""
        nonce = self._token(NONCE_BYTES)
        with self._lock:
            now = self._clock()
            self._live[nonce] = now + self._ttl
            self._purge(now)
        return nonce

    def is_live(self, nonce: bytes) -> bool:
        """Whether ``nonce`` was issued, is unexpired and unused (a cheap pre-check)."""
        with self._lock:
            expiry = self._live.get(bytes(nonce))
            return expiry is not None and expiry > self._clock()

    def consume(self, nonce: bytes) -> None:
        """Mark ``nonce`` used; CredentialError if unknown, expired or already used."""
        with self._lock:
            now = self._clock()
            self._purge(now)
            expiry = self._live.pop(bytes(nonce), None)
        if expiry is None or expiry <= now:
            raise CredentialError("nonce is unknown, expired or already used")

    def __len__(self) -> int:
        return len(self._live)


@dataclass(frozen=True)
class VerifiedPresentation:
    """What a verifier learns: proven predicates, revealed values, credential metadata."""

    schema_id: str
    issuer_public_key: bytes
    expires_at: int
    predicates: tuple[Predicate, ...]
    revealed: Mapping[str, Value]
    max_values: Mapping[str, int]

    @property
    def predicate_strings(self) -> list[str]:
        return [str(p) for p in self.predicates]


def verify_presentation(
    presentation: Presentation,
    *,
    trusted_issuers: Collection[bytes],
    context: bytes | str,
    now: float,
    nonces: NonceRegistry | None = None,
    expected_nonce: bytes | None = None,
) -> VerifiedPresentation:
    """Verifier role. Raises CredentialError / InvalidProofError with a clear reason.

    Exactly one of ``nonces`` (a registry that issued the nonce; it is
    consumed on success) or ``expected_nonce`` (the nonce this verifier sent)
    must be given. ``now`` is the current Unix time (injected).
    """
    if (nonces is None) == (expected_nonce is None):
        raise InvalidInputError("pass exactly one of nonces= or expected_nonce=")
    p = presentation
    cred = p.credential
    ctx = context.encode() if isinstance(context, str) else bytes(context)
    if not any(hmac.compare_digest(cred.issuer_public_key, k) for k in trusted_issuers):
        raise CredentialError("credential issuer is not trusted")
    cred.verify_signature()
    if now >= cred.expires_at:
        raise CredentialError("credential has expired")
    if not hmac.compare_digest(p.context, ctx):
        raise CredentialError("presentation was made for a different context")
    if expected_nonce is not None and not hmac.compare_digest(p.nonce, expected_nonce):
        raise CredentialError("presentation was made for a different nonce")
    if len(p.proofs) != len(p.predicates):
        raise InvalidProofError("presentation has one proof per predicate")
    group = cred.holder_public_key.group
    params = PedersenParams(group)
    holder_ctx = _proof_context(cred, p.nonce, ctx, len(p.predicates), "holder")
    try:
        DLogRelation(cred.holder_public_key).verify(p.holder_proof, context=holder_ctx)
    except InvalidProofError:
        raise InvalidProofError("proof of holder key possession does not verify") from None
    revealed_names = {pred.attribute for pred in p.predicates if pred.op == REVEAL}
    if set(p.revealed) != revealed_names:
        raise InvalidProofError("revealed values do not match the reveal predicates")
    for i, (pred, proof) in enumerate(zip(p.predicates, p.proofs, strict=True)):
        try:
            attr = cred.attribute(pred.attribute)
            relation = _relation(params, attr, pred, p.revealed.get(pred.attribute))
            proof_ctx = _proof_context(cred, p.nonce, ctx, i, str(pred))
            if isinstance(relation, RangeRelation):
                relation.verify(RangeProof.from_bytes(proof, group), context=proof_ctx)
            else:
                relation.verify(SigmaProof.from_bytes(proof), context=proof_ctx)
        except (InvalidProofError, InvalidInputError):
            raise InvalidProofError(f"proof for predicate '{pred}' does not verify") from None
    if nonces is not None:
        nonces.consume(p.nonce)
    return VerifiedPresentation(
        cred.schema_id,
        cred.issuer_public_key,
        cred.expires_at,
        p.predicates,
        dict(p.revealed),
        {a.name: a.max_value for a in cred.attributes if a.kind == KIND_INT},
    )
