"""Attribute credentials in the service: the Verifier gRPC service and the
leader's admission policy for analysts.

With a ``[policy]`` section the leader admits a query only when the analyst
attaches a zero-knowledge presentation (pets.zk) that

* is bound to a fresh nonce from this leader's ``Verifier.GetNonce``
  (single use, expiring) and to the context ``pets/v1/submit-query/<analyst>``
  (the analyst's certificate name), so it cannot be replayed or lent;
* verifies under a trusted issuer key, is unexpired, and proves predicates
  that imply every predicate of the policy.

The query record keeps the policy's predicate strings that were proven,
never the attribute values.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable
from pathlib import Path

import grpc

from pets.errors import (
    ConfigError,
    CredentialError,
    InvalidInputError,
    InvalidProofError,
    NotReadyError,
    PermissionDeniedError,
    PetsError,
)
from pets.identity.certificates import Peer
from pets.server.config import Policy
from pets.server.rpc import caller, unary
from pets.v1 import credential_pb2 as cpb
from pets.v1 import credential_pb2_grpc as cpb_grpc
from pets.zk import serialization as ser
from pets.zk.contexts import submit_query_context, verify_context
from pets.zk.credential import NonceRegistry, VerifiedPresentation, verify_presentation
from pets.zk.policy import check_policy, parse_policy
from pets.zk.proto import presentation_from_proto

log = logging.getLogger("pets.server.credentials")

NONCE_TTL_SECONDS = 300.0
MAX_NONCES_PER_CALLER = 16
MAX_PREDICATES = 32


def load_issuer_key(path: Path) -> bytes:
    try:
        return ser.issuer_public_from_dict(ser.loads(path.read_text()))
    except FileNotFoundError:
        raise ConfigError(
            f"issuer public key {path} does not exist (create it with "
            "`pets credential issuer-keygen`)"
        ) from None


class PresentationChecker:
    """Verifies presentations against one policy and a nonce registry."""

    def __init__(self, policy: Policy, *, clock: Callable[[], float] = time.time) -> None:
        self.policy = parse_policy(policy.require)
        self.subject_attribute = policy.subject_attribute
        self.schema_id = policy.schema_id
        self.trusted = [load_issuer_key(policy.issuer_public_key)]
        self.clock = clock
        self.nonces = NonceRegistry(clock, NONCE_TTL_SECONDS)

    def verify(
        self,
        data: bytes,
        context: str,
        policy: object | None,
        *,
        expected_nonce: bytes | None = None,
    ) -> VerifiedPresentation:
        """Verify a serialised presentation; returns what it proves.

        Malformed or oversized input raises the same :class:`InvalidProofError`
        as a wrong proof. The nonce is consumed (single use, atomically) before
        any proof is verified, whatever the outcome.
        """
        try:
            msg = cpb.Presentation.FromString(data)
            presentation = presentation_from_proto(msg)
        except Exception:  # a malformed presentation is just an invalid one
            raise InvalidProofError("presentation is malformed") from None
        if len(presentation.predicates) > MAX_PREDICATES:
            raise InvalidProofError(f"a presentation proves at most {MAX_PREDICATES} predicates")
        if expected_nonce is not None and not hmac.compare_digest(
            presentation.nonce, expected_nonce
        ):
            raise InvalidProofError("presentation is bound to another nonce than the one sent")
        # Consumed first, atomically (check and removal under one lock): of two
        # concurrent submissions of one presentation exactly one gets past here, and
        # a failing presentation cannot be re-sent to make the verifier work again.
        # An unknown, expired or used nonce raises CredentialError.
        self.nonces.consume(presentation.nonce)
        try:
            verified = verify_presentation(
                presentation,
                trusted_issuers=self.trusted,
                context=context,
                now=self.clock(),
                expected_nonce=presentation.nonce,
            )
            if self.schema_id is not None and verified.schema_id != self.schema_id:
                raise CredentialError("credential is not of the schema this leader accepts")
            if policy is not None:
                check_policy(policy, verified.predicates, max_values=verified.max_values)  # type: ignore[arg-type]
        except PetsError:
            raise
        except Exception:  # e.g. out-of-range numbers deep in a crafted credential
            raise InvalidProofError("presentation is malformed") from None
        return verified

    def __call__(self, peer: Peer, presentation: bytes, nonce: bytes) -> list[str]:
        """The leader's admission check for ``SubmitQuery``; returns proven predicates."""
        if not presentation:
            raise PermissionDeniedError(
                f"this leader admits queries only with a presentation proving: {self.policy} "
                f"(and revealing {self.subject_attribute})"
            )
        verified = self.verify(
            presentation, submit_query_context(peer.name), self.policy, expected_nonce=nonce
        )
        subject = verified.revealed.get(self.subject_attribute)
        if not isinstance(subject, str) or not hmac.compare_digest(
            subject.encode(), peer.name.encode()
        ):
            raise CredentialError(
                f"the credential must reveal {self.subject_attribute!r} equal to the analyst's "
                "certificate name; it was not issued to this analyst"
            )
        proven = [str(p) for p in self.policy.predicates]
        log.info("analyst admitted", extra={"analyst": peer.name, "proven_predicates": proven})
        return proven


