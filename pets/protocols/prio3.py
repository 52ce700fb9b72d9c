"""Prio3 in the service (issue 12): holders prove their vector valid, servers check jointly.

``protocol = "prio3"`` runs Prio3 (draft-irtf-cfrg-vdaf-20 §7,
:mod:`pets.vdaf`) with pets' per-slot-bounds circuit ``Prio3BoundedVec``
(docs/PRIO3.md) between the leader (aggregator 0) and one helper
(aggregator 1). Every query type the additive protocol answers compiles to
it: the plan fixes, per slot, the exact range ``[lo, hi]`` one holder's value
can take (:meth:`pets.query.QueryPlan.slot_bounds`: the clipping bounds times
``max_rows``, or one element's bounds for vectors), and the holder proves
``v - lo`` in ``[0, hi - lo]`` for every slot.

Halves:

* **holder** (:meth:`Prio3Protocol.contribute`): the measurement is the
  plan's vector offset by ``lo`` per slot; ``shard`` runs with the report
  nonce :func:`report_nonce` (fixed by query, holder and attempt, draft
  §7.1 / §9.2: the servers recompute it, never take it from the holder) and
  the context :func:`vdaf_context` (query id and fingerprint). The helper's
  share (seed and blind, draft §7.2.1) is expanded from one 32-byte *share
  key*, which travels like an additive seed: sealed to the helper with HPKE
  and signed by the holder (:mod:`pets.seal`), relayed by the leader. The
  payload the leader receives is ``public share || leader input share``.
* **leader** (:class:`Prio3Aggregate`, :meth:`Prio3Protocol.prepare_message`,
  :meth:`Prio3Protocol.prepare_verdicts`): checks the payload (length,
  canonical elements), runs ``verify_init`` (aggregator 0,
  :func:`leader_verify_init`) and relays its verifier share in Prepare;
  with the helper's verifier share it computes the verifier message
  (``verifier_shares_to_message``: the proof check) and finishes with
  ``verify_next`` (the joint-randomness check). Only then does the output
  share enter the running aggregate, a Field128 vector (``OUTPUT_LEN``
  elements) stored as bytes.
* **helper** (:class:`Prio3Checker`): checks the holder's certificate and
  signature and opens the share key (as for additive), runs ``verify_init``
  (aggregator 1), combines both verifier shares and ``verify_next``; it
  answers with its verifier share or the failed check. At Finalize it sums
  the output shares of exactly the contributor set (re-verifying any it did
  not keep, e.g. after a restart, from the stored leader verifier share and
  verifier message).
* **analyst** (:class:`_FieldSum`): adds the two Field128 aggregate shares
  (``unshard``), reads each sum as a signed value mod p (DP noise may be
  negative) and adds back ``n * lo`` per slot, where ``n`` is the number of
  contributors: the plan's integer vector.

Both servers run the Prio3 arithmetic on the verification workers of
:mod:`pets.vdaf.pool` (worker processes), never on their event loop or in its
threads, where it would hold the interpreter lock.

The verify key is fresh per query (:meth:`Prio3Protocol.new_verify_key`,
``secrets``), sent by the leader to the helper in RegisterQuery over their
mutually authenticated TLS channel, stored durably by both, erased when the
query ends; holders and analysts never see it.

Limits: one helper (two aggregators); an encoded measurement of at most
:data:`MAX_ENCODED_LENGTH` bits (sharding is pure Python: measured in
docs/ARCHITECTURE.md, "Prio3").
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np

from pets import lengthprefix
from pets.errors import InvalidInputError, InvalidProofError, PetsError, UnavailableError
from pets.protocols.additive import SeedOpener
from pets.protocols.base import (
    HelperChecker,
    HelperQueryContext,
    HelperSharingProtocol,
    HolderContribution,
    PrepareContext,
    SeedSealer,
    ShareCombiner,
)
from pets.query import QueryPlan
from pets.runtime.offload import offload
from pets.transport import wire
from pets.v1 import aggregation_pb2 as pb
from pets.vdaf import Field128, Prio3, VdafError, prio3_bounded_vec
from pets.vdaf import pool as vdaf_pool
from pets.vdaf.prio3 import NONCE_SIZE, LeaderShare, VerifyState

#: Aggregators: the leader (0) and one helper (1).
SHARES = 2
#: The largest encoded measurement (sum of the slots' bit lengths) a query may
#: have. Measured (pure Python, 2-core machine): 122,880 bits (8,192 slots of
#: 10 and 20 bits) take 3.2 s to prove and 0.68 s to verify on both servers, with
#: a 2 MB leader payload; 2^17 bits keeps one holder's proving near 3.5 s and one
#: report's verification under a second (docs/ARCHITECTURE.md, "Prio3").
MAX_ENCODED_LENGTH = 1 << 17
ATTEMPT = 0  # one report per holder and query: a refused one is never replaced

_NONCE_DOMAIN = b"pets/v1/prio3-nonce"
_CONTEXT_DOMAIN = b"pets/v1/prio3"
_SHARE_DOMAIN = b"pets/v1/prio3-helper-share"
_HOLDER_RAND_DOMAIN = b"pets/v1/prio3-holder-rand"


# --------------------------------------------------------------------------- shared helpers


def report_nonce(query_id: str, holder: str, attempt: int = ATTEMPT) -> bytes:
    """The report's nonce (``NONCE_SIZE`` bytes), fixed by query, holder and attempt.

    The draft requires a nonce unique per report and known to every
    aggregator (§7.1); deriving it means no server takes it from the holder:
    each recomputes it, so a report shards and verifies only as the report
    of that holder to that query.
    """
    digest = hashlib.sha256(
        _NONCE_DOMAIN
        + lengthprefix.encode(query_id.encode())
        + lengthprefix.encode(holder.encode())
        + attempt.to_bytes(4, "big")
    ).digest()
    return digest[:NONCE_SIZE]


def vdaf_context(query_id: str, fingerprint: bytes) -> bytes:
    """The draft's application context string (``ctx``): binds every report to its query."""
    return (
        _CONTEXT_DOMAIN
        + lengthprefix.encode(query_id.encode())
        + lengthprefix.encode(bytes(fingerprint))
    )


