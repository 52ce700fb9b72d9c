"""Prio3 end to end with real processes and TLS (issue 12): honest holders count,
dishonest ones are refused naming the failed check, replays count once (also across
a leader restart), and the analyst's answer equals the plaintext over the honest
holders. Dishonest holders are the client library with a tampering hook."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
from collections.abc import Callable

import pytest

from pets import seal
from pets.errors import PetsError
from pets.protocols.prio3 import Prio3Protocol, Tamper
from pets.query import Query, evaluate
from pets.query import compile as compile_query
from pets.v1 import aggregation_pb2 as pb

from .conftest import analyst, contribute, expected, holder_client, run, tables_for

TEXT = "mean(length_of_stay) from hospitals group by sex"


async def contribute_with(cluster, holder: str, query_id: str, tamper: Tamper):  # type: ignore[no-untyped-def]
    """A dishonest holder: the client library, with the protocol's tampering hook."""
    client = holder_client(cluster, holder)
    try:
        ann = await client.announcement(query_id)
        plan = compile_query(Query.from_json(ann.spec.query_json), cluster.schema)
        table = tables_for(cluster, plan.query.dataset, [holder])[0]
        contribution = await Prio3Protocol(tamper).contribute(
            ann,
            plan,
            evaluate(plan, table),
            holder=client.name,
            seed_key=None,
            sealer=client.seal_seeds,
        )
        # Whatever it sends, it signs with its own key (as a dishonest holder would).
        sealed = []
        for seed in contribution.sealed_seeds:
            context = seal.SeedContext(query_id, bytes(ann.fingerprint), client.name, seed.helper)
            signature = seal.sign_sealed(context, bytes(seed.sealed), client._signing_key)  # type: ignore[arg-type]
            sealed.append(
                pb.SealedSeed(helper=seed.helper, sealed=seed.sealed, signature=signature)
            )
        return await client.send_payload(
            query_id,
            contribution.payload,
            contribution.digest,
            sealed,
            deadline=ann.deadline_unix,
        )
    finally:
        await client.close()


def _flip(at: int) -> Callable[[bytes], bytes]:
    return lambda p: p[:at] + bytes([p[at] ^ 1]) + p[at + 1 :]


def _flip_sealed(seeds: list[pb.SealedSeed]) -> list[pb.SealedSeed]:
    s = seeds[0]
    sealed = bytes(s.sealed)
    return [
        pb.SealedSeed(
            helper=s.helper,
            sealed=sealed[:40] + bytes([sealed[40] ^ 1]) + sealed[41:],
            signature=s.signature,
        )
    ]


DISHONEST: dict[str, tuple[Tamper, str]] = {
    # a value far above its slot's bound (a "bit" of 1000)
    "out-of-bound": (Tamper(encoded=lambda e: [1000, *e[1:]]), "proof verifier check failed"),
    "proof-share": (Tamper(payload=_flip(-40)), "check failed"),
    "joint-rand-part": (Tamper(payload=_flip(0)), "check failed"),
    "sealed-share-bit": (Tamper(sealed=_flip_sealed), "does not open"),
    "wrong-length": (Tamper(payload=lambda p: p + bytes(16)), "bytes"),
}


ROUNDS = [
    {"org-3": "out-of-bound", "org-4": "proof-share"},
    {"org-3": "joint-rand-part", "org-4": "sealed-share-bit"},
    {"org-3": "wrong-length", "org-4": "stolen-report"},
]


