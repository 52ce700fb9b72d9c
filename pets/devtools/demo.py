"""``pets demo``: the whole system on loopback, checked against plaintext.

Five organisations each hold synthetic hospital records and supply-chain
emissions. A leader, a helper and one node per organisation run as separate
processes with mutual TLS; an analyst (this process) asks queries of every
aggregate type over both datasets, and one query both by additive sharing
and by Paillier. Each secure result is printed beside the plaintext answer
computed directly from the data files; any difference beyond fixed-point
rounding makes the demo fail. A second deployment (hospitals, municipalities,
insurers) answers linked queries by private record linkage, each compared with
the plaintext join (:mod:`pets.devtools.demo_linked`).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from pets.client.analyst import AnalystClient
from pets.client.node import load_table
from pets.devtools.datafiles import merge_schemas, write_data
from pets.devtools.datagen import generate
from pets.devtools.demo_linked import run_linked_queries
from pets.devtools.demo_prio3 import run_prio3_queries
from pets.devtools.localcluster import LocalCluster
from pets.query import Query, QueryPlan, Result, plaintext
from pets.query import compile as compile_query

SEED = 2026

# (name, protocol, query text): every aggregate type, both datasets, both protocols.
DEMO_QUERIES: tuple[tuple[str, str, str], ...] = (
    ("patients 65+", "additive", "count() from hospitals where age >= 65"),
    ("CO2 per stage", "additive", "sum(kg_co2e) from supply_chain group by stage"),
    (
        "mean cost 65+ per prefecture",
        "additive",
        "mean(cost) from hospitals where age >= 65 group by prefecture",
    ),
    (
        "variance of stay, circulatory",
        "additive",
        "variance(length_of_stay) from hospitals where diagnosis = I",
    ),
    (
        "age histogram, women",
        "additive",
        "histogram(age) from hospitals where sex = F bins [0, 18, 40, 65, 80, 110]",
    ),
    ("diagnoses", "additive", "histogram(diagnosis) from hospitals"),
    ("daily emissions", "additive", "vector_sum() from emissions_daily"),
    (
        "transport/retail CO2 per product",
        "additive",
        "mean(kg_co2e) from supply_chain where stage in (transport, retail) group by product",
    ),
    ("patients per sex (additive)", "additive", "count() from hospitals group by sex"),
    ("patients per sex (paillier)", "paillier", "count() from hospitals group by sex"),
    (
        "mean stay per sex (paillier)",
        "paillier",
        "mean(length_of_stay) from hospitals where age >= 18 group by sex",
    ),
)


# -- differential privacy (issue 11, docs/DP.md) ---------------------------------
# (name, protocol, query text): noisy answers, checked against the exact ones within
# a bound an honest run exceeds with probability below DP_FAILURE over ALL slots.
DP_QUERIES: tuple[tuple[str, str, str], ...] = (
    (
        "patients 65+ per sex (DP)",
        "additive",
        "count() from hospitals where age >= 65 group by sex dp epsilon 0.5",
    ),
    ("cost per sex (DP)", "additive", "sum(cost) from hospitals group by sex dp rho 0.05"),
    (
        "age histogram (DP, paillier)",
        "paillier",
        "histogram(age) from hospitals bins [0, 18, 40, 65, 80, 110] dp rho 0.05",
    ),
    (
        "CO2 per stage (DP, prio3)",
        "prio3",
        "sum(kg_co2e) from supply_chain group by stage dp rho 0.1",
    ),
)
DP_FAILURE = 1e-6


def dp_check(plan: QueryPlan, secure: Result, exact: Result) -> dict[str, Any]:
    """Does every noisy count, sum or bin lie within the bound of the exact one?

    The bound of a field is :func:`pets.dp.tails.half_width` of the summed noise
    of all servers at ``DP_FAILURE / slots`` (union bound over every slot): an
    honest run fails it with probability below one in a million, about six
    standard deviations for Gaussian noise. Returns ``{"match", "bound_sd",
    "worst_sd"}`` (the bound and the largest error in standard deviations).
    """
    from pets.dp import noise_plan
    from pets.dp.tails import half_width

    assert secure.dp is not None
    noise = noise_plan(plan)
    servers = int(secure.dp["servers"])
    alpha = DP_FAILURE / max(1, noise.length)
    match, worst, bound_sd = len(secure.rows) == len(exact.rows), 0.0, 0.0
    for got, want in zip(secure.rows, exact.rows, strict=False):
        for i, key in enumerate(plan.result_fields):
            f = noise.fields[i]
            sd = f.stddev(noise.mechanism) * servers**0.5 / f.scale
            bound = half_width(noise.mechanism.value, f.param, servers, alpha) / f.scale
            error = abs(got[key] - want[key])
            match = match and error <= bound
            worst = max(worst, error / sd if sd else 0.0)
            bound_sd = max(bound_sd, bound / sd if sd else 0.0)
    return {"match": match, "bound_sd": round(bound_sd, 2), "worst_sd": round(worst, 2)}


def _intervals(result: Result | None, limit: int = 3) -> str:
    """A one-line digest of a DP answer's 95% intervals."""
    if result is None or not result.intervals:
        return "-"
    cells = []
    for i, row in enumerate(result.rows[:limit]):
        key = "/".join(str(row[k]) for k in result.group_by)
        ivs = " ".join(f"{k}=[{lo:.6g}, {hi:.6g}]" for k, (lo, hi) in result.row_intervals(i))
        cells.append(f"{key}: {ivs}" if key else ivs)
    return "; ".join(cells)


