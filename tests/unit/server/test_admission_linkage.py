"""The leader's admission of linked queries (issue 16): a linked query runs under
PROTOCOL_LINKAGE only, and its ``min_intersection`` may raise the server's floor,
never lower it (refused at submission, as ``min_holders`` is)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pets.devtools.linked_schema import care_and_hospitals
from pets.errors import InvalidInputError
from pets.identity.certificates import Peer, Role
from pets.query import Query
from pets.server.config import Limits, ServerConfig
from pets.server.leader.admission import Admission, admit
from pets.v1 import aggregation_pb2 as pb

SCHEMA = care_and_hospitals(max_rows=100)
LINKED = "count(*) from ltc linked to hospitals"


def _admit(text: str, protocol: int, *, floor: int = 10, spec_floor: int = 0) -> Admission:
    spec = pb.QuerySpec(
        query_json=json.dumps(Query.parse(text).to_dict()),
        protocol=protocol,
        min_intersection=spec_floor,
    )
    config = ServerConfig(
        role="leader",
        name="leader",
        listen="127.0.0.1:0",
        state_dir=Path("/nonexistent"),
        min_holders=2,
        tls=None,
        limits=Limits(min_intersection=floor),
    )
    return admit(
        spec,
        Peer(Role.ANALYST, "alice"),
        schema=SCHEMA,
        config=config,
        open_queries=0,
        ca_pem=None,
    )


@pytest.mark.parametrize(
    "protocol", [pb.PROTOCOL_ADDITIVE, pb.PROTOCOL_PAILLIER, pb.PROTOCOL_PRIO3]
)
def test_a_linked_query_under_another_protocol_is_refused_at_submission(protocol: int) -> None:
    with pytest.raises(InvalidInputError, match="runs only under protocol linkage"):
        _admit(LINKED, protocol)


def test_a_linked_query_under_linkage_is_admitted() -> None:
    assert _admit(LINKED, pb.PROTOCOL_LINKAGE).plan.linkage is not None
    assert _admit(LINKED + " min_intersection 10", pb.PROTOCOL_LINKAGE).min_holders == 2
    _admit(LINKED + " min_intersection 50", pb.PROTOCOL_LINKAGE, spec_floor=11)


@pytest.mark.parametrize(
    ("text", "spec_floor", "message"),
    [
        (LINKED + " min_intersection 3", 0, "the query's min_intersection 3 is below"),
        (LINKED, 9, "QuerySpec.min_intersection 9 is below"),
    ],
)
def test_min_intersection_below_the_floor_is_refused(
    text: str, spec_floor: int, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message) as err:
        _admit(text, pb.PROTOCOL_LINKAGE, spec_floor=spec_floor)
    assert "floor of 10" in str(err.value) and "never lower it" in str(err.value)
