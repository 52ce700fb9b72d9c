from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AttributeCommitment(_message.Message):
    __slots__ = ("name", "kind", "max_value", "commitment")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MAX_VALUE_FIELD_NUMBER: _ClassVar[int]
    COMMITMENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    max_value: str
    commitment: bytes
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., max_value: _Optional[str] = ..., commitment: _Optional[bytes] = ...) -> None: ...

class Credential(_message.Message):
    __slots__ = ("schema_id", "issuer_public_key", "holder_public_key", "expires_at", "attributes", "signature")
    SCHEMA_ID_FIELD_NUMBER: _ClassVar[int]
    ISSUER_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    HOLDER_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    schema_id: str
    issuer_public_key: bytes
    holder_public_key: bytes
    expires_at: int
    attributes: _containers.RepeatedCompositeFieldContainer[AttributeCommitment]
    signature: bytes
    def __init__(self, schema_id: _Optional[str] = ..., issuer_public_key: _Optional[bytes] = ..., holder_public_key: _Optional[bytes] = ..., expires_at: _Optional[int] = ..., attributes: _Optional[_Iterable[_Union[AttributeCommitment, _Mapping]]] = ..., signature: _Optional[bytes] = ...) -> None: ...

class RevealedValue(_message.Message):
    __slots__ = ("attribute", "int_value", "string_value")
    ATTRIBUTE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    attribute: str
    int_value: int
    string_value: str
    def __init__(self, attribute: _Optional[str] = ..., int_value: _Optional[int] = ..., string_value: _Optional[str] = ...) -> None: ...

class PredicateProof(_message.Message):
    __slots__ = ("predicate", "proof")
    PREDICATE_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    predicate: str
    proof: bytes
    def __init__(self, predicate: _Optional[str] = ..., proof: _Optional[bytes] = ...) -> None: ...

class Presentation(_message.Message):
    __slots__ = ("credential", "nonce", "context", "predicates", "revealed", "holder_proof")
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    PREDICATES_FIELD_NUMBER: _ClassVar[int]
    REVEALED_FIELD_NUMBER: _ClassVar[int]
    HOLDER_PROOF_FIELD_NUMBER: _ClassVar[int]
    credential: Credential
    nonce: bytes
    context: bytes
    predicates: _containers.RepeatedCompositeFieldContainer[PredicateProof]
    revealed: _containers.RepeatedCompositeFieldContainer[RevealedValue]
    holder_proof: bytes
    def __init__(self, credential: _Optional[_Union[Credential, _Mapping]] = ..., nonce: _Optional[bytes] = ..., context: _Optional[bytes] = ..., predicates: _Optional[_Iterable[_Union[PredicateProof, _Mapping]]] = ..., revealed: _Optional[_Iterable[_Union[RevealedValue, _Mapping]]] = ..., holder_proof: _Optional[bytes] = ...) -> None: ...

class NonceRequest(_message.Message):
    __slots__ = ("context",)
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    context: str
    def __init__(self, context: _Optional[str] = ...) -> None: ...

class NonceResponse(_message.Message):
    __slots__ = ("nonce", "ttl_seconds")
    NONCE_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    nonce: bytes
    ttl_seconds: float
    def __init__(self, nonce: _Optional[bytes] = ..., ttl_seconds: _Optional[float] = ...) -> None: ...

class VerifyRequest(_message.Message):
    __slots__ = ("presentation", "policy")
    PRESENTATION_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    presentation: Presentation
    policy: str
    def __init__(self, presentation: _Optional[_Union[Presentation, _Mapping]] = ..., policy: _Optional[str] = ...) -> None: ...

class VerifyResponse(_message.Message):
    __slots__ = ("accepted", "proven_predicates", "schema_id", "reason")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    PROVEN_PREDICATES_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    proven_predicates: _containers.RepeatedScalarFieldContainer[str]
    schema_id: str
    reason: str
    def __init__(self, accepted: _Optional[bool] = ..., proven_predicates: _Optional[_Iterable[str]] = ..., schema_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...
