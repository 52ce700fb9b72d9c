"""Submitting a linked query (issue 16; the black-box report's bad-usage checks).

Real leader and helper (mTLS, SQLite) and the real ``pets query`` command: a
linked query under any protocol but linkage is refused at submission with
INVALID_ARGUMENT (it used to be accepted and wait out its deadline while every
node refused it); ``min_intersection`` below the server's floor is refused at
submission, as ``min_holders`` below the floor is; ``pets query`` picks
``--protocol linkage`` for a linked query and names the mistake when another
protocol is given.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pets.devtools.localcluster import LocalCluster
from pets.errors import InvalidInputError
from tests.integration.linkage_support import make_cluster, submit

LINKED = "count(*) from ltc linked to hospitals"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    c = make_cluster(tmp_path_factory.mktemp("linkage-submission"), ["muni-1", "hosp-1"])
    yield c
    c.stop()


@pytest.mark.parametrize("protocol", ["additive", "prio3", "paillier"])
def test_a_linked_query_under_another_protocol_is_refused(
    cluster: LocalCluster, protocol: str
) -> None:
    with pytest.raises(InvalidInputError, match="runs only under protocol linkage"):
        submit(cluster, LINKED, protocol)


def test_min_intersection_below_the_floor_is_refused_at_submission(cluster: LocalCluster) -> None:
    with pytest.raises(InvalidInputError, match="below this server's floor of 10"):
        submit(cluster, LINKED + " min_intersection 3", "linkage")
    assert submit(cluster, LINKED + " min_intersection 10", "linkage")


def _pets_query(
    cluster: LocalCluster, tmp_path: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    config = cluster.write_analyst_config(tmp_path / "analyst.toml")
    return subprocess.run(
        [sys.executable, "-m", "pets", "query", "--config", str(config), "--json", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        stdin=subprocess.DEVNULL,
    )


def test_pets_query_runs_a_linked_query_under_linkage(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    wrong = _pets_query(cluster, tmp_path, "--protocol", "additive", "--query", LINKED)
    assert wrong.returncode == 1 and "Traceback" not in wrong.stderr, wrong.stderr
    assert "runs only under --protocol linkage, not additive" in wrong.stderr
    # No --protocol: submitted as linkage (the leader would refuse it otherwise); with no
    # node it ends without a result once its deadline passes.
    ran = _pets_query(cluster, tmp_path, "--deadline", "1", "--query", LINKED)
    assert '"event": "submitted"' in ran.stdout, (ran.stdout, ran.stderr)
    assert ran.returncode == 3, (ran.stdout, ran.stderr)
