"""A data holder's answer to a linked query (issue 16; docs/LINKAGE.md, "Service").

The node calls :func:`answer_linked` for a query whose plan is linked; it
talks to the leader only:

1. the holder's side of the query (the dataset it holds among the plan's
   sides), its persons (:func:`pets.linkage.persons.evaluate_persons`: the
   side's filters, normalised identifiers, one row per person, the per-person
   vectors on the value side);
2. the OPRF exchange (:func:`oprf`): the identifiers blinded and shuffled
   (:func:`pets.linkage.blind`), streamed to the leader in signed chunks
   (``Leader.LinkageEvaluate``); in verified mode every chunk's two DLEQ
   proofs are checked against the servers' signed key shares (certificates
   from the project CA) as the chunks come back;
3. unblinding to pseudonyms, shuffled again (:func:`pets.linkage.finish`);
4. the upload on the ordinary contribution path (:func:`upload`): the
   pseudonyms and the leader's share of the per-person matrix, the helper's
   seed sealed to it, the pseudonyms signed and bound to that seed.

Nothing here logs an identifier, a point or a pseudonym.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import grpc
import numpy as np
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from pets import prg, seal, sharing
from pets.client.holder import HolderClient
from pets.errors import InvalidInputError, InvalidProofError
from pets.identity.certificates import Role
from pets.linkage import (
    BlindState,
    LinkageDomain,
    announcement_message,
    blind,
    finish,
    verify_evaluations,
)
from pets.linkage.holder import shuffle
from pets.protocols.linkage import (
    DEFAULT_CHUNK_POINTS,
    chunk_context,
    chunk_message,
    encode_payload,
    upload_message,
)
from pets.query import QueryPlan
from pets.transport.status import error_for
from pets.v1 import aggregation_pb2 as pb

_ECDSA = ec.ECDSA(hashes.SHA256())


class PersonRows(Protocol):
    """What the holder links: distinct normalised ids and, per person, a vector."""

    @property
    def ids(self) -> list[bytes]: ...

    @property
    def domain(self) -> LinkageDomain: ...

    @property
    def width(self) -> int: ...

    def vectors(self, persons: np.ndarray) -> np.ndarray: ...


def held_side(plan: QueryPlan, datasets: Sequence[str]) -> int | None:
    """The index of the first side of ``plan`` whose dataset the node holds."""
    linkage = getattr(plan, "linkage", None)
    if linkage is None:
        return None
    for i, side in enumerate(linkage.sides):
        if side.name in datasets:
            return i
    return None


def _check_key(
    statement: pb.LinkageKey,
    role: str,
    name: str | None,
    domain: LinkageDomain,
    query_id: str,
    ca_pem: bytes | None,
) -> bytes:
    """A server's announced key share, its signature checked (with a CA); its bytes."""
    if statement.role != role or (name is not None and statement.server != name):
        raise InvalidProofError(f"the {role}'s linkage key is announced for another server")
    public = bytes(statement.public_key)
    if ca_pem is not None:
        peer_role = Role.HELPER if role == "helper" else Role.LEADER
        seal.check_party(bytes(statement.certificate), ca_pem, peer_role, statement.server)
        try:
            seal.certificate_key(bytes(statement.certificate)).verify(
                bytes(statement.signature),
                announcement_message(role, domain, query_id, public),
                _ECDSA,
            )
        except (InvalidSignature, ValueError):
            raise InvalidProofError(f"the {role}'s linkage key is not signed by it") from None
    return public


