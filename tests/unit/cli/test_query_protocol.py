"""``pets query --protocol``: linkage is the default, and the only choice, for a linked query."""

from __future__ import annotations

import pytest

from pets.cli.query import protocol_for
from pets.errors import InvalidInputError
from pets.query import Query

LINKED = Query.parse("count(*) from ltc linked to hospitals")
PLAIN = Query.parse("count(*) from ltc")


def test_the_default_follows_the_query() -> None:
    assert protocol_for(LINKED, None) == "linkage"
    assert protocol_for(PLAIN, None) == "additive"
    assert protocol_for(LINKED, "linkage") == "linkage"
    assert protocol_for(PLAIN, "prio3") == "prio3"


@pytest.mark.parametrize("chosen", ["additive", "paillier", "prio3"])
def test_a_linked_query_under_another_protocol_is_a_usage_error(chosen: str) -> None:
    with pytest.raises(InvalidInputError, match=f"only under --protocol linkage, not {chosen}"):
        protocol_for(LINKED, chosen)
