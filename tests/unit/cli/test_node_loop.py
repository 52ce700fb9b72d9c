"""``pets node --loop``: the same event-loop choice as ``pets serve`` (uvloop when
installed, by default), run by a real node process in tests/integration."""

from __future__ import annotations

import pytest

from pets.cli import build_parser


def test_node_takes_uvloop_by_default_and_any_loop_on_request() -> None:
    parser = build_parser()
    assert parser.parse_args(["node", "--config", "n.toml"]).loop == "auto"
    for choice in ("asyncio", "uvloop"):
        assert parser.parse_args(["node", "--config", "n.toml", "--loop", choice]).loop == choice
    with pytest.raises(SystemExit):
        parser.parse_args(["node", "--config", "n.toml", "--loop", "trio"])
