"""Differential privacy in the service (issue 11): noisy releases, budgets, differencing.

One real cluster (a leader, a helper, four nodes; every server with its own
``[dp]`` policy and store) runs the issue's differencing attack with DP on:
``sum(cost) where age >= 65`` minus the same ``and age != 99``. Each server
adds its own noise and charges its own budget; the analyst's answer reports
the mechanism, the noise scale and an interval per number. With the default
budget (ρ = 1/2) the pair no longer pins the target down, and repeating the
pair is refused before the average narrows below the documented floor
(``pets.dp.differencing_floor``, docs/DP.md "Differencing"). Budgets survive
a real restart of both servers; ``pets budget show|grant`` read and change
them while the servers run.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
from fractions import Fraction
from typing import Any

import pytest

from pets.devtools.localcluster import LocalCluster
from pets.dp import DEFAULT_BUDGET_RHO, differencing_floor
from pets.errors import PermissionDeniedError
from pets.query import Query, Result

from .conftest import HOLDERS, ClusterFactory, analyst, expected, run

RHO = Fraction(1, 8)  # per query: the default budget pays for two pairs
ALL = f"sum(cost) from hospitals where age >= 65 clip [0, 5000] dp rho {float(RHO)}"
BUT_ONE = (
    f"sum(cost) from hospitals where age >= 65 and age != 99 clip [0, 5000] dp rho {float(RHO)}"
)
COST_BOUND = 5000.0  # Δ of one row's cost (thousands of yen)


async def _ask(cluster: LocalCluster, text: str, protocol: str = "additive") -> Result:
    client = analyst(cluster)
    try:
        outcome = await client.run(
            Query.parse(text), protocol=protocol, close_after=HOLDERS, deadline_seconds=30
        )
    finally:
        await client.close()
    assert outcome.result is not None, outcome.status.failure_detail
    return outcome.result


def _budget_cli(cluster: LocalCluster, server: str, *args: str) -> dict[str, Any]:
    config = cluster.workdir / "config" / f"{server}.toml"
    done = subprocess.run(
        [sys.executable, "-m", "pets", "budget", *args, "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def _sum_sd(result: Result) -> float:
    """One server's noise standard deviation on the released sum (cost units)."""
    assert result.dp is not None
    return float(next(f["stddev"] for f in result.dp["fields"] if f["field"].startswith("sum")))


