"""The README's operator-facing promises (issue 15, items 18 and 19).

The walk-through is run for real, from examples/local, by
tests/integration/test_examples.py; here: what the README must say and the
commands' help must show for it to work when followed literally.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from pets.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _section(heading: str) -> str:
    start = README.index(f"## {heading}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end > 0 else None]


def _help(*argv: str) -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices[argv[0]].format_help()  # type: ignore[union-attr]


def test_by_hand_issues_enough_holders_and_closes_early() -> None:
    text = _section("Running it by hand")
    block = text[text.index("```sh") : text.index("```", text.index("```sh") + 5)]
    min_holders = tomllib.loads((ROOT / "examples/local/leader.toml").read_text())["min_holders"]
    holders = re.search(r"for i in ([\d ]+); do pets certs issue .*--role holder", block)
    assert holders is not None and len(holders.group(1).split()) >= min_holders
    nodes = re.search(r"for i in ([\d ]+); do pets node --config node-0\$i.toml", block)
    assert nodes is not None and len(nodes.group(1).split()) >= min_holders
    assert "--close-after" in block
    for config in ("helper.toml", "leader.toml", "node-01.toml", "analyst.toml"):
        assert config in text and (ROOT / "examples/local" / config).exists()
    assert "examples/local" in text and "pets result" in text


def test_serve_and_node_help_show_the_config_format() -> None:
    serve, node = _help("serve"), _help("node")
    for key in ("role", "listen", "state_dir", "min_holders", "[tls]", "[[helpers]]"):
        assert key in serve, key
    for key in ("leader", "state_dir", "[data]", "[helpers]", "[tls]", "same_query_answers"):
        assert key in node, key
    assert "server/config.py" in serve and "client/config.py" in node


def test_dishonest_holders_are_described_per_protocol() -> None:
    text = README[README.index("What is *not* protected") :]
    text = text[: text.index("\n### ")]
    for protocol in ("**additive**", "**paillier**", "**prio3**"):
        assert protocol in text, protocol
    assert "undecodable" in text and "docs/PRIO3.md" in text
    assert "whole range" in README or "*any* amount" in text
    assert "lie about its own data within the declared bounds" not in README
