"""Prio3 verification on a process-wide pool of worker processes.

A server verifies Prio3 reports in pure Python (draft-irtf-cfrg-vdaf-20
§7.2.2: ``verify_init``, ``verifier_shares_to_message``, ``verify_next``).
Run in a thread, that work holds the interpreter lock and starves the
server's event loop (every network event then waits for a GIL turn, up to
the 5 ms switch interval each), so a server cannot overlap its own
verification with the network and its peer; it also uses one core at most.
Run here, it goes to worker processes (``forkserver``, safe in a threaded
gRPC server) and the event loop stays free.

Jobs cross the process boundary as bytes only: the instance is named by a
picklable ``(factory, args)`` reference (for example the service's cached
``Prio3BoundedVec`` constructor and its bounds) and rebuilt once per worker,
the reports are the draft's encoded messages, and the results are encoded
verifier shares and verify states. A refused report comes back as its
:class:`~pets.vdaf.errors.VdafError` (which pickles with its step), never as
a failed batch.

``PETS_VDAF_WORKERS`` sets the number of worker processes (default: the
number of CPUs; ``0`` verifies in the calling thread). If the pool cannot be
started or breaks, the work runs in the calling thread: the results are the
same either way. The pool is the module's one piece of global state; besides
its pipes, the only I/O is each worker reading its owner's ``/proc`` entry
once a second (so that it exits with its owner).
"""

from __future__ import annotations

import functools
import hmac
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from pets.vdaf.errors import VdafError, VdafVerifyError
from pets.vdaf.prio3 import Prio3

log = logging.getLogger(__name__)

VdafRef = tuple[Callable[..., Prio3], tuple[Any, ...]]
"""A picklable way to build a :class:`Prio3` instance: ``factory(*args)``."""

#: One report for :func:`verify_init_encoded`: (nonce, public share, input share).
InitItem = tuple[bytes, bytes, bytes]
#: ``verify_init`` result: (encoded verifier share, encoded verify state), or the refusal.
InitResult = tuple[bytes, bytes] | VdafError
#: One report for :func:`verify_encoded`: (nonce, public share, input share, the other
#: aggregators' verifier shares in aggregator order without this one's, and the
#: verifier message already computed by another aggregator, or ``b""``).
FullItem = tuple[bytes, bytes, bytes, Sequence[bytes], bytes]
#: Full verification result: (encoded output share, own encoded verifier share), or the refusal.
FullResult = tuple[bytes, bytes] | VdafError
#: A chunk job run on a worker: ``fn(vdaf ref, verify key, ctx, aggregator id, items)``.
ChunkFn = Callable[[VdafRef, bytes, bytes, int, Sequence[Any]], list[Any]]

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_failed = False


def worker_count() -> int:
    """Worker processes of the shared pool (``PETS_VDAF_WORKERS``; default: CPUs)."""
    return _worker_count(os.environ.get("PETS_VDAF_WORKERS", ""))


@functools.lru_cache(maxsize=4)
def _worker_count(raw: str) -> int:
    try:
        n = int(raw) if raw else (os.cpu_count() or 1)
    except ValueError:
        n = os.cpu_count() or 1
    return max(0, min(n, 32))


def shared_pool() -> Executor | None:
    """The process-wide verification pool (started on first use), or None to run inline."""
    global _pool, _pool_failed
    if _pool is not None or _pool_failed:
        return _pool
    with _lock:
        if _pool is None and not _pool_failed:
            workers = worker_count()
            if workers == 0:
                _pool_failed = True
                return None
            try:
                ctx = multiprocessing.get_context("forkserver")
                _pool = ProcessPoolExecutor(
                    max_workers=workers,
                    mp_context=ctx,
                    initializer=watch_owner,
                    initargs=(os.getpid(), start_time(os.getpid())),
                )
            except (OSError, ValueError, RuntimeError):
                log.warning("cannot start verification workers; verifying in-process")
                _pool_failed = True
        return _pool


#: A batch smaller than this runs in the calling thread while the pool is not running;
#: the first batch at least this large starts it, and every batch uses it from then on.
#: A server that only ever sees a trickle of reports (a test cluster, a small query)
#: then never pays for the workers' start-up (about a second of CPU for two workers),
#: and one under load moves its verification off the interpreter lock.
POOL_MIN_ITEMS = 16


def pool_for(items: int) -> Executor | None:
    """The pool to verify a batch of ``items`` reports on, or None for the calling thread
    (see :data:`POOL_MIN_ITEMS`)."""
    if _pool is not None:
        return _pool
    return shared_pool() if items >= POOL_MIN_ITEMS else None


def warm() -> None:
    """Start the pool's workers now (a no-op job each), so the first batch does not wait."""
    pool = shared_pool()
    if pool is None:
        return
    try:
        for _ in range(worker_count()):
            pool.submit(_noop)
    except (BrokenProcessPool, RuntimeError):
        _discard(pool)


def discard_broken() -> None:
    """Forget the shared pool after a worker died; the next call starts a fresh one."""
    pool = _pool
    if pool is not None:
        _discard(pool)


def _noop() -> None:
    return None


def start_time(pid: int) -> str:
    """A process's start time (Linux ``/proc``; empty elsewhere), so a reused pid is
    not mistaken for the owner."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return ""


def _owner_alive(pid: int, start: str) -> bool:
    """Is the owner still running (not exited, not a zombie awaiting its reaper, not
    a new process under a reused pid)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return not start  # no /proc: trust kill(0); with /proc: the owner is gone
    return fields[0] != "Z" and fields[19] == start


