"""The raw-Keccak fast path of TurboSHAKE128 is used only if it gives the known answers.

pycryptodome's private ``_raw_keccak_lib`` is driven directly for speed
(:func:`pets.vdaf.xof._make_oneshot`); if its layout changes, the self-test
must notice and the public API be used. A self-test that checked only the
empty message would accept an implementation wrong on every real message.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from pets.vdaf import xof

VECTOR = Path(__file__).parents[2] / "vectors" / "vdaf" / "XofTurboShake128.json"


def test_embedded_known_answers_are_the_vectors() -> None:
    doc = json.loads(VECTOR.read_text())
    dst, seed = bytes.fromhex(doc["dst"]), bytes.fromhex(doc["seed"])
    message = len(dst).to_bytes(2, "little") + dst + bytes([len(seed)]) + seed
    assert message + bytes.fromhex(doc["binder"]) == xof._KAT_MESSAGE
    assert xof._KAT_SEED.hex() == doc["derived_seed"]
    stream = bytes.fromhex(doc["expanded_vec_field128"])
    assert len(stream) == 640
    assert hashlib.sha256(stream).digest() == xof._KAT_STREAM_SHA256


def test_public_and_fast_paths_pass_the_self_test() -> None:
    assert xof._self_test(xof._public_oneshot)
    fast = xof._make_oneshot()
    assert fast is None or xof._self_test(fast)
    assert xof.turboshake128 is (xof._FAST or xof._public_oneshot)


def _right_only_on(messages: set[bytes]) -> Callable[[bytes, int], bytes]:
    def oneshot(msg: bytes, length: int) -> bytes:
        out = xof._public_oneshot(msg, length)
        return out if msg in messages else bytes(length)

    return oneshot


def test_an_implementation_right_only_on_the_empty_message_is_refused() -> None:
    assert not xof._self_test(_right_only_on({b""}))
    assert not xof._self_test(_right_only_on({b"", xof._KAT_MESSAGE}))  # long messages wrong


def test_an_implementation_wrong_past_one_squeeze_block_is_refused() -> None:
    def short_stream(msg: bytes, length: int) -> bytes:
        out = xof._public_oneshot(msg, min(length, 168))
        return out + bytes(length - len(out))

    assert not xof._self_test(short_stream)


def test_an_implementation_that_raises_is_refused() -> None:
    def broken(msg: bytes, length: int) -> bytes:
        raise OSError("symbol not found")

    assert not xof._self_test(broken)
