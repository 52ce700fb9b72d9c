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

import hmac
import logging
import time
from collections.abc import Callable
from pathlib import Path

import grpc

from pets.errors import ConfigError, InvalidInputError, InvalidProofError, PermissionDeniedError
from pets.identity import Peer
from pets.server.config import Policy
from pets.server.rpc import caller, unary
from pets.v1 import credential_pb2 as cpb
from pets.v1 import credential_pb2_grpc as cpb_grpc
from pets.zk import serialization as ser
from pets.zk.contexts import submit_query_context, verify_context
from pets.zk.credential import NonceRegistry, verify_presentation
from pets.zk.policy import check_policy, parse_policy
from pets.zk.proto import presentation_from_proto

log = logging.getLogger("pets.server.credentials")

NONCE_TTL_SECONDS = 300.0


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
    ) -> tuple[str, list[str]]:
        try:
            msg = cpb.Presentation.FromString(data)
            presentation = presentation_from_proto(msg)
        except Exception:  # a malformed presentation is just an invalid one
            raise InvalidProofError("presentation is malformed") from None
        if expected_nonce is not None and not hmac.compare_digest(
            presentation.nonce, expected_nonce
        ):
            raise InvalidProofError("presentation is bound to another nonce than the one sent")
        verified = verify_presentation(
            presentation,
            trusted_issuers=self.trusted,
            context=context,
            now=self.clock(),
            nonces=self.nonces,
        )
        if policy is None:
            return verified.schema_id, verified.predicate_strings
        return verified.schema_id, check_policy(
            policy,
            verified.predicates,
            max_values=verified.max_values,  # type: ignore[arg-type]
        )

    def __call__(self, peer: Peer, presentation: bytes, nonce: bytes) -> list[str]:
        """The leader's admission check for ``SubmitQuery``; returns proven predicates."""
        if not presentation:
            raise PermissionDeniedError(
                f"this leader admits queries only with a presentation proving: {self.policy}"
            )
        _, proven = self.verify(
            presentation, submit_query_context(peer.name), self.policy, expected_nonce=nonce
        )
        log.info("analyst admitted", extra={"analyst": peer.name, "proven_predicates": proven})
        return proven


class Verifier(cpb_grpc.VerifierServicer):
    """Hands out nonces and verifies presentations for any authenticated caller."""

    def __init__(self, checker: PresentationChecker, *, insecure: bool) -> None:
        self.checker = checker
        self._insecure = insecure

    @unary
    async def GetNonce(
        self, request: cpb.NonceRequest, context: grpc.aio.ServicerContext
    ) -> cpb.NonceResponse:
        caller(context, insecure=self._insecure)
        return cpb.NonceResponse(nonce=self.checker.nonces.issue(), ttl_seconds=NONCE_TTL_SECONDS)

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
            schema_id, proven = self.checker.verify(
                request.presentation.SerializeToString(), verify_context(peer.name), policy
            )
        except InvalidProofError as exc:
            return cpb.VerifyResponse(accepted=False, reason=str(exc))
        return cpb.VerifyResponse(accepted=True, proven_predicates=proven, schema_id=schema_id)


def add_verifier(server: grpc.aio.Server, leader: object) -> str:
    """Register the Verifier service on ``server``; return its full name."""
    checker = getattr(leader, "_check_presentation", None)
    if not isinstance(checker, PresentationChecker):
        raise ConfigError("the Verifier service needs a leader with a [policy]")
    cpb_grpc.add_VerifierServicer_to_server(
        Verifier(checker, insecure=getattr(leader, "_insecure", False)), server
    )
    return cpb.DESCRIPTOR.services_by_name["Verifier"].full_name