def _summary(result: Result | None, limit: int = 3) -> str:
    """A one-line digest of an answer: up to ``limit`` rows as ``key: field=value``."""
    if result is None:
        return "no result"
    headers, rows = result.to_table_rows()
    keys = len(result.group_by) if result.fields != ("vector",) or result.group_by else 1
    cells = []
    for row in rows[:limit]:
        key = "/".join(row[:keys])
        values = " ".join(f"{h}={v}" for h, v in zip(headers[keys:], row[keys:], strict=True))
        cells.append(f"{key}: {values}" if key else values)
    more = f" (+{len(rows) - limit} more)" if len(rows) > limit else ""
    return "; ".join(cells) + more


def build_cluster(workdir: Path, holders: int, rows: int) -> LocalCluster:
    hospitals = generate("hospitals", holders, rows, SEED)
    supply = generate("supply_chain", holders, rows, SEED + 1)
    schema = merge_schemas(hospitals.schema, supply.schema)
    data_dir = workdir / "data"
    # One holder keeps Parquet and one SQLite, so those sources run end to end.
    h_files = write_data(hospitals, data_dir, formats=("parquet", "sqlite"))
    s_files = write_data(supply, data_dir)
    holder_data = {
        f"org-{i + 1:02d}": {**h, **s}
        for i, (h, s) in enumerate(zip(h_files.values(), s_files.values(), strict=True))
    }
    return LocalCluster(
        workdir=workdir,
        schema=schema,
        holder_data=holder_data,
        helpers=1,
        min_holders=3,
        limits={"finalize_timeout_seconds": 10},
        # The demo asks one query under both protocols (same fingerprint): each node
        # answers it twice, not once as a node's default policy allows a day. Nodes
        # take Prio3 queries too (the DP block asks one).
        node_policy_toml=(
            '[policy]\nsame_query_answers = 2\nprotocols = ["additive", "paillier", "prio3"]\n'
        ),
    )


async def _run_queries(cluster: LocalCluster, holders: int) -> list[dict[str, Any]]:
    analyst = AnalystClient(cluster.endpoints("analyst"))
    tables: dict[str, list] = {}
    out: list[dict[str, Any]] = []

    async def one(name: str, protocol: str, text: str) -> dict[str, Any]:
        query = Query.parse(text)
        outcome = await analyst.run(
            query,
            protocol=protocol,
            close_after=holders,
            deadline_seconds=45,
            max_holders=max(holders, 10),
            paillier_key_bits=2048,
        )
        plan = compile_query(query, analyst.schema)
        if query.dataset not in tables:
            tables[query.dataset] = [
                load_table(analyst.schema, query.dataset, files[query.dataset])
                for files in cluster.holder_data.values()
            ]
        expected = plaintext(plan, tables[query.dataset])
        secure = outcome.result
        if query.dp is not None and secure is not None and secure.dp is not None:
            check = dp_check(plan, secure, expected)
            return {
                "name": name,
                "query": query.describe(),
                "protocol": protocol,
                "secure": secure.to_json_obj(),
                "plaintext": expected.to_json_obj(),
                "dp": secure.dp | {"bound_sd": check["bound_sd"], "worst_sd": check["worst_sd"]},
                "match": check["match"],
                "seconds": round(outcome.seconds, 3),
                "_secure": secure,
                "_plain": expected,
            }
        return {
            "name": name,
            "query": query.describe(),
            "protocol": protocol,
            "secure": secure.to_json_obj() if secure else None,
            "plaintext": expected.to_json_obj(),
            "match": bool(secure is not None and secure.close_to(expected)),
            "seconds": round(outcome.seconds, 3),
            "_secure": secure,
            "_plain": expected,
        }

    try:
        results = await asyncio.gather(*(one(*q) for q in DEMO_QUERIES + DP_QUERIES))
        out.extend(results)
        # Prio3 with a dishonest holder (issue 12): pets.devtools.demo_prio3.
        out.extend(await run_prio3_queries(cluster, holders))
    finally:
        await analyst.close()
    return out


