"""Fiat-Shamir transcript: labelled, length-prefixed, every input changes the challenge."""

from __future__ import annotations

import os

from pets.zk.curve import N
from pets.zk.group import get_group
from pets.zk.hash_to_curve import hash_to_scalar
from pets.zk.transcript import _CHALLENGE_DST, Transcript, challenge_from_digest


def _challenge(*ops: tuple) -> int:
    t = Transcript(b"test")
    for name, *args in ops:
        getattr(t, name)(*args)
    return t.challenge()


def test_challenge_is_deterministic_scalar() -> None:
    a = _challenge(("append_bytes", b"x", b"1"))
    assert a == _challenge(("append_bytes", b"x", b"1")) and 0 <= a < N


def test_every_input_changes_the_challenge() -> None:
    g = get_group()
    base = [
        ("append_bytes", b"label", b"data"),
        ("append_point", b"p", g.generator),
        ("append_scalar", b"s", 7),
        ("append_int", b"i", -3),
    ]
    reference = _challenge(*base)
    variants = [
        [("append_bytes", b"label", b"datb"), *base[1:]],
        [("append_bytes", b"labek", b"data"), *base[1:]],
        [base[0], ("append_point", b"p", g.identity), *base[2:]],
        [*base[:2], ("append_scalar", b"s", 8), base[3]],
        [*base[:3], ("append_int", b"i", 3)],
        base[1:],
        [base[1], base[0], *base[2:]],
    ]
    challenges = {_challenge(*v) for v in variants}
    assert reference not in challenges and len(challenges) == len(variants)
    other = Transcript(b"other")
    for name, *args in base:
        getattr(other, name)(*args)
    assert other.challenge() != reference


def test_length_prefix_prevents_concatenation_ambiguity() -> None:
    assert _challenge(("append_bytes", b"a", b"bc")) != _challenge(("append_bytes", b"ab", b"c"))
    assert _challenge(("append_bytes", b"a", b"b"), ("append_bytes", b"c", b"")) != _challenge(
        ("append_bytes", b"a", b"bc")
    )


def test_successive_challenges_chain_and_copy_is_independent() -> None:
    t = Transcript(b"chain")
    clone = t.copy()
    first, second = t.challenge(), t.challenge()
    assert first != second
    assert clone.challenge() == first


def test_challenge_is_rfc9380_hash_to_field() -> None:
    for _ in range(20):
        digest = os.urandom(32)
        assert challenge_from_digest(digest) == hash_to_scalar(digest, _CHALLENGE_DST)
