"""Record linkage through real servers (issue 16, items 2 and 5): results equal the
plaintext join; the floor; refused batches; nothing identifying is stored or logged.

One module-scoped cluster (leader + one helper, mTLS, SQLite); every test
submits its own PROTOCOL_LINKAGE query and drives the holders with the node's
own linkage client (:func:`pets.client.linkage.link_and_upload`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from pets.devtools.localcluster import LocalCluster
from pets.query import Query
from pets.v1 import aggregation_pb2 as pb
from tests.integration.linkage_support import (
    Persons,
    make_cluster,
    reference,
    run_linked,
)

HOLDERS = ["muni-1", "muni-2", "hosp-1", "hosp-2", "hosp-3", "intruder"]
LEVELS = ["care1", "care2", "care3"]
DIAGNOSES = ["E11", "I10", "J45"]


def ltc(first: int, last: int, *, spaced: bool = False) -> Persons:
    ids = [f"P{i:04d}" if not spaced else f" p{i:04d} " for i in range(first, last)]
    return Persons(
        "ltc",
        ids,
        {
            "care_cost": [(i * 37) % 1000 for i in range(first, last)],
            "care_level": [LEVELS[i % 3] for i in range(first, last)],
        },
    )


def hospital(ids: list[int], *, duplicate: bool = False) -> Persons:
    raw = [f"p{i:04d}" for i in ids]
    diag = [DIAGNOSES[(i // 5) % 3] for i in ids]
    if duplicate:  # the same person twice (one row per person: the first is kept)
        raw += raw[:5]
        diag += ["J45"] * 5
    return Persons("hospitals", raw, {"diagnosis": diag})


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    c = make_cluster(tmp_path_factory.mktemp("linkage"), HOLDERS)
    yield c
    c.stop()


def check(cluster: LocalCluster, text: str, holders: dict[str, Persons], **kw: object) -> None:
    status, result = asyncio.run(run_linked(cluster, text, holders, **kw))  # type: ignore[arg-type]
    expected, matched = reference(cluster.schema, Query.parse(text), holders)
    assert status.state == pb.QUERY_STATE_READY, (status.failure, status.failure_detail)
    assert result is not None
    assert result.rows == expected.rows, (result.rows, expected.rows, matched)


def test_grouped_sum_equals_plaintext_join(cluster: LocalCluster) -> None:
    holders = {
        "muni-1": ltc(0, 60),
        "muni-2": ltc(60, 120),
        "hosp-1": hospital(list(range(10, 80))),
        "hosp-2": hospital(list(range(70, 130)), duplicate=True),
    }
    check(
        cluster,
        "sum(care_cost) from ltc linked to hospitals where hospitals.diagnosis = E11 "
        "group by care_level",
        holders,
    )


def test_count_with_filters_on_both_sides_normalised_ids_unverified(cluster: LocalCluster) -> None:
    holders = {
        "muni-1": ltc(0, 150, spaced=True),  # " p0001 " normalises to "p0001" like "P0001"
        "hosp-1": hospital(list(range(0, 200, 2))),
    }
    check(
        cluster,
        "count(*) from ltc linked to hospitals where care_level = care2 "
        "and hospitals.diagnosis in (E11, I10)",
        holders,
        verify=False,
    )


def test_full_intersection_and_mean(cluster: LocalCluster) -> None:
    holders = {"muni-1": ltc(0, 40), "hosp-1": hospital(list(range(0, 40)))}
    check(cluster, "mean(care_cost) from ltc linked to hospitals", holders)


def floor_holders(matched: int) -> dict[str, Persons]:
    return {"muni-1": ltc(0, 50), "hosp-1": hospital(list(range(50 - matched, 90)))}


def test_intersection_exactly_at_the_floor_is_released(cluster: LocalCluster) -> None:
    holders = floor_holders(25)
    check(cluster, "count(*) from ltc linked to hospitals min_intersection 25", holders)


@pytest.mark.parametrize("matched", [24, 0])
def test_below_the_floor_is_refused_and_reveals_nothing(
    cluster: LocalCluster, matched: int
) -> None:
    text = "count(*) from ltc linked to hospitals min_intersection 25"
    status, result = asyncio.run(run_linked(cluster, text, floor_holders(matched)))
    assert status.state == pb.QUERY_STATE_FAILED and result is None
    assert status.failure == "below_min_intersection"
    # The refusal says the floor (public), never the size it missed it by.
    assert str(matched) not in status.failure_detail.replace("25", "")


def test_nothing_identifying_in_the_servers_state_or_logs(cluster: LocalCluster) -> None:
    holders = {"muni-1": ltc(0, 30), "hosp-1": hospital(list(range(0, 30)))}
    check(cluster, "count(*) from ltc linked to hospitals", holders)
    blobs = [p.read_bytes() for p in Path(cluster.workdir / "state").rglob("*") if p.is_file()]
    logs = cluster.log_text().encode()
    for needle in (b"P0001", b"p0001", b"p0017"):
        assert all(needle not in b for b in blobs), needle
        assert needle not in logs, needle


def test_differential_privacy_on_a_linked_count(cluster: LocalCluster) -> None:
    holders = {"muni-1": ltc(0, 60), "hosp-1": hospital(list(range(0, 60)))}
    text = "count(*) from ltc linked to hospitals dp rho 0.5"
    status, result = asyncio.run(run_linked(cluster, text, holders))
    assert status.state == pb.QUERY_STATE_READY, (status.failure, status.failure_detail)
    assert result is not None and result.dp is not None  # each server added its noise
    exact, matched = reference(
        cluster.schema, Query.parse("count(*) from ltc linked to hospitals"), holders
    )
    assert matched == 60
    assert abs(result.rows[0]["count"] - exact.rows[0]["count"]) < 40  # sd ~ 1.4