def run_demo(
    *, holders: int = 5, rows: int = 400, workdir: Path | None = None, verbose: bool = True
) -> dict[str, Any]:
    """Run the demo; return ``{"queries": [...]}`` (the CLI adds ``seconds``)."""
    console = Console(stderr=True)
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="pets-demo-")
        workdir = Path(tmp.name)
    started = time.perf_counter()
    cluster = build_cluster(Path(workdir), holders, rows)
    try:
        if verbose:
            console.print(f"[bold]pets demo[/] in {workdir}: 1 leader, 1 helper, {holders} nodes")
        cluster.start()
        if verbose:
            console.print(
                f"servers up in {time.perf_counter() - started:.1f} s "
                f"(leader {cluster.address('leader')}, helper-1 {cluster.address('helper-1')})"
            )
        queries = asyncio.run(_run_queries(cluster, holders))
    finally:
        codes = cluster.stop()
        if tmp is not None:
            tmp.cleanup()
    # Record linkage (issue 16): a second deployment of hospitals, municipalities and
    # insurers; its linked queries are checked against the plaintext join.
    # With --keep (tmp is None) it is kept too, in the subfolder linked/.
    with contextlib.ExitStack() as scratch:
        if tmp is None:
            linked_dir = Path(workdir) / "linked"
            linked_dir.mkdir(parents=True, exist_ok=True)
        else:
            made = tempfile.TemporaryDirectory(prefix="pets-demo-linked-")
            linked_dir = Path(scratch.enter_context(made))
        if verbose:
            where = "" if tmp is not None else f" in {linked_dir}"
            console.print(f"linked queries{where}: 1 leader, 1 helper, 6 nodes (2 of each kind)")
        linked = run_linked_queries(linked_dir)
    if not all(q["clean_shutdown"] for q in linked):
        codes["linked-deployment"] = 1
    queries += linked
    bad_exits = {n: c for n, c in codes.items() if c != 0}
    if verbose:
        out = Console()
        for q in queries:
            verdict = "[green]match[/]" if q["match"] else "[bold red]MISMATCH[/]"
            out.print(f"[bold]{q['name']}[/] ({q['protocol']}, {q['seconds']:.2f} s): {verdict}")
            out.print(f"  query     {q['query']}", soft_wrap=True)
            out.print(f"  secure    {_summary(q['_secure'])}", soft_wrap=True)
            if "dp" in q:  # noisy answer, its 95% intervals, the exact answer
                out.print(f"  95% intvl {_intervals(q['_secure'])}", soft_wrap=True)
            out.print(f"  plaintext {_summary(q['_plain'])}", soft_wrap=True)
            if "matched_records" in q:  # linked: the join's size, and a floor refusal
                failure = f", refused: {q['failure']}" if q.get("failure") else ""
                out.print(f"  matched   {q['matched_records']} records{failure}", soft_wrap=True)
            if "refused" in q:  # Prio3: the dishonest holder's contribution was refused
                r = q["refused"]
                out.print(
                    f"  refused   {r['holder']}: {r['reason']} "
                    f"(rejected contributions: {q['rejected_contributions']})",
                    soft_wrap=True,
                )
            if "dp" in q:
                dp = q["dp"]
                out.print(
                    f"  dp        {dp['mechanism']}, rho={dp['rho']}, noise of {dp['servers']} "
                    f"server(s); error {dp['worst_sd']} sd, bound {dp['bound_sd']} sd",
                    soft_wrap=True,
                )
        if bad_exits:
            console.print(f"[red]processes exited uncleanly: {bad_exits}[/]")
    for q in queries:
        q.pop("_secure")
        q.pop("_plain")
    return {"queries": queries, "exit_codes": codes, "clean_shutdown": not bad_exits}
