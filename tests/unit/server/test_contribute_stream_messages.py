"""``server/leader/stream.py``: reading a request that may not parse, and error answers."""

from __future__ import annotations

import errno

import grpc
from hypothesis import given
from hypothesis import strategies as st

from pets.errors import ConflictError, InvalidInputError, NotReadyError, UnavailableError
from pets.server.leader.stream import GarbledRequest, decode_request, error_response
from pets.v1 import aggregation_pb2 as pb


def test_a_request_that_parses_is_returned_as_is() -> None:
    request = pb.ContributionStreamRequest(
        sequence=300, contribution=pb.ContributionChunk(data=b"x")
    )
    decoded = decode_request(request.SerializeToString())
    assert isinstance(decoded, pb.ContributionStreamRequest)
    assert decoded == request


def test_a_garbled_request_keeps_the_sequence_it_starts_with() -> None:
    # sequence 300 (a two-byte varint), then field 2 announcing more bytes than follow
    garbled = decode_request(b"\x08\xac\x02\x12\x05ab")
    assert isinstance(garbled, GarbledRequest) and garbled.sequence == 300
    for raw in (b"\x12\x05ab", b"\x08", b"\x08\xff\xff", b"\xff" * 12):
        garbled = decode_request(raw)
        assert isinstance(garbled, GarbledRequest) and garbled.sequence == 0, raw


@given(st.binary(max_size=64))
def test_decoding_never_raises(raw: bytes) -> None:
    decoded = decode_request(raw)
    assert isinstance(decoded, pb.ContributionStreamRequest | GarbledRequest)
    assert 0 <= decoded.sequence < 2**64


def test_errors_answer_with_the_status_contribute_one_would_end_with() -> None:
    cases = [
        (InvalidInputError("bad length"), grpc.StatusCode.INVALID_ARGUMENT, "bad length"),
        (ConflictError("other vector"), grpc.StatusCode.ALREADY_EXISTS, "other vector"),
        (NotReadyError("closed"), grpc.StatusCode.FAILED_PRECONDITION, "closed"),
        (UnavailableError("busy"), grpc.StatusCode.UNAVAILABLE, "busy"),
        (RuntimeError("secret detail"), grpc.StatusCode.INTERNAL, "internal error"),
        (OSError(errno.ENOSPC, "full"), grpc.StatusCode.RESOURCE_EXHAUSTED, "disk is full"),
    ]
    for exc, code, text in cases:
        response = error_response(7, exc)
        assert response.sequence == 7 and response.WhichOneof("result") == "error"
        assert response.error.code == code.value[0], exc
        assert text in response.error.message
        assert "secret" not in response.error.message
