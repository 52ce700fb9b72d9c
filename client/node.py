"""The data-holder node: watch the leader, decide, evaluate, contribute.

``pets node`` runs :class:`Node`. It keeps a server-streaming watch on the
leader for query announcements (reconnecting with exponential backoff when
the leader is away), checks each query against the holder's local policy,
evaluates it on the holder's own rows into the query's fixed-layout vector,
and delivers it by the query's protocol. Its log says which queries it
answered or refused and why; it never logs a value.

Every decision (answered or refused, why, when; never a value) is kept in the
node's journal, ``state_dir/node.sqlite`` (:mod:`pets.client.journal`), so a
restarted node does not contribute twice, ``pets node history`` can list them,
and the answer limit holds across restarts: the same query fingerprint from the
same analyst is answered at most ``[policy] same_query_answers`` times per
``same_query_window_seconds`` (default once a day).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np

from pets import prg
from pets.client.config import NodeConfig, load_schema
from pets.client.connect import Connector
from pets.client.holder import HolderClient
from pets.client.journal import ANSWERED, ANSWERING, REFUSED, Journal
from pets.client.linkage import link_and_upload
from pets.client.linked_policy import addressed, choose_side, held_persons, small_cells
from pets.errors import (
    ConfigError,
    ConflictError,
    InvalidInputError,
    PermissionDeniedError,
    PetsError,
)
from pets.identity.signing import check_deadline, verify_spec
from pets.protocols import lookup, name_of
from pets.query import Query, QueryPlan, Schema, Table
from pets.query import compile as compile_query
from pets.runtime.atomicfile import write_atomic
from pets.runtime.backoff import Backoff
from pets.sources import SourceSpec, check_source, evaluate_source, open_source, read_table
from pets.v1 import aggregation_pb2 as pb

log = logging.getLogger("pets.client.node")

MAX_BACKOFF_SECONDS = 10.0


@dataclass(frozen=True)
class Decision:
    """Whether to answer a query, and why not."""

    accept: bool
    reason: str = ""
    plan: QueryPlan | None = None
    addressed: bool = True  # False: the query reads no dataset this node holds (not recorded)
    side: int | None = None  # a linked query: the side this node answers for


def load_table(schema: Schema, dataset: str, path: Path | SourceSpec) -> Table:
    """A whole dataset source as one table (small data: tests and the demo)."""
    return read_table(open_source(schema, dataset, path))


class Node:
    """One data holder's long-running node."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.name = config.endpoints.name
        self.schema = load_schema(config.endpoints.schema)
        # Sources are opened and checked against the schema now; rows are read per query.
        self.tables = {ds: open_source(self.schema, ds, p) for ds, p in config.data.items()}
        for source in self.tables.values():
            check_source(self.schema, source)
        self.connector = Connector(config.endpoints, "holder")
        tls = config.endpoints.tls
        self._ca_pem = tls.ca.read_bytes() if tls is not None else None
        self.client = HolderClient(self.connector, seed_key=self._seed_key())
        self.journal = Journal(config.state_dir)
        self._tasks: set[asyncio.Task] = set()
        self._in_flight: set[str] = set()

    def _seed_key(self) -> bytes:
        """The node's long-term seed key (``state_dir/seed.key``, mode 0600)."""
        path = self.config.state_dir / "seed.key"
        try:
            key = path.read_bytes()
        except FileNotFoundError:
            self.config.state_dir.mkdir(parents=True, exist_ok=True)
            key = os.urandom(prg.SEED_BYTES)
            write_atomic(path, key)  # 0600; refuses to replace a key written meanwhile
        if len(key) != prg.SEED_BYTES:
            raise ConfigError(f"{path} is not a {prg.SEED_BYTES}-byte seed key")
        return key

    def _refuse(self, ann: pb.QueryAnnouncement, reason: str, query: str = "") -> None:
        log.info("query refused", extra={"query_id": ann.query_id, "reason": reason})
        self.journal.record(
            ann.query_id,
            REFUSED,
            analyst=ann.analyst,
            fingerprint=bytes(ann.fingerprint),
            query=query,
            reason=reason,
        )

    def reserve_answer(self, ann: pb.QueryAnnouncement, plan: QueryPlan) -> str | None:
        """Count this answer against the limit, or say why the limit refuses it.

        Synchronous (no await between the count and the reservation), so two
        announcements of the same query handled at once cannot both pass.
        """
        pol = self.config.policy
        fingerprint = bytes(ann.fingerprint)
        if lookup(ann.spec.protocol).spec_signed and ann.spec.spec_id:
            # A signed spec is answered for one query only (issue 15, item 15).
            earlier = self.journal.claim_spec(
                bytes(ann.spec.spec_id), ann.query_id, not_after=ann.spec.not_after_unix
            )
            if earlier is not None:
                return (
                    f"replayed spec: this node already answered spec id "
                    f"{bytes(ann.spec.spec_id).hex()} for query {earlier}"
                )
        done = self.journal.answers(
            ann.analyst, fingerprint, pol.same_query_window_seconds, other_than=ann.query_id
        )
        if done >= pol.same_query_answers:
            return (
                f"answer limit: this node already answered the same query (fingerprint "
                f"{fingerprint.hex()[:16]}) from analyst {ann.analyst!r} {done} time(s) in the "
                f"last {pol.same_query_window_seconds:g} s (policy.same_query_answers = "
                f"{pol.same_query_answers})"
            )
        self.journal.record(
            ann.query_id,
            ANSWERING,
            analyst=ann.analyst,
            fingerprint=fingerprint,
            query=plan.query.describe(),
        )
        return None

    # -- policy ---------------------------------------------------------------
    def decide(self, ann: pb.QueryAnnouncement) -> Decision:
        """Apply the local policy to an announced query (no network, no values logged)."""
        pol = self.config.policy
        with contextlib.suppress(PetsError, ValueError, TypeError, KeyError, RecursionError):
            if not addressed(Query.from_json(ann.spec.query_json), self.tables):
                return Decision(False, "reads no dataset this node holds", addressed=False)
        protocol = name_of(ann.spec.protocol)
        if protocol not in pol.protocols:
            return Decision(False, f"protocol {protocol} is not allowed by local policy")
        try:
            query = Query.from_json(ann.spec.query_json)
            plan = compile_query(query, self.schema)
        except (PetsError, ValueError, TypeError, KeyError, RecursionError) as exc:
            return Decision(False, f"query does not compile against the local schema: {exc!s:.200}")
        if plan.fingerprint() != ann.fingerprint:
            return Decision(False, "query fingerprint differs: leader and node schemas disagree")
        side = None
        if plan.linkage is not None:  # the policy applies to the side held (client/linked_policy)
            side, why = choose_side(plan, self.tables, pol)
            if side is None:
                return Decision(False, why)
        elif query.dataset not in self.tables:
            return Decision(False, f"no local data for dataset {query.dataset}")
        elif pol.datasets is not None and query.dataset not in pol.datasets:
            return Decision(False, f"dataset {query.dataset} is not allowed by local policy")
        allowed = None if side is not None else pol.columns.get(query.dataset)
        if allowed is not None:
            touched = {query.column} if query.column else set()
            touched |= set(query.columns) | set(query.group_by) | {f.column for f in query.where}
            denied = sorted(touched - set(allowed))
            if denied:
                return Decision(False, f"columns {denied} are not allowed by local policy")
        chosen = lookup(ann.spec.protocol)
        refusal = chosen.holder_refusal(ann, plan, list(self.config.endpoints.helpers))
        if refusal is not None:
            return Decision(False, refusal)
        if chosen.spec_signed and self._ca_pem is not None:
            try:
                verify_spec(ann.spec, self._ca_pem)
                check_deadline(ann.spec, ann.deadline_unix)
            except PetsError as exc:
                # Encrypting to a key no analyst signed could hand our data to the leader.
                return Decision(False, f"{protocol} key not vouched for by an analyst: {exc}")
        if ann.deadline_unix <= time.time():
            return Decision(False, "deadline already passed")
        return Decision(True, plan=plan, side=side)

    def evaluate(self, plan: QueryPlan) -> tuple[np.ndarray | None, str]:
        """One pass over the local source: the vector, or ``None`` and the policy's refusal.

        ``min_group_rows`` covers every cell the query would release: each group,
        each group x bin of a histogram, and the filter result. A row the schema
        does not allow (its source, row and column named, never its value) is a
        refusal too.
        """
        try:
            evaluation = evaluate_source(plan, self.tables[plan.query.dataset])
        except InvalidInputError as exc:
            return None, f"local data rejected: {exc}"
        k = self.config.policy.min_group_rows
        small = evaluation.small_cells(k) if k > 1 and not plan.is_vector else 0
        if small:
            return None, (
                f"{small} released cell(s) (group, histogram bin or filter result) "
                f"have fewer than {k} matching rows"
            )
        return evaluation.vector, ""

    # -- contributing -----------------------------------------------------------
    async def handle(self, ann: pb.QueryAnnouncement) -> None:
        qid = ann.query_id
        if qid in self._in_flight or self.journal.decided(qid):
            return
        self._in_flight.add(qid)
        reserved = False
        try:
            decision = self.decide(ann)
            if not decision.addressed:
                log.debug("query not addressed", extra={"query_id": qid})
                return
            if not decision.accept:
                self._refuse(ann, decision.reason)
                return
            assert decision.plan is not None
            plan = decision.plan
            limited = self.reserve_answer(ann, plan)
            if limited is not None:
                self._refuse(ann, limited, plan.query.describe())
                return
            reserved = True
            if plan.linkage is not None:  # record linkage: OPRF, pseudonyms (client/linkage.py)
                assert decision.side is not None
                persons = await held_persons(plan, decision.side, self.tables)
                small = small_cells(persons, self.config.policy.min_group_rows)
                if small:
                    reserved = False
                    k = self.config.policy.min_group_rows
                    reason = f"{small} released cell(s) of this holder's people (group, "
                    reason += f"histogram bin or filter result) have fewer than {k} people"
                    self._refuse(ann, reason, plan.query.describe())
                    return
                ack = await link_and_upload(self.client, ann, decision.side, persons)
            else:
                vector, refusal = await asyncio.to_thread(self.evaluate, plan)
                if vector is None:
                    reserved = False
                    self._refuse(ann, refusal, plan.query.describe())
                    return
                ack = await self.client.contribute(ann, plan, vector)
            reserved = False
            self.journal.record(qid, ANSWERED)
            log.info(
                "query answered",
                extra={
                    "query_id": qid,
                    "query": plan.query.describe(),
                    "protocol": name_of(ann.spec.protocol),
                    "newly_accepted": ack.newly_accepted,
                },
            )
        except ConflictError as exc:
            reserved = False
            self.journal.record(qid, ANSWERED, reason=f"the leader already had it: {exc}")
            log.warning("query already answered", extra={"query_id": qid, "detail": str(exc)})
        except PetsError as exc:
            log.error("could not answer query", extra={"query_id": qid, "error": str(exc)})
        except Exception:
            log.exception("unexpected error answering query", extra={"query_id": qid})
        finally:
            if reserved:  # not answered after all: the limit must not count it
                self.journal.forget(qid)
            self._in_flight.discard(qid)

    async def run(self, stop: asyncio.Event) -> None:
        """Watch the leader until ``stop`` is set, reconnecting with backoff."""
        backoff = Backoff(0.25, MAX_BACKOFF_SECONDS)
        refused: PermissionDeniedError | None = None
        while not stop.is_set():
            call = self.client.leader.WatchQueries(
                pb.WatchQueriesRequest(include_open=True), metadata=self.connector.metadata
            )
            stopper = asyncio.create_task(stop.wait())
            try:
                log.info("watching leader", extra={"leader": self.config.endpoints.leader})
                async for ann in _until(call, stopper):
                    backoff.reset()
                    task = asyncio.create_task(self.handle(ann))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            except grpc.aio.AioRpcError as exc:
                if exc.code() in (
                    grpc.StatusCode.PERMISSION_DENIED,
                    grpc.StatusCode.UNAUTHENTICATED,
                ):
                    # Retrying cannot help: the leader will not take this identity.
                    log.error("leader refused this node", extra={"detail": exc.details()})
                    refused = PermissionDeniedError(
                        f"the leader refused this node ({exc.code().name}: {exc.details()}); "
                        f"check that its certificate is the holder certificate of {self.name!r}"
                    )
                    break
                log.warning(
                    "leader unreachable, retrying",
                    extra={"code": exc.code().name, "retry_in_s": backoff.delay},
                )
            finally:
                stopper.cancel()
                call.cancel()
            if stop.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff.advance())
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)
        await self.client.close()
        self.journal.close()
        log.info("node stopped", extra={"holder": self.name})
        if refused is not None:
            raise refused


async def _until(call: grpc.aio.UnaryStreamCall, stopper: asyncio.Task):  # type: ignore[no-untyped-def]
    """Iterate a server stream, ending early when ``stopper`` completes."""
    iterator = call.__aiter__()
    while True:
        nxt = asyncio.ensure_future(iterator.__anext__())
        done, _ = await asyncio.wait({nxt, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if nxt not in done:
            nxt.cancel()
            return
        try:
            yield nxt.result()
        except StopAsyncIteration:
            return
