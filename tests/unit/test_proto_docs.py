"""The wire schema documents itself (issue 15, item 22): the .proto comments name
every query JSON key and filter operator, the share byte format and the Paillier
signing message, so a client can be written from the .proto alone. Checked
against the code, so the comments cannot drift from what the parties parse."""

from __future__ import annotations

from pathlib import Path

from pets.identity.signing import SPEC_DOMAIN
from pets.query.model import _DP_KEYS, _QUERY_KEYS, DP_UNITS, OPS, Aggregate

PROTO = (Path(__file__).resolve().parents[2] / "protos/pets/v1/aggregation.proto").read_text()


def test_the_query_json_keys_and_operators_are_named() -> None:
    for key in (*_QUERY_KEYS, *_DP_KEYS, *DP_UNITS, "op", "value"):
        assert f'"{key}"' in PROTO, key
    for op in OPS:
        assert f'"{op}"' in PROTO, op
    for aggregate in Aggregate:
        assert f'"{aggregate.value}"' in PROTO, aggregate


def test_the_share_format_and_signing_message_are_named() -> None:
    assert "little-endian uint64" in PROTO and "mod 2^64" in PROTO
    assert SPEC_DOMAIN.decode() in PROTO
    assert "4-byte big-endian length" in PROTO


def test_the_protocol_must_be_set_and_values_are_counted() -> None:
    assert "PROTOCOL_UNSPECIFIED is refused" in PROTO
    assert "uint64 value_count" in PROTO