def helper_share(share_key: bytes) -> bytes:
    """The Prio3 helper input share (seed || blind, 64 bytes) expanded from the
    32-byte share key the holder seals to the helper."""
    seed = hashlib.sha256(_SHARE_DOMAIN + b"\x00seed" + share_key).digest()
    blind = hashlib.sha256(_SHARE_DOMAIN + b"\x01blind" + share_key).digest()
    return seed + blind


def slot_offsets(plan: QueryPlan) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(offsets, bounds)``: slot ``i`` of a holder is proved as ``v - offsets[i]``
    in ``[0, bounds[i]]`` (a bound of 0 is widened to 1: the circuit needs one bit)."""
    pairs = plan.slot_bounds()
    offsets = tuple(lo for lo, _ in pairs)
    bounds = tuple(max(1, hi - lo) for lo, hi in pairs)
    return offsets, bounds


@lru_cache(maxsize=32)
def _vdaf(bounds: tuple[int, ...]) -> Prio3:
    return prio3_bounded_vec(SHARES, list(bounds))


def vdaf_ref(vdaf: Prio3) -> vdaf_pool.VdafRef:
    """How a verification worker process rebuilds ``vdaf`` (the cached constructor and
    the circuit's bounds): what crosses the process boundary instead of the instance."""
    return (_vdaf, (tuple(vdaf.flp.valid.bounds),))  # type: ignore[attr-defined]


def vdaf_for(plan: QueryPlan) -> Prio3:
    """The query's Prio3BoundedVec (two aggregators, Field128, one proof)."""
    _, bounds = slot_offsets(plan)
    encoded = sum(b.bit_length() for b in bounds)
    if encoded > MAX_ENCODED_LENGTH:
        raise InvalidInputError(
            f"this query's vector encodes to {encoded} bits; prio3 takes at most "
            f"{MAX_ENCODED_LENGTH} (fewer groups, narrower bounds, or another protocol)"
        )
    return _vdaf(bounds)


# --------------------------------------------------------------------------- holder hooks


@dataclass(frozen=True)
class Tamper:
    """Ways a *dishonest* holder deviates (tests and the demo only; None: honest).

    ``encoded`` rewrites the encoded measurement before proving; ``payload``
    the bytes sent to the leader; ``sealed`` the sealed helper shares.
    """

    encoded: Callable[[list[int]], list[int]] | None = None
    payload: Callable[[bytes], bytes] | None = None
    sealed: Callable[[list[pb.SealedSeed]], list[pb.SealedSeed]] | None = None


# --------------------------------------------------------------------------- leader


@dataclass
class Prio3Report:
    """One contribution on the leader, from validation to commit.

    ``input_share`` is the leader's encoded input share, checked (exact length,
    canonical elements) but not decoded: ``verify_init`` decodes it where it runs
    (a worker process, see :func:`leader_verify_init`).
    """

    vdaf: Prio3
    public_share: bytes
    parts: list[bytes] | None
    input_share: bytes
    state: VerifyState | None = None
    verifier_share: bytes = b""
    vdaf_ctx: bytes = b""
    out_share: list[int] | None = None  # set once both servers' checks passed


class Prio3Aggregate:
    """The leader's running sum of verified output shares (Field128, mod p)."""

    def __init__(
        self, vdaf: Prio3, data: bytes | None = None, *, count: int = 0, max_contributions: int
    ) -> None:
        self.vdaf = vdaf
        self.count = count
        self.max_contributions = max_contributions
        self.public_bytes = vdaf.SEED_SIZE * vdaf.SHARES
        self.payload_bytes = self.public_bytes + vdaf.input_share_len(0)
        if data is None:
            self.total = vdaf.agg_init()
        else:
            self.total = vdaf.decode_agg_share(bytes(data), "aggregate")

    def validate(self, payload: bytes | bytearray | list[bytes]) -> Prio3Report:
        """Decode ``public share || leader input share`` (exact length, canonical
        elements); raises InvalidInputError naming the failed step."""
        data = b"".join(payload) if isinstance(payload, list) else bytes(payload)
        if len(data) != self.payload_bytes:
            raise InvalidInputError(
                f"prio3 payload has {len(data)} bytes, expected {self.payload_bytes}"
            )
        public = data[: self.public_bytes]
        parts = self.vdaf.decode_public_share(public)
        share = self.vdaf.check_input_share(0, data[self.public_bytes :])
        return Prio3Report(self.vdaf, public, parts, share)

    def add(self, parsed: object) -> None:
        if not isinstance(parsed, Prio3Report) or parsed.out_share is None:
            raise InvalidInputError("a prio3 contribution is added only once it is verified")
        if self.count >= self.max_contributions:
            raise InvalidInputError(
                f"query already has {self.count} contributions, the most whose sum provably "
                "decodes exactly"
            )
        self.total = self.vdaf.agg_update(self.total, parsed.out_share)
        self.count += 1

    def merge(self, other: object) -> None:
        """Add another shard's output-share sum (Field128, element-wise)."""
        if not isinstance(other, Prio3Aggregate):
            raise InvalidInputError("only a shard of the same prio3 query merges")
        self.total = self.vdaf.merge([self.total, other.total])
        self.count += other.count

    def to_bytes(self) -> bytes:
        return self.vdaf.encode_agg_share(self.total)


class _InitBatcher:
    """The leader's ``verify_init`` jobs, coalesced on their way to the worker pool.

    A contribution's job is queued; while fewer batches than workers are in
    flight, everything queued goes out as one batch per (instance, key, context),
    so a burst of arrivals costs a few process round trips, not one each.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queued: list[tuple[tuple[Any, ...], vdaf_pool.InitItem, asyncio.Future[Any]]] = []
        self.in_flight = 0

    def submit(self, group: tuple[Any, ...], item: vdaf_pool.InitItem) -> asyncio.Future[Any]:
        future = self.loop.create_future()
        self.queued.append((group, item, future))
        if self.in_flight < max(1, vdaf_pool.worker_count()):
            self._flush()
        return future

    def _flush(self) -> None:
        queued, self.queued = self.queued, []
        groups: dict[tuple[Any, ...], list[tuple[vdaf_pool.InitItem, asyncio.Future[Any]]]] = {}
        for group, item, future in queued:
            groups.setdefault(group, []).append((item, future))
        pool = vdaf_pool.pool_for(len(queued))  # None (a trickle): the default thread pool
        free = max(1, vdaf_pool.worker_count() - self.in_flight) if pool is not None else 1
        for group, entries in groups.items():
            # Spread a burst over the idle workers (one job each).
            step = -(-len(entries) // free)
            for start in range(0, len(entries), step):
                part = entries[start : start + step]
                self.in_flight += 1
                ref, key, ctx = group
                items = [item for item, _ in part]
                fn = vdaf_pool.verify_init_encoded
                try:
                    job = self.loop.run_in_executor(pool, fn, ref, key, ctx, 0, items)
                except (BrokenProcessPool, RuntimeError):  # broken or shut down: a thread
                    vdaf_pool.discard_broken()
                    job = self.loop.run_in_executor(None, fn, ref, key, ctx, 0, items)
                job.add_done_callback(lambda done, e=part: self._done(done, e))  # type: ignore[misc]

    def _done(
        self,
        done: asyncio.Future[list[vdaf_pool.InitResult]],
        entries: list[tuple[vdaf_pool.InitItem, asyncio.Future[Any]]],
    ) -> None:
        self.in_flight -= 1
        error = done.exception() if not done.cancelled() else asyncio.CancelledError()
        results: list[Any] = [error] * len(entries) if error else done.result()
        for (_, future), result in zip(entries, results, strict=True):
            if not future.done():
                future.set_result(result)
        if self.queued and self.in_flight < max(1, vdaf_pool.worker_count()):
            self._flush()


_batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _InitBatcher] = (
    weakref.WeakKeyDictionary()
)


async def leader_verify_init(report: Prio3Report, holder: str, context: PrepareContext) -> None:
    """The leader's ``verify_init`` (aggregator 0) of one report on the verification
    workers (:mod:`pets.vdaf.pool`), off the event loop and its interpreter lock;
    sets the report's verify state and verifier share, or raises the VdafError."""
    loop = asyncio.get_running_loop()
    batcher = _batchers.get(loop)
    if batcher is None:
        batcher = _batchers[loop] = _InitBatcher(loop)
    ctx = vdaf_context(context.query_id, context.fingerprint)
    item = (report_nonce(context.query_id, holder), report.public_share, report.input_share)
    result = await batcher.submit((vdaf_ref(report.vdaf), context.verify_key, ctx), item)
    if isinstance(result, BaseException):
        if isinstance(result, VdafError):
            raise result
        if not isinstance(result, BrokenProcessPool):
            raise result
        # A worker died: verify here instead (same result); the next job starts a new pool.
        vdaf_pool.discard_broken()
        (result,) = await asyncio.to_thread(
            vdaf_pool.verify_init_encoded, vdaf_ref(report.vdaf), context.verify_key, ctx, 0, [item]
        )
        if isinstance(result, VdafError):
            raise result
    verifier_share, state = result
    report.vdaf_ctx = ctx
    report.verifier_share = verifier_share
    report.state = report.vdaf.decode_verify_state(state)


# --------------------------------------------------------------------------- helper


@dataclass
class Prio3Checker:
    """The helper's half for one query: open the share key, verify, sum.

    ``accepted`` maps holder -> (sealed share key, encoded output share).
    ``verifier_shares`` collects this helper's verifier share per holder
    checked by the last :meth:`check`, for the Prepare answer.
    """

    opener: SeedOpener
    vdaf: Prio3 | None = None  # set with the key (keyed_checker)
    verify_key: bytes = b""
    aggregator_id: int = 1
    verifier_shares: dict[str, bytes] = field(default_factory=dict)

    @property
    def ctx(self) -> bytes:
        return vdaf_context(self.opener.query_id, self.opener.fingerprint)

    def _verify(
        self, item: pb.SealedContribution, *, during: tuple[datetime, datetime] | None = None
    ) -> tuple[bytes, list[int], bytes]:
        """(sealed share key, output share, own verifier share) of one contribution,
        fully verified; raises a PetsError naming the failed check."""
        vdaf = self.vdaf
        if vdaf is None or len(self.verify_key) != vdaf.VERIFY_KEY_SIZE:
            raise UnavailableError(f"helper has no verify key for {self.opener.query_id}")
        sealed, key = self.opener.open(item, during=during)
        ctx = self.ctx
        nonce = report_nonce(self.opener.query_id, item.holder)
        state, own = vdaf.verify_init(
            self.verify_key,
            ctx,
            self.aggregator_id,
            nonce,
            bytes(item.public_share),
            helper_share(key),
        )
        message = vdaf.verifier_shares_to_message(ctx, [bytes(item.verifier_share), own])
        if item.verifier_message and not hmac.compare_digest(message, bytes(item.verifier_message)):
            raise InvalidProofError("verify_next: joint randomness check failed")
        return sealed, vdaf.verify_next(ctx, state, message), own

    def check(
        self,
        items: Sequence[pb.SealedContribution],
        accepted: dict[str, tuple[bytes, bytes]] | None = None,
    ) -> tuple[dict[str, tuple[bytes, bytes]], list[tuple[str, str]]]:
        """Verify every item (a re-sent one again: the leader needs the verifier
        share); ``({holder: (sealed, output share)}, [(holder, failed check)])``.

        Runs in a worker thread: the certificate, signature and HPKE checks here,
        then the batch's Prio3 verification split over the verification workers
        (:func:`pets.vdaf.pool.run_split`; the same checks as :meth:`_verify`)."""
        vdaf = self.vdaf
        if vdaf is None or len(self.verify_key) != vdaf.VERIFY_KEY_SIZE:
            reason = str(UnavailableError(f"helper has no verify key for {self.opener.query_id}"))
            return {}, [(item.holder, reason) for item in items]
        refused: list[tuple[str, str]] = []
        opened: list[tuple[str, bytes]] = []
        jobs: list[vdaf_pool.FullItem] = []
        submitted: list[vdaf_pool.Pending] = []
        ref, ctx = vdaf_ref(vdaf), self.ctx
        # Chunks go to the workers as soon as they are opened, so the workers verify
        # while this thread opens the rest (about two chunks per worker).
        chunk = max(8, -(-len(items) // (2 * max(1, vdaf_pool.worker_count()))))

        pool = vdaf_pool.pool_for(len(items))  # None for a small batch: this thread

        def flush() -> None:
            submitted.append(
                vdaf_pool.submit(
                    vdaf_pool.verify_encoded,
                    ref,
                    self.verify_key,
                    ctx,
                    self.aggregator_id,
                    jobs,
                    pool,
                )
            )
            jobs.clear()

        for item in items:
            try:
                sealed, key = self.opener.open(item)
            except PetsError as exc:
                refused.append((item.holder, str(exc)))
                continue
            opened.append((item.holder, sealed))
            nonce = report_nonce(self.opener.query_id, item.holder)
            jobs.append(
                (
                    nonce,
                    bytes(item.public_share),
                    helper_share(key),
                    [bytes(item.verifier_share)],
                    bytes(item.verifier_message),
                )
            )
            if len(jobs) >= chunk:
                flush()
        if jobs:
            flush()
        results = [result for pending in submitted for result in pending.result()]
        ok: dict[str, tuple[bytes, bytes]] = {}
        for (holder, sealed), result in zip(opened, results, strict=True):
            if isinstance(result, VdafError):
                refused.append((holder, str(result)))
                continue
            out, own = result
            ok[holder] = (sealed, out)
            self.verifier_shares[holder] = own
        return ok, refused

    def finalise(
        self,
        items: Sequence[pb.SealedContribution],
        accepted: dict[str, tuple[bytes, bytes]] | None = None,
    ) -> bytes:
        """The helper's aggregate share over exactly ``items`` (encoded Field128)."""
        accepted = accepted or {}
        now = datetime.now(UTC)
        opened_at = datetime.fromtimestamp(self.opener.created, UTC)
        during = (
            min(opened_at, now),
            min(datetime.fromtimestamp(self.opener.deadline, UTC), now),
        )
        vdaf = self.vdaf
        if vdaf is None:
            raise UnavailableError(f"helper has no verify key for {self.opener.query_id}")
        outs = []
        for item in items:
            prior = accepted.get(item.holder)
            if prior is not None and _same_sealed(prior, item):
                outs.append(vdaf.decode_agg_share(prior[1], "aggregate"))
            else:  # not kept (a restart): verified again from what the leader stored
                outs.append(self._verify(item, during=during)[1])
        return vdaf.encode_agg_share(vdaf.aggregate(outs))


def _same_sealed(prior: tuple[bytes, bytes], item: pb.SealedContribution) -> bool:
    return len(item.seeds) == 1 and hmac.compare_digest(prior[0], bytes(item.seeds[0].sealed))


# --------------------------------------------------------------------------- analyst


class _FieldSum(ShareCombiner):
    """Adds the servers' Field128 aggregate shares and removes the slot offsets."""

    def __init__(self, status: pb.QueryStatus, plan: QueryPlan) -> None:
        self._status = status
        self._plan = plan
        self._vdaf = vdaf_for(plan)
        self._shares: dict[str, wire.ChunkAssembler] = {}

    def sink(self, server: str, header: pb.AggregateHeader) -> Callable[[bytes | memoryview], None]:
        expected = self._status.vector_length * Field128.ENCODED_SIZE
        assembler = self._shares[server] = wire.ChunkAssembler(expected)
        return assembler.add  # type: ignore[return-value]

    def total(self, headers: Sequence[pb.AggregateHeader]) -> list[int]:
        if len({h.contributors for h in headers}) != 1:
            raise PetsError(
                f"servers disagree on the number of contributors of {self._status.query_id}; "
                "not decoding"
            )
        n = headers[0].contributors
        shares = [bytes(a.finish()) for a in self._shares.values()]
        vdaf = self._vdaf
        agg = vdaf.merge([vdaf.decode_agg_share(s) for s in shares])
        p = Field128.MODULUS
        offsets, _ = slot_offsets(self._plan)
        signed = [x - p if x > p // 2 else x for x in agg]
        return [s + n * lo for s, lo in zip(signed, offsets, strict=True)]


# --------------------------------------------------------------------------- the protocol


class Prio3Protocol(HelperSharingProtocol):
    """Prio3BoundedVec between the leader and one helper (see the module docstring)."""

    name: ClassVar[str] = "prio3"
    wire_id: ClassVar[pb.Protocol] = pb.PROTOCOL_PRIO3
    uses_helpers: ClassVar[bool] = True
    helper_count: ClassVar[int | None] = SHARES - 1  # a two-party VDAF: one helper
    sealed_what: ClassVar[str] = "share key"
    prepares: ClassVar[bool] = True
    spec_signed: ClassVar[bool] = False
    verifies: ClassVar[bool] = True
    supports_dp: ClassVar[bool] = True

    def __init__(self, tamper: Tamper | None = None) -> None:
        self.tamper = tamper

    # -- analyst
    def share_servers(self, status: pb.QueryStatus) -> list[str]:
        return ["leader", *status.helpers]

    def share_bytes(self, status: pb.QueryStatus) -> int:
        return status.vector_length * Field128.ENCODED_SIZE

    def combiner(self, status: pb.QueryStatus, plan: QueryPlan, private_key: Any) -> _FieldSum:
        return _FieldSum(status, plan)

    # -- holder (holder_refusal: HelperSharingProtocol's, with exactly helper_count helpers)
    async def contribute(
        self,
        ann: pb.QueryAnnouncement,
        plan: QueryPlan,
        vector: np.ndarray,
        *,
        holder: str,
        seed_key: bytes | None,
        sealer: SeedSealer,
    ) -> HolderContribution:
        """Shard ``vector`` (the plan's int64 vector) into a Prio3 report: the leader's
        payload and the helper's share key sealed. With ``seed_key`` every random
        input is derived (from the key, the query, the holder and the vector), so a
        re-send is byte-identical; otherwise fresh."""
        if vector.shape != (ann.vector_length,) or plan.length != ann.vector_length:
            raise InvalidInputError(
                f"query {ann.query_id} takes {ann.vector_length} values, got {vector.shape}"
            )
        if len(ann.helpers) != SHARES - 1:
            raise InvalidInputError("a prio3 query has exactly one helper")
        offsets, bounds = slot_offsets(plan)
        vdaf = vdaf_for(plan)
        measurement = [int(v) - lo for v, lo in zip(vector.tolist(), offsets, strict=True)]
        if self.tamper is None or self.tamper.encoded is None:
            for i, (m, b) in enumerate(zip(measurement, bounds, strict=True)):
                if not 0 <= m <= b:
                    raise InvalidInputError(f"slot {i} of the vector is outside its bounds")
        nonce = report_nonce(ann.query_id, holder)
        ctx = vdaf_context(ann.query_id, bytes(ann.fingerprint))
        if seed_key is not None:
            x_digest = hashlib.sha256(repr(measurement).encode()).digest()
            base = hmac.new(
                seed_key,
                _HOLDER_RAND_DOMAIN
                + lengthprefix.encode(ann.query_id.encode())
                + lengthprefix.encode(bytes(ann.fingerprint))
                + lengthprefix.encode(holder.encode())
                + x_digest,
                hashlib.sha256,
            ).digest()
            share_key = hashlib.sha256(base + b"share-key").digest()
            leader_rand = (
                hashlib.sha256(base + b"leader-blind").digest()
                + hashlib.sha256(base + b"prove-seed").digest()
            )
        else:
            share_key = secrets.token_bytes(32)
            leader_rand = secrets.token_bytes(64)
        sealed = sealer(ann, [share_key])  # before the proving work: a bad key fails fast
        rand = helper_share(share_key) + leader_rand

        def shard() -> tuple[bytes, list[bytes]]:
            if self.tamper is not None and self.tamper.encoded is not None:
                encoded = self.tamper.encoded(vdaf.flp.valid.encode(measurement))
                return vdaf.shard_encoded(ctx, encoded, nonce, rand)
            return vdaf.shard(ctx, measurement, nonce, rand)

        public, input_shares = await offload(1 << 20, shard)
        payload = public + input_shares[0]
        if self.tamper is not None:
            if self.tamper.payload is not None:
                payload = self.tamper.payload(payload)
            if self.tamper.sealed is not None:
                sealed = self.tamper.sealed(list(sealed))
        return HolderContribution(payload=payload, digest=wire.digest(payload), sealed_seeds=sealed)

    # -- leader
    def admit(self, spec: pb.QuerySpec, plan: QueryPlan, min_holders: int) -> int:
        if spec.paillier_public_key:
            raise InvalidInputError("paillier_public_key is only for PROTOCOL_PAILLIER queries")
        vdaf_for(plan)  # the length cap
        if plan.max_holders() < min_holders:
            raise InvalidInputError(
                f"the sum of {min_holders} holders' vectors for this query may exceed 64 bits "
                f"(at most {plan.max_holders()} fit); narrow the bounds with a clip"
            )
        return plan.length

    def new_verify_key(self, helpers: int) -> bytes:
        if helpers != SHARES - 1:
            raise InvalidInputError(
                f"prio3 runs between the leader and exactly one helper; this leader has {helpers}"
            )
        return secrets.token_bytes(32)

    def circuit_bounds(self, plan: QueryPlan) -> list[int]:
        return list(slot_offsets(plan)[1])

    def payload_sink(self, expected_bytes: int) -> wire.ChunkAssembler:
        return wire.ChunkAssembler(expected_bytes, sha256=True)

    def running_aggregate(
        self,
        spec: pb.QuerySpec,
        length: int,
        plan: QueryPlan,
        data: bytes | None = None,
        *,
        count: int = 0,
    ) -> Prio3Aggregate:
        return Prio3Aggregate(
            vdaf_for(plan), data, count=count, max_contributions=plan.max_holders()
        )

    def add_noise(
        self, spec: pb.QuerySpec, plan: QueryPlan, share: bytes | memoryview, noise: np.ndarray
    ) -> bytes:
        """This server's aggregate share plus its DP noise, in Field128 (mod p)."""
        vdaf = vdaf_for(plan)
        agg = vdaf.decode_agg_share(bytes(share), "aggregate")
        if noise.shape != (len(agg),):
            raise InvalidInputError(f"noise has shape {noise.shape}, the share {len(agg)} slots")
        p = Field128.MODULUS
        return vdaf.encode_agg_share(
            [(a + int(e)) % p for a, e in zip(agg, noise.tolist(), strict=True)]
        )

    def noise_modulus(self, status: pb.QueryStatus) -> int:
        return int(Field128.MODULUS)

    # -- Prepare
    def prepare_message(
        self,
        holder: str,
        certificate: bytes,
        seeds: Sequence[pb.SealedSeed],
        parsed: object,
        *,
        context: PrepareContext | None = None,
    ) -> pb.SealedContribution:
        """The leader's ``verify_init`` (aggregator 0); its verifier share goes to the helper."""
        if not isinstance(parsed, Prio3Report) or context is None:
            raise InvalidInputError("a prio3 contribution needs its report and the query's key")
        if parsed.state is None:  # not yet verified by leader_verify_init: here, in-thread
            vdaf = _vdaf_of_report(parsed)
            ctx = vdaf_context(context.query_id, context.fingerprint)
            nonce = report_nonce(context.query_id, holder)
            share = vdaf.decode_input_share(0, parsed.input_share)
            assert isinstance(share, LeaderShare)
            parsed.vdaf_ctx = ctx
            parsed.state, parsed.verifier_share = vdaf.verify_init_decoded(
                context.verify_key, ctx, 0, nonce, parsed.parts, share
            )
        return pb.SealedContribution(
            holder=holder,
            certificate=certificate,
            seeds=seeds,
            public_share=parsed.public_share,
            verifier_share=parsed.verifier_share,
        )

    async def leader_verify_init(
        self, holder: str, parsed: object, context: PrepareContext
    ) -> None:
        """The leader's ``verify_init`` off the event loop, on the verification workers
        (:func:`leader_verify_init`); :meth:`prepare_message` then only builds the message.
        Raises the VdafError of a refused report."""
        if not isinstance(parsed, Prio3Report):
            raise InvalidInputError("a prio3 contribution needs its report")
        await leader_verify_init(parsed, holder, context)

    def prepare_verdicts(
        self,
        query_id: str,
        holders: Sequence[str],
        answers: Mapping[str, pb.PrepareResponse | BaseException],
        *,
        parsed: Mapping[str, object] | None = None,
        records: Mapping[str, pb.SealedContribution] | None = None,
    ) -> dict[str, PetsError]:
        """The helper's verdicts, then the leader's own check: combine the verifier
        shares (the proof check), ``verify_next`` (the joint-randomness check);
        an accepted report gets its output share and the stored record the
        verifier message."""
        errors = super().prepare_verdicts(query_id, holders, answers)
        parsed = parsed or {}
        records = records or {}
        shares: dict[str, bytes] = {}
        for outcome in answers.values():
            if isinstance(outcome, pb.PrepareResponse):
                shares.update({v.holder: bytes(v.share) for v in outcome.verifier_shares})
        # The proof checks (verifier_shares_to_message) of the batch run on the
        # verification workers, grouped by instance and context (one query: one group).
        groups: dict[tuple[Any, bytes], list[tuple[str, Prio3Report, bytes]]] = {}
        for holder in holders:
            if holder in errors:
                continue
            report = parsed.get(holder)
            helper_vs = shares.get(holder)
            if not isinstance(report, Prio3Report) or report.state is None or helper_vs is None:
                errors[holder] = UnavailableError("helper gave no verifier share; retry")
                continue
            group = (vdaf_ref(_vdaf_of_report(report)), report.vdaf_ctx)
            groups.setdefault(group, []).append((holder, report, helper_vs))
        for (ref, ctx), entries in groups.items():
            messages = vdaf_pool.run_split(
                vdaf_pool.messages_encoded,
                ref,
                b"",
                ctx,
                0,
                [[report.verifier_share, helper_vs] for _, report, helper_vs in entries],
            )
            for (holder, report, _), message in zip(entries, messages, strict=True):
                try:
                    if isinstance(message, VdafError):
                        raise message
                    vdaf = _vdaf_of_report(report)
                    assert report.state is not None
                    report.out_share = vdaf.verify_next(ctx, report.state, message)
                except VdafError as exc:  # names the draft step and check, never a value
                    errors[holder] = exc
                    continue
                record = records.get(holder)
                if record is not None:
                    record.verifier_message = message
        return errors

    # -- helper
    def helper_checker(self, context: HelperQueryContext) -> Prio3Checker:
        """Without the key: :meth:`keyed_checker` completes it."""
        return Prio3Checker(SeedOpener.for_query(context))

    def keyed_checker(
        self,
        checker: HelperChecker,
        verify_key: bytes,
        aggregator_id: int,
        bounds: Sequence[int],
    ) -> Prio3Checker:
        if not isinstance(checker, Prio3Checker):
            raise InvalidInputError("not a prio3 checker")
        return replace(
            checker,
            vdaf=checked_vdaf(bounds, checker.opener.vector_length),
            verify_key=verify_key,
            aggregator_id=aggregator_id,
        )


def checked_vdaf(bounds: Sequence[int], vector_length: int) -> Prio3:
    """The circuit for ``bounds`` as a helper receives them (checked: one bound >= 1
    per slot, within the length cap)."""
    if len(bounds) != vector_length or any(int(b) < 1 for b in bounds):
        raise InvalidInputError(f"a prio3 query needs {vector_length} slot bounds, each >= 1")
    if sum(int(b).bit_length() for b in bounds) > MAX_ENCODED_LENGTH:
        raise InvalidInputError(f"prio3 takes at most {MAX_ENCODED_LENGTH} encoded bits")
    return _vdaf(tuple(int(b) for b in bounds))


def _vdaf_of_report(report: Prio3Report) -> Prio3:
    """The Prio3 instance a report was validated by (that of its query's aggregate)."""
    return report.vdaf