def test_differencing_with_dp_budget_restart_and_grant(make_cluster: ClusterFactory) -> None:
    # The nodes' own limit on repeated queries is lifted: this test is about the servers'
    # budgets, which must stop the repetition by themselves.
    cluster = make_cluster(nodes=True, node_policy_toml="[policy]\nsame_query_answers = 100\n")
    exact = {q: expected(cluster, q).rows[0]["sum"] for q in (ALL, BUT_ONE)}
    target = exact[ALL] - exact[BUT_ONE]

    differences: list[float] = []
    variances: list[float] = []
    # (noisy - exact)^2 and the variance both servers' noise gives it, per release.
    squared_errors: list[float] = []
    release_variances: list[float] = []
    refused: PermissionDeniedError | None = None
    for _ in range(10):  # the analyst repeats the pair until refused
        try:
            a = run(_ask(cluster, ALL))
            b = run(_ask(cluster, BUT_ONE))
        except PermissionDeniedError as exc:
            refused = exc
            break
        for text, r in ((ALL, a), (BUT_ONE, b)):
            assert r.dp is not None and r.dp["mechanism"] == "discrete_gaussian"
            assert r.dp["servers"] == 2 and r.dp["rho"] == str(RHO) and r.dp["unit"] == "row"
            lo, hi = r.intervals[0]["sum"]
            assert lo < r.rows[0]["sum"] < hi
            # The exact answer lies within six standard deviations of both servers' noise.
            assert abs(r.rows[0]["sum"] - exact[text]) <= 6 * _sum_sd(r) * math.sqrt(2)
            squared_errors.append((r.rows[0]["sum"] - exact[text]) ** 2)
            release_variances.append(2 * _sum_sd(r) ** 2)
        differences.append(a.rows[0]["sum"] - b.rows[0]["sum"])
        # One (honest) server's noise on each of the two answers.
        variances.append(_sum_sd(a) ** 2 + _sum_sd(b) ** 2)
        # The pair does not pin the target down: its 95% band is wider than any cost.
        assert 1.96 * math.sqrt(variances[-1]) > COST_BOUND
    assert refused is not None, "the budget never ran out"
    assert "remains" in str(refused) and "nothing was spent" in str(refused)
    pairs = len(differences)
    assert pairs == int(DEFAULT_BUDGET_RHO / (2 * RHO))
    # The average of the pairs' differences is no sharper than the documented floor.
    sd_of_average = math.sqrt(sum(variances)) / pairs
    floor = differencing_floor(COST_BOUND, DEFAULT_BUDGET_RHO)
    assert sd_of_average >= floor > COST_BOUND * 0.99
    assert abs(sum(differences) / pairs - target) < 8 * sd_of_average * math.sqrt(2)
    # The noise is really there, at the reported scale: the releases' squared errors add up
    # to a chi-square-like multiple of the reported variances (4 releases: below 0.002 of
    # it with probability ~1e-5 when the noise is there; 0 when a server drops its noise).
    assert sum(squared_errors) >= 0.002 * sum(release_variances)

    # Each server recorded what it spent, exactly.
    for server in ("leader", "helper-1"):
        shown = _budget_cli(cluster, server, "show", "--analyst", "analyst")
        (budget,) = shown["budgets"]
        assert budget["spent_rho"] == str(2 * pairs * RHO) and budget["releases"] == 2 * pairs

    # Budgets survive a real restart of both servers (the helper killed outright).
    cluster.kill("helper-1", signal.SIGKILL)
    cluster.kill("leader", signal.SIGTERM)
    cluster.restart_server("helper-1")
    cluster.restart_server("leader")
    cluster.wait_nodes_ready()
    with pytest.raises(PermissionDeniedError, match="remains"):
        run(_ask(cluster, ALL))
    shown = _budget_cli(cluster, "leader", "show")
    assert shown["budgets"][0]["spent_rho"] == str(2 * pairs * RHO)

    # An operator's grant applies to the next release without a restart (on every server).
    for server in ("leader", "helper-1"):
        granted = _budget_cli(
            cluster,
            server,
            "grant",
            "--analyst",
            "analyst",
            "--dataset",
            "hospitals",
            "--rho",
            str(RHO),
        )
        assert granted["budget"]["remaining_rho"] == str(RHO)
    result = run(_ask(cluster, ALL))
    assert result.dp is not None and abs(result.rows[0]["sum"] - exact[ALL]) <= 6 * _sum_sd(
        result
    ) * math.sqrt(2)
    for server in ("leader", "helper-1"):
        (budget,) = _budget_cli(cluster, server, "show")["budgets"]
        assert budget["remaining_rho"] == "0"


def test_required_dp_and_per_query_cap(make_cluster: ClusterFactory) -> None:
    cluster = make_cluster(dp_toml="[dp]\nrequire = true\nmax_epsilon = 1\n")
    with pytest.raises(PermissionDeniedError, match="only differentially private"):
        run(_ask(cluster, "count() from hospitals"))
    with pytest.raises(PermissionDeniedError, match="exceeds this server's per-query maximum"):
        run(_ask(cluster, "count() from hospitals dp epsilon 2"))


@pytest.mark.parametrize("protocol", ["prio3", "paillier"])
def test_field_and_paillier_releases_are_noisy_and_decode(
    make_cluster: ClusterFactory, protocol: str
) -> None:
    cluster = make_cluster(
        nodes=True, node_policy_toml='[policy]\nprotocols = ["additive", "paillier", "prio3"]\n'
    )
    text = "sum(kg_co2e) from supply_chain group by stage dp rho 0.1"
    result = run(_ask(cluster, text, protocol))
    assert result.dp is not None and result.dp["servers"] == (1 if protocol == "paillier" else 2)
    exact = expected(cluster, text)
    for got, want, ivs in zip(result.rows, exact.rows, result.intervals, strict=True):
        sd = _sum_sd(result) * math.sqrt(result.dp["servers"])
        assert abs(got["sum"] - want["sum"]) <= 6 * sd
        assert ivs["sum"][0] < got["sum"] < ivs["sum"][1]
