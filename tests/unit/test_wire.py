"""Wire helpers: chunk collection, length prefixes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pets import wire
from pets.errors import InvalidInputError


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


@given(st.lists(st.binary(max_size=40), max_size=8))
def test_length_prefixes_round_trip(parts: list[bytes]) -> None:
    data = b"".join(wire.length_prefixed(p) for p in parts)
    assert wire.split_length_prefixed(data) == parts


@pytest.mark.parametrize("data", [b"\x00\x00", b"\x00\x00\x00\x05abc"])
def test_truncated_length_prefixes_are_refused(data: bytes) -> None:
    with pytest.raises(InvalidInputError):
        wire.split_length_prefixed(data)
