"""Shared pieces of the record-linkage service tests (tests/integration/test_linkage*.py).

A small linked schema (``ltc`` carries per-person care costs, ``hospitals``
diagnoses, one domain ``resident``), hand-made person sets per holder, a
reference that joins them in plain Python, and a driver that runs one linked
query through real servers with :func:`pets.client.linkage.link_and_upload`
(the node's own path, minus reading files).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pets import encoding
from pets.client.analyst import AnalystClient
from pets.client.connect import Connector
from pets.client.holder import HolderClient
from pets.client.linkage import link_and_upload
from pets.devtools.linked_schema import care_and_hospitals
from pets.devtools.localcluster import LocalCluster
from pets.linkage import LinkageDomain
from pets.linkage.normalise import normalise_ids
from pets.query import Query, QueryPlan, Result, Schema, Table, evaluate, plaintext
from pets.query import compile as compile_query
from pets.v1 import aggregation_pb2 as pb

DOMAIN = LinkageDomain("resident")


def schema() -> Schema:
    return care_and_hospitals()


@dataclass
class Persons:
    """One holder's persons: raw ids and their column values (one row each)."""

    dataset: str
    ids: list[str]
    columns: dict[str, list[Any]] = field(default_factory=dict)

    def table(self, s: Schema, rows: Sequence[int] | None = None) -> Table:
        pick = range(len(self.ids)) if rows is None else rows
        data = {k: [v[i] for i in pick] for k, v in self.columns.items()}
        return Table.from_columns(s.dataset(self.dataset), data)


@dataclass
class HandRows:
    """:class:`pets.client.linkage.PersonRows` built by hand: the side's filter
    applied, ids normalised, and each person's vector the ordinary evaluation of
    the value side's query over that person's one row."""

    ids: list[bytes]
    domain: LinkageDomain
    width: int
    matrix: np.ndarray

    def vectors(self, persons: np.ndarray) -> np.ndarray:
        return self.matrix[np.asarray(persons, dtype=np.int64)]


def side_filter(query: Query, dataset: str) -> list[tuple[str, str, Any]]:
    """The query's filters on ``dataset`` as (column, op, value), unqualified."""
    out = []
    for f in query.where:
        name = f.column
        if "." in name:
            ds, col = name.split(".", 1)
        else:
            ds, col = query.dataset, name
        if ds == dataset:
            out.append((col, f.op, f.value))
    return out


def _keep(p: Persons, i: int, filters: list[tuple[str, str, Any]]) -> bool:
    for col, op, value in filters:
        v = p.columns[col][i]
        if op == "=" and v != value:
            return False
        if op == "in" and v not in value:
            return False
        if op == ">=" and not v >= value:
            return False
    return True


def _value_plan(s: Schema, query: Query) -> QueryPlan:
    """The value side's ordinary query (no filters, no linkage), compiled."""
    return compile_query(
        Query(
            dataset=query.dataset,
            aggregate=query.aggregate,
            column=query.column,
            group_by=query.group_by,
            bins=query.bins,
            clip=query.clip,
        ),
        s,
    )


def hand_rows(s: Schema, query: Query, p: Persons) -> HandRows:
    """What evaluate_persons would give for holder ``p`` (first row per person)."""
    filters = side_filter(query, p.dataset)
    kept: dict[bytes, int] = {}
    normal, rownums, _ = normalise_ids(p.ids, DOMAIN.normalisation)
    for ident, i in zip(normal, rownums, strict=True):
        if ident in kept or not _keep(p, i, filters):
            continue
        kept[ident] = i
    ids = list(kept)
    if p.dataset != query.dataset:
        return HandRows(ids, DOMAIN, 0, np.zeros((len(ids), 0), dtype=np.uint64))
    local = _value_plan(s, query)
    rows = [encoding.to_ring(evaluate(local, p.table(s, [kept[i]]))) for i in ids]
    matrix = np.stack(rows) if rows else np.zeros((0, local.length), dtype=np.uint64)
    return HandRows(ids, DOMAIN, local.length, matrix.astype(np.uint64))


def reference(s: Schema, query: Query, holders: Mapping[str, Persons]) -> tuple[Result, int]:
    """The plaintext join: value-side rows whose person is on every other side
    (union within a side); the ordinary plaintext answer over them; the matched count."""
    plan = compile_query(query, s)
    assert plan.linkage is not None
    sets = []
    for side in plan.linkage.sides[1:]:
        members: set[bytes] = set()
        for p in holders.values():
            if p.dataset == side.name:
                members |= set(hand_rows(s, query, p).ids)
        sets.append(members)
    tables = []
    matched = 0
    local = _value_plan(s, query)
    for p in holders.values():
        if p.dataset != query.dataset:
            continue
        filters = side_filter(query, p.dataset)
        first: dict[bytes, int] = {}
        normal, rownums, _ = normalise_ids(p.ids, DOMAIN.normalisation)
        for ident, i in zip(normal, rownums, strict=True):
            if ident not in first and _keep(p, i, filters):
                first[ident] = i
        pick = [i for ident, i in first.items() if all(ident in m for m in sets)]
        matched += len(pick)
        tables.append(p.table(s, pick))
    return plaintext(local, tables), matched


def holder_client(cluster: LocalCluster, name: str) -> HolderClient:
    return HolderClient(Connector(cluster.endpoints(name), "holder"))


async def run_linked(
    cluster: LocalCluster,
    text: str,
    holders: Mapping[str, Persons],
    *,
    verify: bool = True,
    min_intersection: int = 0,
) -> tuple[pb.QueryStatus, Result | None]:
    """Submit ``text`` as PROTOCOL_LINKAGE; every holder links and uploads; wait."""
    s = cluster.schema
    query = Query.parse(text)
    plan = compile_query(query, s)
    assert plan.linkage is not None
    analyst = AnalystClient(cluster.endpoints("analyst"))
    try:
        sub = await analyst.submit(
            query,
            protocol="linkage",
            min_holders=2,
            deadline_seconds=60,
            close_after=len(holders),
        )
        qid = sub.status.query_id

        async def one(name: str, p: Persons) -> None:
            client = holder_client(cluster, name)
            try:
                ann = await client.announcement(qid)
                side = plan.linkage.datasets.index(p.dataset)  # type: ignore[union-attr]
                await link_and_upload(client, ann, side, hand_rows(s, query, p), verify=verify)
            finally:
                await client.close()

        await asyncio.gather(*(one(n, p) for n, p in holders.items()))
        status = await analyst.wait(qid)
        if status.state != pb.QUERY_STATE_READY:
            return status, None
        return status, await analyst.fetch(sub, status)
    finally:
        await analyst.close()


def submit(cluster: LocalCluster, text: str, protocol: str) -> str:
    """Submit ``text`` under ``protocol`` as the cluster's analyst (deadline 5 s); the
    query id."""

    async def go() -> str:
        analyst = AnalystClient(cluster.endpoints("analyst"))
        try:
            sub = await analyst.submit(Query.parse(text), protocol=protocol, deadline_seconds=5)
            return str(sub.status.query_id)
        finally:
            await analyst.close()

    return asyncio.run(go())


def make_cluster(workdir: Path, holders: Sequence[str], **options: Any) -> LocalCluster:
    options.setdefault("limits", {"finalize_timeout_seconds": 5})
    cluster = LocalCluster(
        workdir=workdir,
        schema=schema(),
        holder_data={h: {} for h in holders},
        min_holders=2,
        **options,
    )
    cluster.prepare(analysts=("analyst",))
    cluster.start_servers()
    return cluster
