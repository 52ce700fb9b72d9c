"""pets.lengthprefix: the one length-prefix framing, pinned and inverted."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pets import lengthprefix
from pets.errors import InvalidInputError


def test_known_answer() -> None:
    assert lengthprefix.encode(b"ab") == b"\x00\x00\x00\x02ab"
    assert lengthprefix.join([b"", b"x"]) == b"\x00\x00\x00\x00\x00\x00\x00\x01x"


@given(st.lists(st.binary(max_size=40), max_size=8))
def test_length_prefixes_round_trip(parts: list[bytes]) -> None:
    assert lengthprefix.split(lengthprefix.join(parts)) == parts


@given(st.lists(st.binary(max_size=8), max_size=4), st.lists(st.binary(max_size=8), max_size=4))
def test_distinct_part_lists_never_collide(a: list[bytes], b: list[bytes]) -> None:
    if a != b:
        assert lengthprefix.join(a) != lengthprefix.join(b)


@pytest.mark.parametrize("data", [b"\x00\x00", b"\x00\x00\x00\x05abc"])
def test_truncated_length_prefixes_are_refused(data: bytes) -> None:
    with pytest.raises(InvalidInputError):
        lengthprefix.split(data)