async def exchange(
    client: HolderClient,
    ann: pb.QueryAnnouncement,
    domain: LinkageDomain,
    rows: int,
    chunks: AsyncIterator[bytes],
    on_chunk: Callable[[int, bytes], Awaitable[None]],
    *,
    verify: bool = True,
    chunk_points: int = DEFAULT_CHUNK_POINTS,
) -> None:
    """The OPRF exchange with the leader for a batch of ``rows`` points that
    ``chunks`` yields (each ``chunk_points`` long but the last), streamed as
    they come; ``on_chunk(index, k·B)`` gets each evaluated chunk once it is
    checked (verified mode: both DLEQ proofs against the servers' signed keys)."""
    signer = client.signing_key
    ca_pem = None if client.connector.endpoints.tls is None else client._ca_pem
    holder = client.name
    header = pb.LinkageBatchHeader(
        query_id=ann.query_id,
        domain=domain.name,
        rows=rows,
        prove=verify,
        chunk_points=chunk_points,
    )
    sent: dict[int, bytes] = {}

    async def requests() -> AsyncIterator[pb.LinkageBatchChunk]:
        index = 0
        async for points in chunks:
            sent[index] = points
            msg = pb.LinkageBatchChunk(index=index, points=points)
            if index == 0:
                msg.header.CopyFrom(header)
            if signer is not None:
                message = chunk_message(domain.name, ann.query_id, holder, rows, index, points)
                msg.signature = signer.sign(message, _ECDSA)
            yield msg
            index += 1

    keys: tuple[bytes, bytes] | None = None
    done = 0
    # Checking and unblinding run beside the receiving loop, so the servers keep
    # streaming (gRPC flow control would otherwise stall them behind the holder).
    work: list[asyncio.Future[None]] = []
    lanes = asyncio.Semaphore(2)

    async def process(index: int, chunk: bytes, ev: pb.LinkageEvaluation) -> None:
        async with lanes:
            if verify:
                assert keys is not None
                await asyncio.to_thread(
                    verify_evaluations,
                    chunk,
                    bytes(ev.helper_points),
                    bytes(ev.points),
                    helper_public_key=keys[0],
                    helper_proof=bytes(ev.helper_proof),
                    helper_context=chunk_context(
                        "helper", domain.name, ann.query_id, holder, index
                    ),
                    leader_public_key=keys[1],
                    leader_proof=bytes(ev.proof),
                    leader_context=chunk_context(
                        "leader", domain.name, ann.query_id, holder, index
                    ),
                )
            await on_chunk(index, bytes(ev.points))

    call = client.leader.LinkageEvaluate(requests(), metadata=client.connector.metadata)
    try:
        async for ev in call:
            index = done
            chunk = sent.pop(index, None)
            if ev.index != index or chunk is None or len(ev.points) != len(chunk):
                raise InvalidProofError("the leader's answer does not match the chunk it got")
            if verify and index == 0:
                if len(ev.keys) != 2:
                    raise InvalidProofError("verified mode: both servers' keys must come")
                helper = ann.helpers[0] if ann.helpers else None
                keys = (
                    _check_key(ev.keys[0], "helper", helper, domain, ann.query_id, ca_pem),
                    _check_key(ev.keys[1], "leader", None, domain, ann.query_id, ca_pem),
                )
            work.append(asyncio.ensure_future(process(index, chunk, ev)))
            done += 1
            for finished in [w for w in work if w.done()]:
                finished.result()  # a failed check ends the exchange now
    except grpc.aio.AioRpcError as exc:
        raise error_for(exc, f"linkage batch for {ann.query_id}") from None
    finally:
        call.cancel()
        outcomes = await asyncio.gather(*work, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    if done * chunk_points < rows:
        raise InvalidProofError("the leader returned fewer points than the batch had")


async def oprf(
    client: HolderClient,
    ann: pb.QueryAnnouncement,
    domain: LinkageDomain,
    batch: bytes,
    *,
    verify: bool = True,
    chunk_points: int = DEFAULT_CHUNK_POINTS,
) -> bytes:
    """k·B for a whole blinded ``batch`` (:func:`exchange` over its chunks)."""
    step = 33 * chunk_points
    outputs: dict[int, bytes] = {}

    async def chunks() -> AsyncIterator[bytes]:
        for at in range(0, len(batch), step):
            yield batch[at : at + step]

    async def keep(index: int, points: bytes) -> None:
        outputs[index] = points

    await exchange(
        client,
        ann,
        domain,
        len(batch) // 33,
        chunks(),
        keep,
        verify=verify,
        chunk_points=chunk_points,
    )
    return b"".join(outputs[i] for i in range(len(outputs)))


async def upload(
    client: HolderClient,
    ann: pb.QueryAnnouncement,
    side: int,
    pseudonyms: bytes,
    matrix: np.ndarray,
) -> pb.ContributionAck:
    """Deliver the pseudonyms and the shared ``rows x width`` matrix to the leader."""
    if len(ann.helpers) != 1:
        raise InvalidInputError("record linkage runs with exactly one helper")
    seed = prg.new_seed()
    flat = np.ascontiguousarray(matrix, dtype=np.uint64).reshape(-1)
    shares = await asyncio.to_thread(sharing.shard, flat, 2, seeds=[seed])
    digest = seal.contribution_digest(ann.query_id, [seed])
    sealed = client.seal_seeds(ann, [seed])
    signer = client.signing_key
    rows = len(pseudonyms) // 16
    signature = b""
    if signer is not None:
        message = upload_message(
            ann.query_id, bytes(ann.fingerprint), client.name, side, rows, pseudonyms, digest
        )
        signature = signer.sign(message, _ECDSA)
    payload = encode_payload(side, signature, pseudonyms, shares.leader)
    return await client.send_payload(
        ann.query_id, payload, digest, sealed, deadline=ann.deadline_unix
    )


async def link_and_upload(
    client: HolderClient,
    ann: pb.QueryAnnouncement,
    side: int,
    persons: PersonRows,
    *,
    verify: bool = True,
    chunk_points: int = DEFAULT_CHUNK_POINTS,
    workers: int = 1,
) -> pb.ContributionAck:
    """Steps 2-4 of the module docstring for the holder's ``persons`` on ``side``,
    as a pipeline: the ids are shuffled once, then each chunk is blinded, sent,
    evaluated by the servers and unblinded while the next ones are on their way
    (blinding and unblinding are point-wise), and the pseudonyms are shuffled
    again as a whole before the upload. ``workers`` threads share each chunk's
    multiplications (libsecp256k1 releases the GIL)."""
    ids = persons.ids
    rows = len(ids)
    if not rows:  # nobody passed the filters: an empty upload, no OPRF round
        empty = np.zeros((0, persons.width), dtype=np.uint64)
        return await upload(client, ann, side, b"", empty)
    order = shuffle(rows)
    parts = [order[at : at + chunk_points] for at in range(0, rows, chunk_points)]
    states: dict[int, BlindState] = {}
    pseudonyms: dict[int, bytes] = {}
    records: dict[int, np.ndarray] = {}
    domain = persons.domain

    async def chunks() -> AsyncIterator[bytes]:
        for index, part in enumerate(parts):
            batch, states[index] = await asyncio.to_thread(
                blind, [ids[int(j)] for j in part], domain, workers=workers
            )
            yield batch

    async def unblind(index: int, points: bytes) -> None:
        done = await asyncio.to_thread(
            finish, points, states.pop(index), domain, ann.query_id, workers=workers
        )
        pseudonyms[index] = done.pseudonyms
        records[index] = parts[index][done.records]

    await exchange(
        client, ann, domain, rows, chunks(), unblind, verify=verify, chunk_points=chunk_points
    )
    again = shuffle(rows)
    flat = np.frombuffer(
        b"".join(pseudonyms[i] for i in range(len(parts))), dtype=np.uint8
    ).reshape(rows, 16)[again]
    kept = np.concatenate([records[i] for i in range(len(parts))])[again]
    if persons.width:
        matrix = await asyncio.to_thread(persons.vectors, kept)
    else:
        matrix = np.zeros((rows, 0), dtype=np.uint64)
    return await upload(client, ann, side, flat.tobytes(), matrix)


def read_ids(source: Any, id_column: str) -> list[object]:
    """The raw identifier column of a file source, in row order (the sources read only
    schema columns; the identifier is not one). CSV, Parquet and SQLite files."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    path = getattr(source, "path", None)
    if path is None:
        raise InvalidInputError(
            f"{getattr(source, 'label', 'this source')}: linked queries read identifiers "
            "from CSV, Parquet or SQLite files only"
        )
    suffix = str(path).lower().rsplit(".", 1)[-1]
    if suffix == "parquet":
        return list(pq.read_table(path, columns=[id_column]).column(0).to_pylist())
    if suffix in ("sqlite", "db", "sqlite3"):
        import sqlite3

        table = getattr(source, "table", None) or source.dataset.name
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            rows = db.execute(f'SELECT "{id_column}" FROM "{table}"').fetchall()  # noqa: S608
        return [r[0] for r in rows]
    options = pa_csv.ConvertOptions(
        include_columns=[id_column],
        column_types={id_column: pa.string()},
        strings_can_be_null=False,
    )
    return list(pa_csv.read_csv(path, convert_options=options).column(0).to_pylist())


async def answer_linked(
    client: HolderClient,
    ann: pb.QueryAnnouncement,
    plan: QueryPlan,
    tables: Mapping[str, Any],
    *,
    verify: bool = True,
) -> pb.ContributionAck:
    """The node's answer to a linked query over the first side it holds."""
    from pets.linkage.persons import evaluate_persons  # the holder's per-person evaluation
    from pets.sources import read_table

    side = held_side(plan, list(tables))
    if side is None:
        raise InvalidInputError("this node holds none of the linked query's datasets")
    linkage = plan.linkage
    assert linkage is not None
    chosen = linkage.sides[side]
    source = tables[chosen.name]
    table = await asyncio.to_thread(read_table, source)
    ids = await asyncio.to_thread(read_ids, source, chosen.linkage.id_column)
    persons = await asyncio.to_thread(evaluate_persons, plan, chosen.name, table, ids)
    return await link_and_upload(client, ann, side, persons, verify=verify)
