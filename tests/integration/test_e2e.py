"""End to end: real node processes answer every aggregate type, over mTLS."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pets.devtools.localcluster import LocalCluster
from pets.v1 import aggregation_pb2 as pb

from .conftest import HOLDERS, analyst, expected, run

QUERIES = [
    "count() from hospitals where age >= 65",
    "sum(kg_co2e) from supply_chain group by stage",
    "mean(cost) from hospitals where age >= 40 group by sex",
    "variance(length_of_stay) from hospitals where sex = F",
    "histogram(age) from hospitals bins [0, 18, 65, 110]",
    "histogram(diagnosis) from hospitals where prefecture != Tokyo",
    "vector_sum(cost, length_of_stay) from hospitals group by sex",
    "vector_sum() from emissions_daily",
]


async def _ask_all(cluster: LocalCluster, texts: list[str], **options: object) -> list:
    from pets.query import Query

    client = analyst(cluster)
    try:
        outcomes = []
        for text in texts:
            outcomes.append(
                await client.run(
                    Query.parse(text), close_after=HOLDERS, deadline_seconds=30, **options
                )
            )
        return outcomes
    finally:
        await client.close()


def test_every_aggregate_type_through_nodes(make_cluster) -> None:
    cluster = make_cluster(nodes=True)
    outcomes = run(_ask_all(cluster, QUERIES))
    for text, outcome in zip(QUERIES, outcomes, strict=True):
        assert outcome.status.state == pb.QUERY_STATE_READY, (text, outcome.status)
        assert outcome.status.contributors == HOLDERS
        assert outcome.result is not None
        assert outcome.result.close_to(expected(cluster, text)), text


def test_three_servers_two_helpers(make_cluster) -> None:
    cluster = make_cluster(nodes=True, helpers=2)
    texts = ["mean(cost) from hospitals group by prefecture", "count() from supply_chain"]
    for text, outcome in zip(texts, run(_ask_all(cluster, texts)), strict=True):
        assert outcome.result is not None and outcome.result.close_to(expected(cluster, text))


def test_paillier_through_nodes_matches_additive(make_cluster) -> None:
    """The same queries over the same data through both protocols give the same answers."""
    # Each query is asked twice (once per protocol): nodes answer a fingerprint once a
    # day by default (issue 15, item 1), so this cluster's nodes allow two.
    cluster = make_cluster(nodes=True, node_policy_toml="[policy]\nsame_query_answers = 2\n")
    texts = [
        "mean(cost) from hospitals where age >= 65 group by sex",
        "histogram(stage) from supply_chain",
        "variance(age) from hospitals",
    ]
    additive = run(_ask_all(cluster, texts))
    paillier = run(_ask_all(cluster, texts, protocol="paillier", max_holders=50))
    for text, a, p in zip(texts, additive, paillier, strict=True):
        assert a.result is not None and p.result is not None, text
        assert p.status.spec.protocol == pb.PROTOCOL_PAILLIER
        assert a.result.close_to(p.result), text
        assert p.result.close_to(expected(cluster, text)), text


def test_cli_query_json_and_table(make_cluster, tmp_path) -> None:
    cluster = make_cluster(nodes=True)
    config = cluster.write_analyst_config(tmp_path / "analyst.toml")
    base = [
        sys.executable,
        "-m",
        "pets",
        "query",
        "--config",
        str(config),
        "--close-after",
        str(HOLDERS),
        "--deadline",
        "30",
    ]
    out = subprocess.run(
        [
            *base,
            "--dataset",
            "hospitals",
            "--aggregate",
            "mean",
            "--column",
            "cost",
            "--where",
            "age >= 65",
            "--group-by",
            "sex",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    first, *_, last = out.stdout.splitlines()  # JSON Lines: submitted, then the outcome
    doc = json.loads(last)
    assert json.loads(first) == {"event": "submitted", "query_id": doc["query_id"]}
    assert doc["state"] == "ready" and doc["contributors"] == HOLDERS
    assert {row["sex"] for row in doc["result"]["rows"]} == {"F", "M"}
    text = subprocess.run(
        [*base, "--query", "count() from hospitals group by sex"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert text.returncode == 0, text.stderr
    assert "count" in text.stdout and "holders contributed" in text.stdout


@pytest.mark.parametrize("flag", ["--help"])
def test_every_command_has_help(flag: str) -> None:
    for command in (
        "serve",
        "node",
        "query",
        "result",
        "demo",
        "certs",
        "gen-data",
        "bench",
        "paillier",
    ):
        out = subprocess.run(
            [sys.executable, "-m", "pets", command, flag],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert out.returncode == 0, (command, out.stderr)
        assert "usage: pets " + command in out.stdout


def test_nodes_reconnect_after_the_leader_restarts(make_cluster) -> None:
    """Nodes keep watching through a leader crash and answer queries submitted after it."""
    import signal

    cluster = make_cluster(nodes=True)
    cluster.wait_nodes_ready()
    cluster.kill("leader", signal.SIGKILL)
    cluster.restart_server("leader")
    outcome = run(_ask_all(cluster, ["count() from hospitals where sex = M"]))[0]
    assert outcome.status.state == pb.QUERY_STATE_READY
    assert outcome.status.contributors == HOLDERS
    assert "leader unreachable, retrying" in cluster.tail("org-1", 100)


def test_cli_query_below_min_holders_prints_no_numbers(make_cluster, tmp_path) -> None:
    cluster = make_cluster()  # no nodes: nobody will contribute
    config = cluster.write_analyst_config(tmp_path / "analyst.toml")
    base = [
        sys.executable,
        "-m",
        "pets",
        "query",
        "--config",
        str(config),
        "--deadline",
        "1",
        "--query",
        "count() from hospitals",
    ]
    text = subprocess.run(base, capture_output=True, text=True, timeout=60, check=False)
    assert text.returncode == 3
    assert "no result" in text.stdout and "below_min_holders" in text.stdout
    doc = json.loads(
        subprocess.run(
            [*base, "--json"], capture_output=True, text=True, timeout=60, check=False
        ).stdout.splitlines()[-1]
    )
    assert doc["state"] == "failed" and doc["failure"] == "below_min_holders"
    assert "result" not in doc


def test_demo_json(tmp_path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pets",
            "demo",
            "--json",
            "--holders",
            "3",
            "--rows",
            "120",
            "--keep",
            str(tmp_path / "demo"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    doc = json.loads(out.stdout)
    assert doc["seconds"] < 60
    assert len(doc["queries"]) >= 6
    assert all(q["match"] for q in doc["queries"])
    assert {q["protocol"] for q in doc["queries"]} >= {"additive", "paillier"}
    # --keep keeps the linked deployment too (its configs, certificates and data).
    assert (tmp_path / "demo" / "linked" / "schema.toml").is_file()
    assert any((tmp_path / "demo" / "linked" / "config").glob("*.toml"))
    for q in doc["queries"]:
        assert {"name", "protocol", "secure", "plaintext", "match"} <= set(q)
    # Prio3 (issue 12): a count, a grouped mean and a histogram; in one of them a
    # dishonest holder is refused and counted, and the result still matches.
    prio3 = [q for q in doc["queries"] if q["protocol"] == "prio3" and "dp" not in q]
    assert len(prio3) >= 3
    refused = [q for q in prio3 if "refused" in q]
    assert len(refused) == 1 and refused[0]["rejected_contributions"] == 1
    assert "proof verifier check failed" in refused[0]["refused"]["reason"]
    # The DP queries (issue 11): noisy, checked within the 1e-6 tail bound, marked.
    dp = [q for q in doc["queries"] if "dp" in q]
    assert len(dp) >= 2
    for q in dp:
        assert q["dp"]["mechanism"] in ("discrete_laplace", "discrete_gaussian")
        assert q["secure"]["intervals"] and q["dp"]["worst_sd"] <= q["dp"]["bound_sd"]


def test_gen_data_writes_schema_and_files(tmp_path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pets",
            "gen-data",
            "--kind",
            "supply_chain",
            "--holders",
            "2",
            "--rows",
            "50",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "schema.toml").exists()
    assert (tmp_path / "supplier-01" / "supply_chain.csv").exists()
    assert (tmp_path / "supplier-02" / "emissions_daily.npy").exists()
