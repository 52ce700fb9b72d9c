"""A leader policy must pin the credential schema (issue 15 item 17).

Without ``[policy] schema_id`` the leader accepted a presentation of *any*
schema from the trusted issuer, so a credential issued for another purpose
(another schema with an ``accreditation`` attribute, say) satisfied the
policy. A policy always names attributes, so ``schema_id`` is now required.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pets.errors import ConfigError
from server.config import parse_config


def _leader(policy: dict[str, Any]) -> dict[str, Any]:
    return {
        "role": "leader",
        "name": "leader",
        "schema": "schema.toml",
        "helpers": [{"name": "helper-1", "address": "127.0.0.1:1"}],
        "policy": policy,
    }


def test_a_policy_without_schema_id_is_refused(tmp_path: Path) -> None:
    policy = {"require": "accreditation >= 2", "issuer_public_key": "issuer.pub"}
    with pytest.raises(ConfigError, match="schema_id"):
        parse_config(_leader(policy), tmp_path, insecure=True)


@pytest.mark.parametrize("bad", ["", 3, None])
def test_a_policy_with_an_empty_or_mistyped_schema_id_is_refused(tmp_path: Path, bad: Any) -> None:
    policy = {"require": "accreditation >= 2", "issuer_public_key": "issuer.pub", "schema_id": bad}
    if bad is None:
        del policy["schema_id"]
    with pytest.raises(ConfigError, match="schema_id"):
        parse_config(_leader(policy), tmp_path, insecure=True)


def test_a_policy_with_schema_id_is_accepted(tmp_path: Path) -> None:
    policy = {
        "require": "accreditation >= 2",
        "issuer_public_key": "issuer.pub",
        "schema_id": "pets/analyst/v1",
    }
    config = parse_config(_leader(policy), tmp_path, insecure=True)
    assert config.policy is not None and config.policy.schema_id == "pets/analyst/v1"
