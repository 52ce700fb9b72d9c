"""The per-domain linked-query budget (issue 16, pets.server.linked_budget) with real
servers: a leader and a helper (mTLS, SQLite) with ``[limits]
linked_queries_per_domain = 1``. The first linked query of domain ``resident`` is
accepted (the leader and the helper each count it in their own store); the second
is refused at submission with RESOURCE_EXHAUSTED and a message naming the domain,
the limit and when the next slot frees, and no other analyst or query; a query that
links nothing is not counted. A helper counts on its own: with the leader's budget
open and the helper's at 0, the helper refuses the leader's RegisterQuery, as it
would a dishonest leader's that skipped its own check.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from pets.devtools.localcluster import LocalCluster
from pets.errors import PetsError
from tests.integration.linkage_support import make_cluster, schema, submit

LINKED = "count(*) from ltc linked to hospitals"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    c = make_cluster(
        tmp_path_factory.mktemp("linkage-budget"),
        ["muni-1", "hosp-1"],
        limits={"finalize_timeout_seconds": 5, "linked_queries_per_domain": 1},
    )
    yield c
    c.stop()


def _counted(cluster: LocalCluster) -> list[list[tuple[str, str]]]:
    """Each server's (domain, query id) reservations, read from its SQLite store."""
    found = []
    for path in sorted(cluster.workdir.rglob("*.sqlite")):
        db = sqlite3.connect(path)
        try:
            rows = db.execute("SELECT domain, query_id FROM linked_queries").fetchall()
        except sqlite3.OperationalError:  # not a server's store
            continue
        finally:
            db.close()
        found.append(sorted(rows))
    return found


def test_the_second_linked_query_of_a_domain_is_refused(cluster: LocalCluster) -> None:
    first = submit(cluster, LINKED, "linkage")
    assert _counted(cluster) == [[("resident", first)], [("resident", first)]]
    with pytest.raises(PetsError) as refused:
        submit(cluster, LINKED + " where hospitals.diagnosis = E11", "linkage")
    message = str(refused.value)
    assert "RESOURCE_EXHAUSTED" in message
    assert "linkage domain 'resident'" in message and "budget of 1 linked queries" in message
    assert "next slot frees at 20" in message  # an ISO time, UTC
    assert first not in message and "analyst" not in message
    assert _counted(cluster) == [[("resident", first)], [("resident", first)]]
    # A query that links nothing is not counted, nor refused.
    assert submit(cluster, "count(*) from ltc", "additive")
    assert _counted(cluster) == [[("resident", first)], [("resident", first)]]


class _HelperWithoutBudget(LocalCluster):
    """Its helpers (only) get ``linked_queries_per_domain = 0``."""

    def _server_config(self, name: str, role: str) -> Path:
        path = super()._server_config(name, role)
        if role == "helper":  # [limits] is the config's last table
            path.write_text(path.read_text() + "linked_queries_per_domain = 0\n")
        return path


def test_the_helper_enforces_its_own_budget(tmp_path: Path) -> None:
    c = _HelperWithoutBudget(
        workdir=tmp_path,
        schema=schema(),
        holder_data={"muni-1": {}, "hosp-1": {}},
        min_holders=2,
        limits={"finalize_timeout_seconds": 5},
    )
    c.prepare(analysts=("analyst",))
    c.start_servers()
    try:
        with pytest.raises(PetsError) as refused:
            submit(c, LINKED, "linkage")
        message = str(refused.value)
        assert "RegisterQuery" in message and "RESOURCE_EXHAUSTED" in message
        assert "linkage domain 'resident' accepts no linked queries" in message
        assert submit(c, "count(*) from ltc", "additive")
    finally:
        c.stop()
