"""``[limits] linked_queries_per_domain`` and ``linked_query_window_seconds``: the
defaults (50 per week), 0 allowed (no linked queries), negatives and non-integers
refused with a ConfigError naming the key."""

from __future__ import annotations

import pytest

from pets.errors import ConfigError
from pets.server.config import Limits


def test_the_defaults_and_zero() -> None:
    assert Limits().linked_queries_per_domain == 50
    assert Limits().linked_query_window_seconds == 86_400 * 7
    assert Limits(linked_queries_per_domain=0).linked_queries_per_domain == 0


@pytest.mark.parametrize("value", [-1, 1.5, "3", True])
def test_a_bad_per_domain_budget_is_refused(value: object) -> None:
    with pytest.raises(ConfigError, match="linked_queries_per_domain must be a non-negative"):
        Limits(linked_queries_per_domain=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0, -5, "x"])
def test_a_bad_window_is_refused(value: object) -> None:
    with pytest.raises(ConfigError, match="linked_query_window_seconds must be a positive"):
        Limits(linked_query_window_seconds=value)  # type: ignore[arg-type]
