"""What the leader streams to a helper in Prepare and Finalize (server/peers.py).

The leader joins already encoded contributions into each ``FinalizeMessage``
(:func:`pets.transport.wire.field_record`) instead of building and encoding
message objects, the first batch in the header's message: the bytes must
parse to the header and the same batches of contributors as before, each with
only this helper's seeds, whether the contribution comes as a message
(Prepare) or as stored bytes (Finalize).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from pets.server.config import HelperEndpoint, ServerConfig
from pets.server.peers import FINALIZE_BATCH, HelperLink
from pets.transport import wire
from pets.v1 import aggregation_pb2 as pb


def _contribution(i: int, helpers: tuple[str, ...]) -> pb.SealedContribution:
    return pb.SealedContribution(
        holder=f"h{i:04d}",
        certificate=b"cert-%d" % i,
        seeds=[
            pb.SealedSeed(helper=h, sealed=bytes([i % 256]) * 80, signature=b"sig" + h.encode())
            for h in helpers
        ],
        public_share=b"p" if i % 3 == 0 else b"",
        verifier_share=b"v" * (i % 2),
    )


def _sent(
    helper: str, contributions: list[pb.SealedContribution | bytes]
) -> list[pb.FinalizeMessage]:
    """The messages HelperLink streams to ``helper``, parsed as the helper parses them."""

    async def collect() -> list[bytes]:
        config = ServerConfig("leader", "leader", "127.0.0.1:0", Path("."), 1, None)
        link = HelperLink(HelperEndpoint(helper, "127.0.0.1:9"), config, None)
        try:
            return list(link._messages("q-1", contributions))
        finally:
            await link.close()

    return [pb.FinalizeMessage.FromString(raw) for raw in asyncio.run(collect())]


def _expected(helper: str, contributions: list[pb.SealedContribution]) -> list[pb.FinalizeMessage]:
    mine = []
    for c in contributions:
        copy = pb.SealedContribution()
        copy.CopyFrom(c)
        del copy.seeds[:]
        copy.seeds.extend(s for s in c.seeds if s.helper == helper)
        mine.append(copy)
    header = pb.FinalizeHeader(query_id="q-1", contributors=len(contributions))
    batches = [mine[i : i + FINALIZE_BATCH] for i in range(0, len(mine), FINALIZE_BATCH)] or [[]]
    # The first batch travels with the header: one message for a small batch.
    return [pb.FinalizeMessage(header=header, contributions=batches[0])] + [
        pb.FinalizeMessage(contributions=batch) for batch in batches[1:]
    ]


def test_one_helper_gets_every_contribution_as_encoded_in_batches() -> None:
    items = [_contribution(i, ("helper-1",)) for i in range(FINALIZE_BATCH + 3)]
    assert _sent("helper-1", list(items)) == _expected("helper-1", items)
    stored: list[pb.SealedContribution | bytes] = [c.SerializeToString() for c in items]
    assert _sent("helper-1", stored) == _expected("helper-1", items)


def test_each_of_two_helpers_gets_only_its_own_seeds() -> None:
    items = [_contribution(i, ("helper-1", "helper-2")) for i in range(5)]
    for helper in ("helper-1", "helper-2"):
        sent = _sent(helper, list(items))
        assert sent == _expected(helper, items)
        relayed = [c for m in sent for c in m.contributions]
        assert len(relayed) == len(items)  # the check below runs over every one
        assert all([s.helper for s in c.seeds] == [helper] for c in relayed)
        stored: list[pb.SealedContribution | bytes] = [c.SerializeToString() for c in items]
        assert _sent(helper, stored) == sent


def test_no_contributors_is_a_header_alone() -> None:
    sent = _sent("helper-1", [])
    assert sent == _expected("helper-1", []) and len(sent) == 1
    assert sent[0].HasField("header") and not sent[0].contributions


def test_a_small_batch_is_one_message_the_helper_reads_as_before() -> None:
    from pets.server.helper.streams import read_contributors

    items = [_contribution(i, ("helper-1",)) for i in range(3)]
    sent = _sent("helper-1", list(items))
    assert len(sent) == 1

    async def read() -> tuple[pb.FinalizeHeader, list[pb.SealedContribution]]:
        async def stream():  # type: ignore[no-untyped-def]
            for m in sent:
                yield m

        return await read_contributors(stream())

    header, contributors = asyncio.run(read())
    assert header.contributors == 3 and contributors == items


@given(payloads=st.lists(st.binary(max_size=300), max_size=4))
def test_field_records_join_into_the_repeated_field(payloads: list[bytes]) -> None:
    contributions = [pb.SealedContribution(certificate=p) for p in payloads]
    joined = b"".join(wire.field_record(b"\x12", c.SerializeToString()) for c in contributions)
    assert joined == pb.FinalizeMessage(contributions=contributions).SerializeToString()
