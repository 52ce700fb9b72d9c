"""Fixtures for the zero-knowledge tests."""

from __future__ import annotations

import pytest

from pets.zk.group import Group, get_group
from tests.unit.zk.helpers import BACKENDS


@pytest.fixture(params=BACKENDS)
def group(request: pytest.FixtureRequest) -> Group:
    return get_group(request.param)


@pytest.fixture
def fast() -> Group:
    return get_group("coincurve")


@pytest.fixture
def ref() -> Group:
    return get_group("py_ecc")