class Verifier(cpb_grpc.VerifierServicer):
    """Hands out nonces and verifies presentations for any authenticated caller."""

    def __init__(self, checker: PresentationChecker, *, insecure: bool) -> None:
        self.checker = checker
        self._insecure = insecure
        # Unused nonces handed out per caller: one caller cannot flood the registry
        # and evict everybody else's nonces. Used or expired ones stop counting.
        self._issued: dict[str, list[bytes]] = {}

    @unary
    async def GetNonce(
        self, request: cpb.NonceRequest, context: grpc.aio.ServicerContext
    ) -> cpb.NonceResponse:
        peer = caller(context, insecure=self._insecure)
        registry = self.checker.nonces
        live = [n for n in self._issued.pop(peer.name, []) if registry.is_live(n)]
        if len(live) >= MAX_NONCES_PER_CALLER:
            self._issued[peer.name] = live
            raise NotReadyError(
                f"{peer.name} already holds {len(live)} unused nonces; use one or wait "
                f"up to {NONCE_TTL_SECONDS:g} s"
            )
        nonce = registry.issue()
        self._issued[peer.name] = [*live, nonce]
        return cpb.NonceResponse(nonce=nonce, ttl_seconds=NONCE_TTL_SECONDS)

    @unary
    async def Verify(
        self, request: cpb.VerifyRequest, context: grpc.aio.ServicerContext
    ) -> cpb.VerifyResponse:
        peer = caller(context, insecure=self._insecure)
        policy = None
        if request.policy:
            try:
                policy = parse_policy(request.policy)
            except Exception as exc:
                raise InvalidInputError(f"policy does not parse: {exc}") from None
        try:
            verified = await asyncio.to_thread(
                self.checker.verify,
                request.presentation.SerializeToString(),
                verify_context(peer.name),
                policy,
            )
        except InvalidProofError as exc:
            return cpb.VerifyResponse(accepted=False, reason=str(exc))
        proven = (
            [str(p) for p in policy.predicates]
            if policy is not None
            else verified.predicate_strings
        )
        return cpb.VerifyResponse(
            accepted=True, proven_predicates=proven, schema_id=verified.schema_id
        )


def add_verifier(server: grpc.aio.Server, checker: object, *, insecure: bool) -> str:
    """Register the Verifier service, using the leader's ``checker``, on ``server``;
    return its full name."""
    if not isinstance(checker, PresentationChecker):
        raise ConfigError("the Verifier service needs a leader with a [policy]")
    cpb_grpc.add_VerifierServicer_to_server(Verifier(checker, insecure=insecure), server)
    return cpb.DESCRIPTOR.services_by_name["Verifier"].full_name
