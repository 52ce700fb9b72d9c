"""Wire helpers: chunk collection, length prefixes."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pets.errors import InvalidInputError
from pets.transport import wire


def test_collector_keeps_chunks_and_checks_the_announced_size() -> None:
    c = wire.ChunkCollector(6)
    c.add(b"abc")
    c.add(b"")
    c.add(b"def")
    assert c.finish() == [b"abc", b"def"]
    short = wire.ChunkCollector(6)
    short.add(b"abc")
    with pytest.raises(InvalidInputError, match="ended after 3 of 6"):
        short.finish()
    with pytest.raises(InvalidInputError, match="more than the announced 2"):
        wire.ChunkCollector(2).add(b"abc")


def test_assembler_hashes_only_when_asked() -> None:
    a = wire.ChunkAssembler(3, sha256=True)
    a.add(b"abc")
    assert a.finish() == b"abc" and a.digest() == wire.digest(b"abc")
    plain = wire.ChunkAssembler(3)
    plain.add(b"abc")
    with pytest.raises(InvalidInputError, match="sha256=True"):
        plain.digest()


@given(
    values=st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=40),
    cuts=st.lists(st.integers(0, 320), max_size=6),
)
def test_ring_adder_adds_a_stream_cut_anywhere(values: list[int], cuts: list[int]) -> None:
    import numpy as np

    vector = np.array(values, dtype=np.uint64)
    data = wire.vector_to_bytes(vector)
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    total = np.full(len(values), 5, dtype=np.uint64)
    adder = wire.RingAdder(total)
    for a, b in itertools.pairwise(bounds):
        adder.add(memoryview(data)[a:b])
    adder.finish()
    assert np.array_equal(total, vector + np.uint64(5))


def test_ring_adder_refuses_too_much_or_too_little() -> None:
    import numpy as np

    adder = wire.RingAdder(np.zeros(2, dtype=np.uint64))
    adder.add(bytes(12))
    with pytest.raises(InvalidInputError, match="ended after 12 of 16"):
        adder.finish()
    with pytest.raises(InvalidInputError, match="more than the announced 16"):
        adder.add(bytes(8))
    with pytest.raises(InvalidInputError, match="more than the announced 16"):
        wire.RingAdder(np.zeros(2, dtype=np.uint64)).add(bytes(17))


def test_chunk_codec_matches_protobuf() -> None:
    from pets.v1 import aggregation_pb2 as pb

    header = pb.ContributionHeader(query_id="q-1", payload_bytes=300)
    for h, data in [(header, b"x" * 300), (None, b"y" * 200), (header, b""), (None, b"")]:
        raw = wire.encode_chunk(h, data)
        assert raw == pb.ContributionChunk(header=h, data=data).SerializeToString()
        view = wire.decode_contribution_chunk(raw)
        assert bytes(view.data) == data
        assert view.HasField("header") == (h is not None)
        if h is not None:
            assert view.header == h
    agg = pb.AggregateHeader(query_id="q-1", server="leader", contributors=2)
    view = wire.decode_aggregate_chunk(wire.encode_chunk(agg, b"z" * 9))
    assert view.header == agg and bytes(view.data) == b"z" * 9


@given(fields=st.lists(st.tuples(st.sampled_from([1, 2, 7]), st.binary(max_size=20)), max_size=5))
def test_chunk_decoder_agrees_with_protobuf_on_any_field_order(
    fields: list[tuple[int, bytes]],
) -> None:
    """Repeated, reordered and unknown fields go to protobuf's parser: same answer."""
    from google.protobuf.message import DecodeError

    from pets.v1 import aggregation_pb2 as pb

    header = pb.ContributionHeader(query_id="q-2").SerializeToString()
    raw = b""
    for number, value in fields:
        payload = header if number == 1 else value
        raw += bytes([number << 3 | 2]) + wire._encode_varint(len(payload)) + payload
    try:
        want = pb.ContributionChunk.FromString(raw)
    except DecodeError:
        with pytest.raises(DecodeError):
            wire.decode_contribution_chunk(raw)
        return
    got = wire.decode_contribution_chunk(raw)
    assert bytes(got.data) == want.data
    assert got.HasField("header") == want.HasField("header")
    if want.HasField("header"):
        assert got.header == want.header
