from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Protocol(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROTOCOL_UNSPECIFIED: _ClassVar[Protocol]
    PROTOCOL_ADDITIVE: _ClassVar[Protocol]
    PROTOCOL_PAILLIER: _ClassVar[Protocol]
    PROTOCOL_PRIO3: _ClassVar[Protocol]
    PROTOCOL_LINKAGE: _ClassVar[Protocol]

class QueryState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUERY_STATE_UNSPECIFIED: _ClassVar[QueryState]
    QUERY_STATE_OPEN: _ClassVar[QueryState]
    QUERY_STATE_CLOSED: _ClassVar[QueryState]
    QUERY_STATE_READY: _ClassVar[QueryState]
    QUERY_STATE_FAILED: _ClassVar[QueryState]
PROTOCOL_UNSPECIFIED: Protocol
PROTOCOL_ADDITIVE: Protocol
PROTOCOL_PAILLIER: Protocol
PROTOCOL_PRIO3: Protocol
PROTOCOL_LINKAGE: Protocol
QUERY_STATE_UNSPECIFIED: QueryState
QUERY_STATE_OPEN: QueryState
QUERY_STATE_CLOSED: QueryState
QUERY_STATE_READY: QueryState
QUERY_STATE_FAILED: QueryState

class QuerySpec(_message.Message):
    __slots__ = ("query_json", "protocol", "min_holders", "deadline_seconds", "close_after", "paillier_public_key", "max_holders", "analyst_certificate", "analyst_signature", "spec_id", "not_after_unix", "min_intersection")
    QUERY_JSON_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    MIN_HOLDERS_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CLOSE_AFTER_FIELD_NUMBER: _ClassVar[int]
    PAILLIER_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    MAX_HOLDERS_FIELD_NUMBER: _ClassVar[int]
    ANALYST_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    ANALYST_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    SPEC_ID_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_UNIX_FIELD_NUMBER: _ClassVar[int]
    MIN_INTERSECTION_FIELD_NUMBER: _ClassVar[int]
    query_json: str
    protocol: Protocol
    min_holders: int
    deadline_seconds: float
    close_after: int
    paillier_public_key: bytes
    max_holders: int
    analyst_certificate: bytes
    analyst_signature: bytes
    spec_id: bytes
    not_after_unix: int
    min_intersection: int
    def __init__(self, query_json: _Optional[str] = ..., protocol: _Optional[_Union[Protocol, str]] = ..., min_holders: _Optional[int] = ..., deadline_seconds: _Optional[float] = ..., close_after: _Optional[int] = ..., paillier_public_key: _Optional[bytes] = ..., max_holders: _Optional[int] = ..., analyst_certificate: _Optional[bytes] = ..., analyst_signature: _Optional[bytes] = ..., spec_id: _Optional[bytes] = ..., not_after_unix: _Optional[int] = ..., min_intersection: _Optional[int] = ...) -> None: ...

class SubmitQueryRequest(_message.Message):
    __slots__ = ("spec", "presentation", "presentation_nonce")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    PRESENTATION_FIELD_NUMBER: _ClassVar[int]
    PRESENTATION_NONCE_FIELD_NUMBER: _ClassVar[int]
    spec: QuerySpec
    presentation: bytes
    presentation_nonce: bytes
    def __init__(self, spec: _Optional[_Union[QuerySpec, _Mapping]] = ..., presentation: _Optional[bytes] = ..., presentation_nonce: _Optional[bytes] = ...) -> None: ...

class QueryRef(_message.Message):
    __slots__ = ("query_id",)
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    def __init__(self, query_id: _Optional[str] = ...) -> None: ...

class QueryStatus(_message.Message):
    __slots__ = ("query_id", "state", "spec", "analyst", "contributors", "min_holders", "deadline_unix", "failure", "failure_detail", "vector_length", "proven_predicates", "helpers", "rejected_contributions", "stuck_reason", "stuck_attempts", "value_count")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    ANALYST_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTORS_FIELD_NUMBER: _ClassVar[int]
    MIN_HOLDERS_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_UNIX_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_DETAIL_FIELD_NUMBER: _ClassVar[int]
    VECTOR_LENGTH_FIELD_NUMBER: _ClassVar[int]
    PROVEN_PREDICATES_FIELD_NUMBER: _ClassVar[int]
    HELPERS_FIELD_NUMBER: _ClassVar[int]
    REJECTED_CONTRIBUTIONS_FIELD_NUMBER: _ClassVar[int]
    STUCK_REASON_FIELD_NUMBER: _ClassVar[int]
    STUCK_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    VALUE_COUNT_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    state: QueryState
    spec: QuerySpec
    analyst: str
    contributors: int
    min_holders: int
    deadline_unix: float
    failure: str
    failure_detail: str
    vector_length: int
    proven_predicates: _containers.RepeatedScalarFieldContainer[str]
    helpers: _containers.RepeatedScalarFieldContainer[str]
    rejected_contributions: int
    stuck_reason: str
    stuck_attempts: int
    value_count: int
    def __init__(self, query_id: _Optional[str] = ..., state: _Optional[_Union[QueryState, str]] = ..., spec: _Optional[_Union[QuerySpec, _Mapping]] = ..., analyst: _Optional[str] = ..., contributors: _Optional[int] = ..., min_holders: _Optional[int] = ..., deadline_unix: _Optional[float] = ..., failure: _Optional[str] = ..., failure_detail: _Optional[str] = ..., vector_length: _Optional[int] = ..., proven_predicates: _Optional[_Iterable[str]] = ..., helpers: _Optional[_Iterable[str]] = ..., rejected_contributions: _Optional[int] = ..., stuck_reason: _Optional[str] = ..., stuck_attempts: _Optional[int] = ..., value_count: _Optional[int] = ...) -> None: ...

class QueryAnnouncement(_message.Message):
    __slots__ = ("query_id", "spec", "deadline_unix", "vector_length", "helpers", "fingerprint", "helper_keys", "analyst")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_UNIX_FIELD_NUMBER: _ClassVar[int]
    VECTOR_LENGTH_FIELD_NUMBER: _ClassVar[int]
    HELPERS_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    HELPER_KEYS_FIELD_NUMBER: _ClassVar[int]
    ANALYST_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    spec: QuerySpec
    deadline_unix: float
    vector_length: int
    helpers: _containers.RepeatedScalarFieldContainer[str]
    fingerprint: bytes
    helper_keys: _containers.RepeatedCompositeFieldContainer[HelperKey]
    analyst: str
    def __init__(self, query_id: _Optional[str] = ..., spec: _Optional[_Union[QuerySpec, _Mapping]] = ..., deadline_unix: _Optional[float] = ..., vector_length: _Optional[int] = ..., helpers: _Optional[_Iterable[str]] = ..., fingerprint: _Optional[bytes] = ..., helper_keys: _Optional[_Iterable[_Union[HelperKey, _Mapping]]] = ..., analyst: _Optional[str] = ...) -> None: ...

class WatchQueriesRequest(_message.Message):
    __slots__ = ("include_open",)
    INCLUDE_OPEN_FIELD_NUMBER: _ClassVar[int]
    include_open: bool
    def __init__(self, include_open: _Optional[bool] = ...) -> None: ...

class SealedSeed(_message.Message):
    __slots__ = ("helper", "sealed", "signature")
    HELPER_FIELD_NUMBER: _ClassVar[int]
    SEALED_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    helper: str
    sealed: bytes
    signature: bytes
    def __init__(self, helper: _Optional[str] = ..., sealed: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class HelperKey(_message.Message):
    __slots__ = ("helper", "seal_public_key", "certificate", "signature", "not_after_unix")
    HELPER_FIELD_NUMBER: _ClassVar[int]
    SEAL_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_UNIX_FIELD_NUMBER: _ClassVar[int]
    helper: str
    seal_public_key: bytes
    certificate: bytes
    signature: bytes
    not_after_unix: int
    def __init__(self, helper: _Optional[str] = ..., seal_public_key: _Optional[bytes] = ..., certificate: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., not_after_unix: _Optional[int] = ...) -> None: ...

class ContributionHeader(_message.Message):
    __slots__ = ("query_id", "payload_bytes", "contribution_digest", "sealed_seeds")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_BYTES_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTION_DIGEST_FIELD_NUMBER: _ClassVar[int]
    SEALED_SEEDS_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    payload_bytes: int
    contribution_digest: bytes
    sealed_seeds: _containers.RepeatedCompositeFieldContainer[SealedSeed]
    def __init__(self, query_id: _Optional[str] = ..., payload_bytes: _Optional[int] = ..., contribution_digest: _Optional[bytes] = ..., sealed_seeds: _Optional[_Iterable[_Union[SealedSeed, _Mapping]]] = ...) -> None: ...

class LinkageUpload(_message.Message):
    __slots__ = ("side", "rows", "signature")
    SIDE_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    side: int
    rows: int
    signature: bytes
    def __init__(self, side: _Optional[int] = ..., rows: _Optional[int] = ..., signature: _Optional[bytes] = ...) -> None: ...

class ContributionChunk(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: ContributionHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[ContributionHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class ContributionAck(_message.Message):
    __slots__ = ("query_id", "holder", "newly_accepted", "contributors")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    NEWLY_ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTORS_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    holder: str
    newly_accepted: bool
    contributors: int
    def __init__(self, query_id: _Optional[str] = ..., holder: _Optional[str] = ..., newly_accepted: _Optional[bool] = ..., contributors: _Optional[int] = ...) -> None: ...

class ContributionStreamRequest(_message.Message):
    __slots__ = ("sequence", "contribution")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    contribution: ContributionChunk
    def __init__(self, sequence: _Optional[int] = ..., contribution: _Optional[_Union[ContributionChunk, _Mapping]] = ...) -> None: ...

class ContributionStreamResponse(_message.Message):
    __slots__ = ("sequence", "ack", "error")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    ack: ContributionAck
    error: StreamError
    def __init__(self, sequence: _Optional[int] = ..., ack: _Optional[_Union[ContributionAck, _Mapping]] = ..., error: _Optional[_Union[StreamError, _Mapping]] = ...) -> None: ...

class StreamError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class AggregateHeader(_message.Message):
    __slots__ = ("query_id", "server", "protocol", "contributors", "payload_bytes")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTORS_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_BYTES_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    server: str
    protocol: Protocol
    contributors: int
    payload_bytes: int
    def __init__(self, query_id: _Optional[str] = ..., server: _Optional[str] = ..., protocol: _Optional[_Union[Protocol, str]] = ..., contributors: _Optional[int] = ..., payload_bytes: _Optional[int] = ...) -> None: ...

class AggregateChunk(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: AggregateHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[AggregateHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class RegisterQueryRequest(_message.Message):
    __slots__ = ("query_id", "spec", "analyst", "vector_length", "deadline_unix", "min_holders", "fingerprint", "verify_key", "aggregator_id", "prio3_bounds")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    ANALYST_FIELD_NUMBER: _ClassVar[int]
    VECTOR_LENGTH_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_UNIX_FIELD_NUMBER: _ClassVar[int]
    MIN_HOLDERS_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    VERIFY_KEY_FIELD_NUMBER: _ClassVar[int]
    AGGREGATOR_ID_FIELD_NUMBER: _ClassVar[int]
    PRIO3_BOUNDS_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    spec: QuerySpec
    analyst: str
    vector_length: int
    deadline_unix: float
    min_holders: int
    fingerprint: bytes
    verify_key: bytes
    aggregator_id: int
    prio3_bounds: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, query_id: _Optional[str] = ..., spec: _Optional[_Union[QuerySpec, _Mapping]] = ..., analyst: _Optional[str] = ..., vector_length: _Optional[int] = ..., deadline_unix: _Optional[float] = ..., min_holders: _Optional[int] = ..., fingerprint: _Optional[bytes] = ..., verify_key: _Optional[bytes] = ..., aggregator_id: _Optional[int] = ..., prio3_bounds: _Optional[_Iterable[int]] = ...) -> None: ...

class RegisterQueryResponse(_message.Message):
    __slots__ = ("seal_key",)
    SEAL_KEY_FIELD_NUMBER: _ClassVar[int]
    seal_key: HelperKey
    def __init__(self, seal_key: _Optional[_Union[HelperKey, _Mapping]] = ...) -> None: ...

class FinalizeHeader(_message.Message):
    __slots__ = ("query_id", "contributors", "abort")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTORS_FIELD_NUMBER: _ClassVar[int]
    ABORT_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    contributors: int
    abort: bool
    def __init__(self, query_id: _Optional[str] = ..., contributors: _Optional[int] = ..., abort: _Optional[bool] = ...) -> None: ...

class SealedContribution(_message.Message):
    __slots__ = ("holder", "certificate", "seeds", "public_share", "verifier_share", "verifier_message")
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    SEEDS_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_SHARE_FIELD_NUMBER: _ClassVar[int]
    VERIFIER_SHARE_FIELD_NUMBER: _ClassVar[int]
    VERIFIER_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    holder: str
    certificate: bytes
    seeds: _containers.RepeatedCompositeFieldContainer[SealedSeed]
    public_share: bytes
    verifier_share: bytes
    verifier_message: bytes
    def __init__(self, holder: _Optional[str] = ..., certificate: _Optional[bytes] = ..., seeds: _Optional[_Iterable[_Union[SealedSeed, _Mapping]]] = ..., public_share: _Optional[bytes] = ..., verifier_share: _Optional[bytes] = ..., verifier_message: _Optional[bytes] = ...) -> None: ...

class FinalizeMessage(_message.Message):
    __slots__ = ("header", "contributions")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTIONS_FIELD_NUMBER: _ClassVar[int]
    header: FinalizeHeader
    contributions: _containers.RepeatedCompositeFieldContainer[SealedContribution]
    def __init__(self, header: _Optional[_Union[FinalizeHeader, _Mapping]] = ..., contributions: _Optional[_Iterable[_Union[SealedContribution, _Mapping]]] = ...) -> None: ...

class FinalizeResponse(_message.Message):
    __slots__ = ("query_id", "contributors")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTORS_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    contributors: int
    def __init__(self, query_id: _Optional[str] = ..., contributors: _Optional[int] = ...) -> None: ...

class PrepareResponse(_message.Message):
    __slots__ = ("query_id", "refused", "accepted", "verifier_shares")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    VERIFIER_SHARES_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    refused: _containers.RepeatedCompositeFieldContainer[Refusal]
    accepted: int
    verifier_shares: _containers.RepeatedCompositeFieldContainer[VerifierShare]
    def __init__(self, query_id: _Optional[str] = ..., refused: _Optional[_Iterable[_Union[Refusal, _Mapping]]] = ..., accepted: _Optional[int] = ..., verifier_shares: _Optional[_Iterable[_Union[VerifierShare, _Mapping]]] = ...) -> None: ...

class VerifierShare(_message.Message):
    __slots__ = ("holder", "share")
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    holder: str
    share: bytes
    def __init__(self, holder: _Optional[str] = ..., share: _Optional[bytes] = ...) -> None: ...

class Refusal(_message.Message):
    __slots__ = ("holder", "reason")
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    holder: str
    reason: str
    def __init__(self, holder: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class HelperInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HelperInfo(_message.Message):
    __slots__ = ("name", "seal_key")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SEAL_KEY_FIELD_NUMBER: _ClassVar[int]
    name: str
    seal_key: HelperKey
    def __init__(self, name: _Optional[str] = ..., seal_key: _Optional[_Union[HelperKey, _Mapping]] = ...) -> None: ...

class LinkageKey(_message.Message):
    __slots__ = ("role", "server", "public_key", "certificate", "signature")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SERVER_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    role: str
    server: str
    public_key: bytes
    certificate: bytes
    signature: bytes
    def __init__(self, role: _Optional[str] = ..., server: _Optional[str] = ..., public_key: _Optional[bytes] = ..., certificate: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class LinkageBatchHeader(_message.Message):
    __slots__ = ("query_id", "domain", "rows", "prove", "holder", "certificate", "chunk_points")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    PROVE_FIELD_NUMBER: _ClassVar[int]
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    CHUNK_POINTS_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    domain: str
    rows: int
    prove: bool
    holder: str
    certificate: bytes
    chunk_points: int
    def __init__(self, query_id: _Optional[str] = ..., domain: _Optional[str] = ..., rows: _Optional[int] = ..., prove: _Optional[bool] = ..., holder: _Optional[str] = ..., certificate: _Optional[bytes] = ..., chunk_points: _Optional[int] = ...) -> None: ...

class LinkageBatchChunk(_message.Message):
    __slots__ = ("header", "index", "points", "signature")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    header: LinkageBatchHeader
    index: int
    points: bytes
    signature: bytes
    def __init__(self, header: _Optional[_Union[LinkageBatchHeader, _Mapping]] = ..., index: _Optional[int] = ..., points: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class LinkageEvaluation(_message.Message):
    __slots__ = ("keys", "index", "points", "proof", "helper_points", "helper_proof")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    HELPER_POINTS_FIELD_NUMBER: _ClassVar[int]
    HELPER_PROOF_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[LinkageKey]
    index: int
    points: bytes
    proof: bytes
    helper_points: bytes
    helper_proof: bytes
    def __init__(self, keys: _Optional[_Iterable[_Union[LinkageKey, _Mapping]]] = ..., index: _Optional[int] = ..., points: _Optional[bytes] = ..., proof: _Optional[bytes] = ..., helper_points: _Optional[bytes] = ..., helper_proof: _Optional[bytes] = ...) -> None: ...

class LinkageJoinHeader(_message.Message):
    __slots__ = ("query_id", "contributors", "digest")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTORS_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    contributors: int
    digest: bytes
    def __init__(self, query_id: _Optional[str] = ..., contributors: _Optional[int] = ..., digest: _Optional[bytes] = ...) -> None: ...

class LinkagePseudonyms(_message.Message):
    __slots__ = ("holder", "certificate", "upload", "contribution_digest", "pseudonyms", "last")
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTION_DIGEST_FIELD_NUMBER: _ClassVar[int]
    PSEUDONYMS_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    holder: str
    certificate: bytes
    upload: LinkageUpload
    contribution_digest: bytes
    pseudonyms: bytes
    last: bool
    def __init__(self, holder: _Optional[str] = ..., certificate: _Optional[bytes] = ..., upload: _Optional[_Union[LinkageUpload, _Mapping]] = ..., contribution_digest: _Optional[bytes] = ..., pseudonyms: _Optional[bytes] = ..., last: _Optional[bool] = ...) -> None: ...

class LinkageJoinMessage(_message.Message):
    __slots__ = ("header", "part")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    PART_FIELD_NUMBER: _ClassVar[int]
    header: LinkageJoinHeader
    part: LinkagePseudonyms
    def __init__(self, header: _Optional[_Union[LinkageJoinHeader, _Mapping]] = ..., part: _Optional[_Union[LinkagePseudonyms, _Mapping]] = ...) -> None: ...

class LinkageJoinResponse(_message.Message):
    __slots__ = ("query_id", "digest")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    digest: bytes
    def __init__(self, query_id: _Optional[str] = ..., digest: _Optional[bytes] = ...) -> None: ...
