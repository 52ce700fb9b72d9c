"""The demo's Prio3 queries (issue 12): robust aggregation, with one dishonest holder.

Three queries run with ``protocol = "prio3"`` (a count, a grouped mean and a
histogram), answered by the demo's nodes. During the grouped mean an extra
holder, ``org-mallory`` (a certified holder without a node), contributes
through the client library a vector whose first slot is encoded far
outside its bound (a "bit" of 1000): the servers' joint check
refuses it ("proof verifier check failed"), the query's status counts one
rejected contribution, and the answer still equals the plaintext over the
honest holders. :func:`run_prio3_queries` returns one entry per query in
:mod:`pets.devtools.demo`'s format, with ``rejected_contributions`` and, for
the dishonest one, ``refused`` (the refusal the holder got).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np

from pets.client.analyst import AnalystClient
from pets.client.connect import Connector
from pets.client.holder import HolderClient
from pets.client.node import load_table
from pets.devtools.localcluster import LocalCluster
from pets.errors import PetsError
from pets.identity.certificates import Role
from pets.protocols.prio3 import Prio3Protocol, Tamper
from pets.query import Query, plaintext
from pets.query import compile as compile_query
from pets.v1 import aggregation_pb2 as pb

DISHONEST = "org-mallory"

# (name, query text, with the dishonest holder?)
PRIO3_QUERIES: tuple[tuple[str, str, bool], ...] = (
    ("men (prio3)", "count() from hospitals where sex = M", False),
    (
        "mean stay per diagnosis (prio3, one dishonest holder)",
        "mean(length_of_stay) from hospitals group by diagnosis",
        True,
    ),
    ("age histogram (prio3)", "histogram(age) from hospitals bins [0, 30, 60, 90, 110]", False),
)


async def _dishonest_contribution(cluster: LocalCluster, query_id: str) -> str:
    """``org-mallory`` claims 1000 in a 0/1 position of its first slot: far above
    the slot's bound. Returns the refusal it gets (it must get one)."""
    client = HolderClient(Connector(cluster.endpoints(DISHONEST), "holder"))
    try:
        ann = await client.announcement(query_id)
        plan = compile_query(Query.from_json(ann.spec.query_json), cluster.schema)
        floor = np.array([lo for lo, _ in plan.slot_bounds()], dtype=np.int64)
        tamper = Tamper(encoded=lambda e: [1000, *e[1:]])
        contribution = await Prio3Protocol(tamper).contribute(
            ann, plan, floor, holder=client.name, seed_key=None, sealer=client.seal_seeds
        )
        try:
            await client.send_payload(
                query_id,
                contribution.payload,
                contribution.digest,
                contribution.sealed_seeds,
                deadline=ann.deadline_unix,
            )
        except PetsError as exc:
            return str(exc)
        raise PetsError("the dishonest contribution was accepted")
    finally:
        await client.close()


async def _one(
    cluster: LocalCluster, holders: int, name: str, text: str, dishonest: bool
) -> dict[str, Any]:
    analyst = AnalystClient(cluster.endpoints("analyst"))
    started = time.perf_counter()
    query = Query.parse(text)
    try:
        submitted = await analyst.submit(
            query, protocol="prio3", deadline_seconds=60, close_after=0 if dishonest else holders
        )
        refused = None
        if dishonest:
            refused = await _dishonest_contribution(cluster, submitted.query_id)
            while (await analyst.status(submitted.query_id)).contributors < holders:
                await asyncio.sleep(0.1)
            await analyst.close_query(submitted.query_id)
        final = await analyst.wait(submitted.query_id)
        secure = (
            await analyst.fetch(submitted, final) if final.state == pb.QUERY_STATE_READY else None
        )
    finally:
        await analyst.close()
    plan = compile_query(query, cluster.schema)
    tables = [
        load_table(cluster.schema, query.dataset, f[query.dataset])
        for f in cluster.holder_data.values()
    ]
    expected = plaintext(plan, tables)
    entry: dict[str, Any] = {
        "name": name,
        "query": query.describe(),
        "protocol": "prio3",
        "secure": secure.to_json_obj() if secure else None,
        "plaintext": expected.to_json_obj(),
        "match": bool(secure is not None and secure.close_to(expected)),
        "seconds": round(time.perf_counter() - started, 3),
        "rejected_contributions": final.rejected_contributions,
        "_secure": secure,
        "_plain": expected,
    }
    if dishonest:
        entry["refused"] = {"holder": DISHONEST, "reason": refused}
        entry["match"] = entry["match"] and final.rejected_contributions == 1
    return entry


async def run_prio3_queries(cluster: LocalCluster, holders: int) -> list[dict[str, Any]]:
    """The Prio3 queries, one after another (the dishonest holder's certificate first)."""
    cluster.issue(Role.HOLDER, DISHONEST)
    return [await _one(cluster, holders, *q) for q in PRIO3_QUERIES]
