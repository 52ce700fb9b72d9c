"""Several addresses per server (issue 14): config forms, errors, and the gRPC target."""

from __future__ import annotations

from pathlib import Path

import pytest

from pets.client.config import load_analyst_config
from pets.errors import ConfigError
from pets.server.config import parse_config
from pets.transport.targets import channel_target, parse_addresses, split_addresses


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:7001", "127.0.0.1:7001"),
        ("10.0.0.1:7001,10.0.0.2:7001", "10.0.0.1:7001,10.0.0.2:7001"),
        (" 10.0.0.1:7001 , 10.0.0.2:7001 ", "10.0.0.1:7001,10.0.0.2:7001"),
        (["10.0.0.1:7001", "leader.example:7001"], "10.0.0.1:7001,leader.example:7001"),
        (["[::1]:7001"], "[::1]:7001"),
    ],
)
def test_one_address_a_comma_list_or_an_array(value: object, expected: str) -> None:
    assert parse_addresses(value, "leader") == expected


@pytest.mark.parametrize(
    "value",
    [None, "", "7001", "host", "host:port", ["a:1", 2], [], "a:1,a:1", "::1:7001", "a b:1"],
)
def test_malformed_addresses_are_refused_naming_the_setting(value: object) -> None:
    with pytest.raises(ConfigError, match="leader"):
        parse_addresses(value, "leader")


def test_one_address_goes_to_the_dns_resolver_as_it_is() -> None:
    assert channel_target("leader.example:7001") == "leader.example:7001"


def test_several_addresses_become_one_address_list() -> None:
    assert channel_target("127.0.0.1:1,127.0.0.2:2") == "ipv4:127.0.0.1:1,127.0.0.2:2"
    assert channel_target("[::1]:1,[::2]:2") == "ipv6:[::1]:1,[::2]:2"
    # A name is resolved when the channel opens; duplicates are dropped.
    target = channel_target("localhost:5,127.0.0.1:5")
    assert target.startswith("ipv4:") and split_addresses(target[5:]) == ("127.0.0.1:5",)


def test_client_and_server_configs_accept_several_addresses(tmp_path: Path) -> None:
    path = tmp_path / "analyst.toml"
    path.write_text(
        'name = "analyst"\nschema = "schema.toml"\n'
        'leader = ["127.0.0.1:7001", "127.0.0.1:7003"]\n'
        '[helpers]\nhelper-1 = "127.0.0.1:7002,127.0.0.1:7004"\n'
    )
    endpoints = load_analyst_config(path, insecure=True)
    assert split_addresses(endpoints.leader) == ("127.0.0.1:7001", "127.0.0.1:7003")
    assert endpoints.helpers == {"helper-1": "127.0.0.1:7002,127.0.0.1:7004"}

    config = parse_config(
        {
            "role": "leader",
            "schema": "schema.toml",
            "helpers": [{"name": "helper-1", "address": ["127.0.0.1:7002", "127.0.0.1:7004"]}],
        },
        tmp_path,
        insecure=True,
    )
    assert config.helpers[0].address == "127.0.0.1:7002,127.0.0.1:7004"
    with pytest.raises(ConfigError, match="helper helper-1: address"):
        parse_config(
            {
                "role": "leader",
                "schema": "schema.toml",
                "helpers": [{"name": "helper-1", "address": "7002"}],
            },
            tmp_path,
            insecure=True,
        )
