"""Conversion between :mod:`pets.zk.credential` objects and ``pets.v1`` protobuf messages.

Decoding is strict in the same way as the JSON forms: bad point encodings,
unparseable predicates, numbers that are not bounded ASCII decimals
(:func:`pets.zk.policy.parse_decimal`) or inconsistent fields raise
:class:`~pets.errors.InvalidProofError` for presentations and
:class:`~pets.errors.InvalidInputError` for credentials.
"""

from __future__ import annotations

from pets.errors import InvalidInputError, InvalidProofError, PetsError
from pets.v1 import credential_pb2 as pb
from pets.zk.credential import AttributeCommitment, Credential, Presentation
from pets.zk.group import Group, get_group
from pets.zk.policy import parse_decimal, parse_predicate


def credential_to_proto(cred: Credential) -> pb.Credential:
    return pb.Credential(
        schema_id=cred.schema_id,
        issuer_public_key=cred.issuer_public_key,
        holder_public_key=cred.holder_public_key.to_bytes(),
        expires_at=cred.expires_at,
        attributes=[
            pb.AttributeCommitment(
                name=a.name,
                kind=a.kind,
                max_value=str(a.max_value),
                commitment=a.commitment.to_bytes(),
            )
            for a in cred.attributes
        ],
        signature=cred.signature,
    )


def credential_from_proto(msg: pb.Credential, group: Group | None = None) -> Credential:
    group = get_group() if group is None else group
    attrs = []
    for a in msg.attributes:
        if a.kind not in ("int", "str"):
            raise InvalidInputError("malformed attribute in credential message")
        max_value = parse_decimal(a.max_value, "max_value")
        attrs.append(
            AttributeCommitment(a.name, a.kind, max_value, group.point_from_bytes(a.commitment))
        )
    if len(msg.issuer_public_key) != 32 or len(msg.signature) != 64:
        raise InvalidInputError("malformed issuer key or signature in credential message")
    return Credential(
        msg.schema_id,
        bytes(msg.issuer_public_key),
        group.point_from_bytes(msg.holder_public_key),
        msg.expires_at,
        tuple(attrs),
        bytes(msg.signature),
    )


def presentation_to_proto(p: Presentation) -> pb.Presentation:
    revealed = []
    for name in sorted(p.revealed):
        value = p.revealed[name]
        if isinstance(value, int):
            revealed.append(pb.RevealedValue(attribute=name, int_value=value))
        else:
            revealed.append(pb.RevealedValue(attribute=name, string_value=value))
    return pb.Presentation(
        credential=credential_to_proto(p.credential),
        nonce=p.nonce,
        context=p.context,
        predicates=[
            pb.PredicateProof(predicate=str(pred), proof=proof)
            for pred, proof in zip(p.predicates, p.proofs, strict=True)
        ],
        revealed=revealed,
        holder_proof=p.holder_proof,
    )


def presentation_from_proto(msg: pb.Presentation, group: Group | None = None) -> Presentation:
    """Strict decode; any malformation raises InvalidProofError."""
    try:
        if not msg.HasField("credential"):
            raise InvalidInputError("presentation message has no credential")
        revealed: dict[str, int | str] = {}
        for r in msg.revealed:
            kind = r.WhichOneof("value")
            if kind is None or r.attribute in revealed:
                raise InvalidInputError("malformed revealed value")
            revealed[r.attribute] = r.int_value if kind == "int_value" else r.string_value
        return Presentation(
            credential_from_proto(msg.credential, group),
            bytes(msg.nonce),
            bytes(msg.context),
            tuple(parse_predicate(item.predicate) for item in msg.predicates),
            revealed,
            bytes(msg.holder_proof),
            tuple(bytes(item.proof) for item in msg.predicates),
        )
    except PetsError as exc:
        raise InvalidProofError(f"malformed presentation: {exc}") from None
