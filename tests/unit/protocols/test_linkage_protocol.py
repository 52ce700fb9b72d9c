"""pets.protocols.linkage in process: the upload payload, the leader's aggregate, the helper's
sum over matched rows, and the signed messages (the service tests run them over gRPC)."""

from __future__ import annotations

import numpy as np
import pytest

from pets import prg, seal, sharing
from pets.errors import InvalidInputError, PetsError
from pets.protocols import lookup
from pets.protocols.linkage import (
    JOINED_TAG,
    JoinedRows,
    LinkageAggregate,
    LinkageProtocol,
    chunk_context,
    chunk_message,
    encode_payload,
    parse_payload,
    upload_message,
)
from pets.v1 import aggregation_pb2 as pb


def pseudonyms(ids: list[int]) -> bytes:
    return b"".join(i.to_bytes(16, "big") for i in ids)


def test_the_payload_round_trips_and_its_layout_is_checked() -> None:
    share = np.arange(6, dtype=np.uint64).reshape(3, 2)
    data = encode_payload(0, b"sig", pseudonyms([1, 2, 3]), share)
    rows = parse_payload(data, [2, 0], [10, 10])
    assert (rows.side, rows.rows, rows.signature) == (0, 3, b"sig")
    assert rows.pseudonyms == pseudonyms([1, 2, 3])
    assert rows.shares.tolist() == share.tolist()
    other = parse_payload(
        encode_payload(1, b"", pseudonyms([4]), np.zeros((1, 0))), [2, 0], [10, 10]
    )
    assert other.shares.shape == (1, 0)
    with pytest.raises(InvalidInputError, match="2 sides"):
        parse_payload(encode_payload(2, b"", pseudonyms([4]), np.zeros((1, 0))), [2, 0], [10, 10])
    with pytest.raises(InvalidInputError, match="at most 2 rows"):
        parse_payload(data, [2, 0], [2, 10])
    with pytest.raises(InvalidInputError, match="bytes, got"):
        parse_payload(data[:-1], [2, 0], [10, 10])
    with pytest.raises(InvalidInputError):
        parse_payload(b"\x00" * 5, [2, 0], [10, 10])


def test_the_leader_joins_in_memory_and_stores_no_pseudonym() -> None:
    agg = LinkageAggregate(1, [1, 0], [10, 10])
    a = parse_payload(
        encode_payload(0, b"", pseudonyms([1, 2, 3]), np.array([[5], [7], [11]])), [1, 0], [10, 10]
    )
    b = parse_payload(
        encode_payload(1, b"", pseudonyms([2, 3, 9]), np.zeros((3, 0))), [1, 0], [10, 10]
    )
    with pytest.raises(InvalidInputError):
        agg.add(a)  # not through Prepare: whose it is is unknown
    a.holder, b.holder = "a", "b"
    agg.add(a)
    agg.add(b)
    durable = bytes(agg.to_bytes())
    assert pseudonyms([2]) not in durable and agg.count == 2
    matched = agg.join("q-1")
    assert matched.records == 2 and agg.result is not None and agg.result.tolist() == [18]
    released = LinkageProtocol().release_share(agg.to_bytes())
    assert released is not None and np.frombuffer(released, np.uint64).tolist() == [18]
    restored = LinkageAggregate(1, [1, 0], [10, 10], bytes(agg.to_bytes()), count=2)
    assert restored.result is not None and restored.result.tolist() == [18]
    lost = LinkageAggregate(1, [1, 0], [10, 10], durable, count=2)
    with pytest.raises(PetsError, match="memory only"):
        lost.join("q-1")
    with pytest.raises(PetsError, match="only after its join"):
        LinkageProtocol().release_share(durable)


def test_the_helper_sums_its_seed_expansions_over_the_matched_rows() -> None:
    from cryptography.hazmat.primitives.asymmetric import x25519

    from pets.protocols.base import HelperQueryContext

    key = x25519.X25519PrivateKey.generate()
    seed = prg.new_seed()
    values = np.array([[5], [7], [11]], dtype=np.uint64)
    leader = sharing.shard(values.reshape(-1), 2, seeds=[seed]).leader.reshape(3, 1)
    ctx = seal.SeedContext("q-1", b"f" * 32, "a", "helper-1")
    item = pb.SealedContribution(
        holder="a",
        seeds=[pb.SealedSeed(helper="helper-1", sealed=seal.seal(seed, key.public_key(), ctx))],
    )
    protocol = lookup(pb.PROTOCOL_LINKAGE)
    context = HelperQueryContext("q-1", b"f" * 32, 1, 0.0, 1e12, "helper-1", key, None, True)
    digest = seal.contribution_digest("q-1", [seed])
    protocol.remember_join(
        "helper-1", "q-1", JoinedRows({"a": (0, 3, digest)}, {"a": np.array([1, 2])}, b"d")
    )
    share = np.frombuffer(protocol.helper_checker(context).finalise([item]), np.uint64)
    assert int((share + leader[[1, 2]].sum(axis=0, dtype=np.uint64))[0]) == 18
    protocol.remember_join(
        "helper-1", "q-1", JoinedRows({"a": (0, 3, bytes(32))}, {"a": np.array([1])}, b"d")
    )
    with pytest.raises(InvalidInputError, match="not bound to its sealed seed"):
        protocol.helper_checker(context).finalise([item])
    protocol.forget_join("helper-1", "q-1")
    with pytest.raises(InvalidInputError, match="LinkageJoin comes first"):
        protocol.helper_checker(context).finalise([item])


def test_signed_messages_bind_every_field() -> None:
    base = chunk_message("d", "q-1", "h", 10, 0, b"p" * 33)
    for other in (
        chunk_message("e", "q-1", "h", 10, 0, b"p" * 33),
        chunk_message("d", "q-2", "h", 10, 0, b"p" * 33),
        chunk_message("d", "q-1", "g", 10, 0, b"p" * 33),
        chunk_message("d", "q-1", "h", 11, 0, b"p" * 33),
        chunk_message("d", "q-1", "h", 10, 1, b"p" * 33),
        chunk_message("d", "q-1", "h", 10, 0, b"q" * 33),
    ):
        assert other != base
    assert chunk_context("helper", "d", "q", "h", 0) != chunk_context("leader", "d", "q", "h", 0)
    assert chunk_context("helper", "d", "q", "h", 0) != chunk_context("helper", "d", "q", "h", 1)
    up = upload_message("q", b"f", "h", 0, 1, bytes(16), bytes(32))
    assert up != upload_message("q", b"f", "h", 1, 1, bytes(16), bytes(32))
    assert up != upload_message("q", b"f", "h", 0, 1, bytes(16), b"\x01" * 32)
    assert JOINED_TAG not in up
