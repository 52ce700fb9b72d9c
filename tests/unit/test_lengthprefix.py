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


def test_wider_prefix_known_answer() -> None:
    """8-byte prefixes (the linkage DLEQ context and seed: batches may pass 4 GiB)."""
    assert lengthprefix.encode(b"ab", width=8) == b"\x00" * 7 + b"\x02ab"
    assert lengthprefix.join([b"", b"x"], width=8) == b"\x00" * 8 + b"\x00" * 7 + b"\x01x"
    assert lengthprefix.encode(b"x" * 255, width=1) == b"\xff" + b"x" * 255


@given(st.lists(st.binary(max_size=40), max_size=8), st.sampled_from([1, 2, 4, 8]))
def test_any_width_round_trips(parts: list[bytes], width: int) -> None:
    assert lengthprefix.split(lengthprefix.join(parts, width=width), width=width) == parts


def test_items_too_long_for_the_width_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="1-byte length prefix"):
        lengthprefix.encode(b"x" * 256, width=1)
    with pytest.raises(InvalidInputError, match="truncated"):
        lengthprefix.split(b"\x00" * 7, width=8)
    with pytest.raises(InvalidInputError, match="width"):
        lengthprefix.encode(b"", width=0)


def test_linkage_dleq_uses_the_shared_framing() -> None:
    from pets.linkage import dleq

    assert not hasattr(dleq, "_lp")
    from pets.linkage.domain import LinkageDomain

    context = dleq.proof_context("leader", LinkageDomain("email"), "q-0123456789abcdef", "alice")
    assert lengthprefix.split(context, width=8) == [
        b"pets/linkage/v1/dleq-context",
        b"leader",
        b"email",
        b"q-0123456789abcdef",
        b"alice",
    ]
