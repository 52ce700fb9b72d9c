"""Fixtures for the linkage tests: a domain and fixed key shares."""

from __future__ import annotations

import pytest

from pets.linkage import KeyShare, LinkageDomain, derive_key_share


@pytest.fixture(scope="session")
def domain() -> LinkageDomain:
    return LinkageDomain("test-ids", ("nfkc", "strip", "casefold"))


@pytest.fixture(scope="session")
def leader(domain: LinkageDomain) -> KeyShare:
    return derive_key_share(b"L" * 32, "leader", domain, "q-test")


@pytest.fixture(scope="session")
def helper(domain: LinkageDomain) -> KeyShare:
    return derive_key_share(b"H" * 32, "helper", domain, "q-test")
