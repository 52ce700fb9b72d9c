"""The demo's linked queries (issue 16): record linkage end to end, checked against a join.

Hospitals, municipalities (long-term care, ``ltc``) and insurers (``claims``)
hold records about one synthetic population under messy pseudonymous ids
(``pets gen-data --kind linked``). A second small deployment (a leader, a
helper and one node process per holder, mutual TLS) answers linked queries
with ``PROTOCOL_LINKAGE``: the nodes blind their ids, the servers apply their
key shares, the nodes upload pseudonyms and secret-shared per-person vectors,
and the servers join and sum. Each secure answer is compared with the
plaintext join of the same files (:func:`pets.devtools.linkjoin.linked_plaintext`,
pandas); any difference beyond fixed-point rounding fails the demo.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from pets.client.analyst import AnalystClient
from pets.devtools.datafiles import write_data
from pets.devtools.datagen import generate
from pets.devtools.linkjoin import linked_intersection, linked_plaintext
from pets.devtools.localcluster import LocalCluster
from pets.query import Query
from pets.query import compile as compile_query

SEED = 2027

# (name, query text): the value side's per-person values over the people also on the
# other side(s), with filters on every side and a group-by on the value side.
LINKED_QUERIES: tuple[tuple[str, str], ...] = (
    (
        "care cost of hospital C/E/I patients (linked)",
        "mean(care_cost) from ltc linked to hospitals where hospitals.diagnosis in (C, E, I) "
        "group by care_level",
    ),
    (
        "65+ inpatients also in long-term care (linked)",
        "count(*) from hospitals linked to ltc where age >= 65",
    ),
    (
        "claims of people in care and in hospital (linked)",
        "sum(amount) from claims linked to hospitals, ltc group by claim_type",
    ),
    (
        "a cohort below the floor (linked, refused)",
        "count(*) from ltc linked to hospitals "
        "where hospitals.diagnosis = E and care_level = care5",
    ),
)
#: The servers' floor on matched records (server/leader/linkage.py's default).
FLOOR = 10


def build_linked_cluster(workdir: Path, holders: int, rows: int) -> LocalCluster:
    """``holders`` hospitals, municipalities and insurers (one node each)."""
    data = generate("linked", holders, rows, SEED)
    # Some holders keep Parquet and some SQLite, so every file source is linked end to end.
    files = write_data(data, workdir / "data", formats=("parquet", "sqlite", "sqlite", "parquet"))
    return LocalCluster(
        workdir=workdir,
        schema=data.schema,
        holder_data={holder: dict(paths) for holder, paths in files.items()},
        helpers=1,
        min_holders=2,
        limits={"finalize_timeout_seconds": 20},
        node_policy_toml='[policy]\nprotocols = ["linkage"]\n',
    )


async def _run(cluster: LocalCluster) -> list[dict[str, Any]]:
    analyst = AnalystClient(cluster.endpoints("analyst"))

    async def one(name: str, text: str) -> dict[str, Any]:
        query = Query.parse(text)
        plan = compile_query(query, analyst.schema)
        assert plan.linkage is not None
        sides = set(plan.linkage.datasets)
        answering = sum(1 for files in cluster.holder_data.values() if sides & set(files))
        outcome = await analyst.run(
            query, protocol="linkage", close_after=answering, deadline_seconds=120
        )
        sources = {
            ds: [files[ds] for files in cluster.holder_data.values() if ds in files]
            for ds in plan.linkage.datasets
        }
        expected = await asyncio.to_thread(linked_plaintext, plan, sources)
        matched = await asyncio.to_thread(linked_intersection, plan, sources)
        secure = outcome.result
        floor = max(FLOOR, query.min_intersection or 0)
        if matched < floor:  # the servers must refuse it, and say nothing more
            ok = secure is None and outcome.status.failure == "below_min_intersection"
        else:
            ok = secure is not None and secure.close_to(expected)
        return {
            "name": name,
            "query": query.describe(),
            "protocol": "linkage",
            "secure": secure.to_json_obj() if secure else None,
            "failure": outcome.status.failure,
            "plaintext": expected.to_json_obj(),
            "matched_records": matched,
            "match": bool(ok),
            "seconds": round(outcome.seconds, 3),
            "_secure": secure,
            "_plain": expected,
        }

    try:
        # One after the other: every node answers each query once, in order.
        return [await one(*q) for q in LINKED_QUERIES]
    finally:
        await analyst.close()


def run_linked_queries(workdir: Path, *, holders: int = 2, rows: int = 300) -> list[dict[str, Any]]:
    """Start the linked deployment in ``workdir``, run :data:`LINKED_QUERIES`, stop."""
    started = time.perf_counter()
    cluster = build_linked_cluster(workdir, holders, rows)
    try:
        cluster.start()
        queries = asyncio.run(_run(cluster))
    finally:
        codes = cluster.stop()
    for q in queries:
        q["deployment_seconds"] = round(time.perf_counter() - started, 1)
        q["clean_shutdown"] = all(c == 0 for c in codes.values())
    return queries