def test_dishonest_holders_are_refused_and_honest_ones_count(make_cluster) -> None:
    """Three queries, each with two honest holders (org-1, org-2) and two dishonest."""
    cluster = make_cluster()
    honest = ["org-1", "org-2"]

    async def one_round(client, kinds):  # type: ignore[no-untyped-def]
        submitted = await client.submit(Query.parse(TEXT), protocol="prio3", deadline_seconds=120)
        qid = submitted.query_id
        captured: dict[str, object] = {}

        def capture_payload(p: bytes) -> bytes:
            captured["payload"] = p
            return p

        def capture_sealed(s: list[pb.SealedSeed]) -> list[pb.SealedSeed]:
            captured["sealed"] = s
            return s

        # org-1 is honest; its report is captured for the replay by another holder.
        acks = [
            await contribute_with(
                cluster, "org-1", qid, Tamper(payload=capture_payload, sealed=capture_sealed)
            ),
            await contribute(cluster, "org-2", qid),
        ]
        refusals = {}
        for h, kind in kinds.items():
            if kind == "stolen-report":
                tamper = Tamper(
                    payload=lambda p: captured["payload"],  # type: ignore[return-value,arg-type]
                    sealed=lambda s: captured["sealed"],  # type: ignore[return-value,arg-type]
                )
            else:
                tamper = DISHONEST[kind][0]
            with pytest.raises(PetsError) as info:
                await contribute_with(cluster, h, qid, tamper)
            refusals[h] = str(info.value)
        # A refused holder cannot replace its contribution with an honest one.
        retry = None
        if kinds.get("org-3") != "wrong-length":
            with pytest.raises(PetsError, match="rejected") as info:
                await contribute(cluster, "org-3", qid)
            retry = str(info.value)
        # A replay of org-1's report by org-1 is acknowledged, not counted twice.
        again = await contribute_with(
            cluster,
            "org-1",
            qid,
            Tamper(
                payload=lambda p: captured["payload"],  # type: ignore[return-value,arg-type]
                sealed=lambda s: captured["sealed"],  # type: ignore[return-value,arg-type]
            ),
        )
        status = await client.status(qid)
        await client.close_query(qid)
        final = await asyncio.wait_for(client.wait(qid), 60)
        result = await client.fetch(submitted, final)
        return acks, refusals, retry, again, status, final, result

    async def go():  # type: ignore[no-untyped-def]
        client = analyst(cluster)
        out = [await one_round(client, kinds) for kinds in ROUNDS]
        await client.close()
        return out

    for kinds, (acks, refusals, _retry, again, status, final, result) in zip(
        ROUNDS, run(go()), strict=True
    ):
        assert all(a.newly_accepted for a in acks) and not again.newly_accepted
        for h, kind in kinds.items():
            want = "does not open" if kind == "stolen-report" else DISHONEST[kind][1]
            assert want in refusals[h], (kind, refusals[h])
        # Rejections are counted (no values); a payload of the wrong length is
        # refused before any check, as malformed.
        assert status.rejected_contributions == sum(k != "wrong-length" for k in kinds.values())
        assert final.state == pb.QUERY_STATE_READY and final.contributors == 2
        assert final.spec.protocol == pb.PROTOCOL_PRIO3
        assert result.close_to(expected(cluster, TEXT, honest))
    assert "proof verifier check failed" in run_refusal(ROUNDS, "out-of-bound")


def run_refusal(rounds: list[dict[str, str]], kind: str) -> str:
    return DISHONEST[kind][1]


def test_every_query_shape_matches_the_plaintext_and_replays_survive_a_restart(
    make_cluster,
) -> None:
    cluster = make_cluster()
    holders = ["org-1", "org-2", "org-3"]
    texts = [
        "count() from hospitals",
        "histogram(age) from hospitals bins [0, 18, 65, 110]",
        "variance(cost) from hospitals where prefecture != Tokyo group by sex",
    ]

    async def submit_all():  # type: ignore[no-untyped-def]
        client = analyst(cluster)
        subs = [
            await client.submit(Query.parse(t), protocol="prio3", deadline_seconds=120)
            for t in texts
        ]
        reports = []
        for s in subs:
            report: dict[str, object] = {}
            tamper = Tamper(
                payload=lambda p, r=report: r.setdefault("payload", p),  # type: ignore[misc]
                sealed=lambda x, r=report: r.setdefault("sealed", x),  # type: ignore[misc]
            )
            await contribute_with(cluster, "org-1", s.query_id, tamper)
            await contribute(cluster, "org-2", s.query_id)
            reports.append(report)
        await client.close()
        return subs, reports

    subs, reports = run(submit_all())
    assert verify_keys(cluster, "leader") == verify_keys(cluster, "helper-1") == len(texts)
    # Crashes of both servers: only what they stored survives (the verify keys, the
    # committed holders); the helper verifies again at Finalize what it did not keep.
    for server in ("leader", "helper-1"):
        cluster.kill(server, signal.SIGKILL)
        cluster.restart_server(server)

    async def finish():  # type: ignore[no-untyped-def]
        client = analyst(cluster)
        out = []
        for s, report in zip(subs, reports, strict=True):
            replay = await contribute_with(  # org-1's very report again, after the restart
                cluster,
                "org-1",
                s.query_id,
                Tamper(
                    payload=lambda p, r=report: r["payload"], sealed=lambda x, r=report: r["sealed"]
                ),  # type: ignore[misc]
            )
            late = await contribute(cluster, "org-3", s.query_id)  # the key survived
            await client.close_query(s.query_id)
            final = await asyncio.wait_for(client.wait(s.query_id), 60)
            out.append((replay, late, final, await client.fetch(s, final)))
        await client.close()
        return out

    for text, (replay, late, final, result) in zip(texts, run(finish()), strict=True):
        assert not replay.newly_accepted and late.newly_accepted
        assert final.contributors == 3, text
        assert result.close_to(expected(cluster, text, holders)), text
    # The verify keys ended with their queries, on both servers.
    for server in ("leader", "helper-1"):
        assert verify_keys(cluster, server) == 0, server


def verify_keys(cluster, server: str) -> int:  # type: ignore[no-untyped-def]
    """Rows in the server's ``verify_keys`` table (its SQLite database, read directly)."""
    state = cluster.workdir / "state" / server
    databases = [
        p for p in state.rglob("*") if p.is_file() and p.read_bytes()[:16] == b"SQLite format 3\x00"
    ]
    assert databases, state
    rows = 0
    for path in databases:
        with contextlib.closing(sqlite3.connect(path)) as db:
            rows += db.execute("SELECT count(*) FROM verify_keys").fetchone()[0]
    return rows