def watch_owner(pid: int, start: str) -> None:
    """Worker initializer: exit when the process that owns the pool is gone.

    A worker holds the write ends of its own call queue and of the forkserver's
    liveness pipe, so if the owner dies without shutting the pool down (SIGKILL,
    SIGTERM without a handler) nothing would ever tell the workers, the
    forkserver or the resource tracker to exit. A daemon thread checks once a
    second; the forkserver and the tracker follow once the workers are gone.
    """

    def watch() -> None:
        while _owner_alive(pid, start):
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="pets-vdaf-owner-watch", daemon=True).start()


def _discard(pool: Executor) -> None:
    """Forget a broken pool; the next call starts a fresh one."""
    global _pool
    with _lock:
        if _pool is pool:
            _pool = None
    pool.shutdown(wait=False, cancel_futures=True)


@functools.lru_cache(maxsize=32)
def _instance(ref: VdafRef) -> Prio3:
    factory, args = ref
    return factory(*args)


# --------------------------------------------------------------------------- worker functions


def verify_init_encoded(
    ref: VdafRef, verify_key: bytes, ctx: bytes, agg_id: int, items: Sequence[InitItem]
) -> list[InitResult]:
    """``verify_init`` for each report: (verifier share, encoded verify state) or its error."""
    vdaf = _instance(ref)
    out: list[InitResult] = []
    for nonce, public, share in items:
        try:
            state, vshare = vdaf.verify_init(verify_key, ctx, agg_id, nonce, public, share)
            out.append((vshare, vdaf.encode_verify_state(state)))
        except VdafError as exc:
            out.append(exc)
    return out


def verify_encoded(
    ref: VdafRef, verify_key: bytes, ctx: bytes, agg_id: int, items: Sequence[FullItem]
) -> list[FullResult]:
    """The whole verification of each report on aggregator ``agg_id``, given the
    other aggregators' verifier shares: ``verify_init``, ``verifier_shares_to_message``
    (the proof check), the comparison with an already computed verifier message,
    and ``verify_next`` (the joint-randomness check). (output share, own verifier
    share) or the refusal naming its step."""
    vdaf = _instance(ref)
    out: list[FullResult] = []
    for nonce, public, share, others, known_message in items:
        try:
            state, own = vdaf.verify_init(verify_key, ctx, agg_id, nonce, public, share)
            shares = list(others)
            shares.insert(agg_id, own)
            message = vdaf.verifier_shares_to_message(ctx, shares)
            if known_message and not hmac.compare_digest(message, known_message):
                raise VdafVerifyError("verify_next", "joint randomness check failed")
            out_share = vdaf.verify_next(ctx, state, message)
            out.append((vdaf.encode_out_share(out_share), own))
        except VdafError as exc:
            out.append(exc)
    return out


def messages_encoded(
    ref: VdafRef, verify_key: bytes, ctx: bytes, agg_id: int, items: Sequence[Sequence[bytes]]
) -> list[bytes | VdafError]:
    """``verifier_shares_to_message`` for each report (``items[i]``: every aggregator's
    verifier share, in order); the verifier message or the refusal. ``verify_key``
    and ``agg_id`` are unused (the signature of :func:`run_split`'s functions)."""
    vdaf = _instance(ref)
    out: list[bytes | VdafError] = []
    for shares in items:
        try:
            out.append(vdaf.verifier_shares_to_message(ctx, list(shares)))
        except VdafError as exc:
            out.append(exc)
    return out


# --------------------------------------------------------------------------- callers


def _split(items: Sequence[Any], parts: int) -> list[Sequence[Any]]:
    step = max(1, -(-len(items) // max(1, parts)))
    return [items[i : i + step] for i in range(0, len(items), step)]


class Pending:
    """One submitted chunk of work; :meth:`result` waits for it (inline if the
    pool broke or there is none: the same results either way)."""

    def __init__(
        self,
        fn: ChunkFn,
        args: tuple[VdafRef, bytes, bytes, int, list[Any]],
        pool: Executor | None,
    ) -> None:
        self._fn, self._args = fn, args
        self._future: Future[list[Any]] | None = None
        if pool is not None:
            try:
                self._future = pool.submit(fn, *args)
            except (BrokenProcessPool, RuntimeError):
                _discard(pool)

    def result(self) -> list[Any]:
        if self._future is not None:
            try:
                return self._future.result()
            except BrokenProcessPool:
                log.warning("a verification worker died; verifying in-process")
                discard_broken()
        return self._fn(*self._args)


def submit(
    fn: ChunkFn,
    ref: VdafRef,
    verify_key: bytes,
    ctx: bytes,
    agg_id: int,
    items: Sequence[Any],
    pool: Executor | None,
) -> Pending:
    """Start ``fn`` over ``items`` on ``pool`` now (for a caller that prepares the next
    chunk meanwhile; ``None``: run at :meth:`Pending.result`, in the calling thread)."""
    return Pending(fn, (ref, verify_key, ctx, agg_id, list(items)), pool)


def run_split(
    fn: ChunkFn,
    ref: VdafRef,
    verify_key: bytes,
    ctx: bytes,
    agg_id: int,
    items: Sequence[Any],
) -> list[Any]:
    """``fn`` over ``items``, split evenly over the pool's workers; blocks (call it
    from a worker thread). Inline when there is no pool for this many items
    (:func:`pool_for`) or the pool breaks."""
    if not items:
        return []
    pool = pool_for(len(items))
    if pool is not None:
        try:
            futures: list[Future[list[Any]]] = [
                pool.submit(fn, ref, verify_key, ctx, agg_id, list(part))
                for part in _split(items, worker_count())
            ]
            out: list[Any] = []
            for f in futures:
                out += f.result()
            return out
        except BrokenProcessPool:
            log.warning("a verification worker died; verifying in-process")
            _discard(pool)
    return fn(ref, verify_key, ctx, agg_id, items)
