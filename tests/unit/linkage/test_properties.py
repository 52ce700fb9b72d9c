"""Hypothesis properties of the linkage core against plaintext models."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pets.linkage import (
    IntersectionBelowFloorError,
    KeyShare,
    LinkageDomain,
    blind,
    check_floor,
    effective_floor,
    evaluate,
    finish,
    match,
    prepare_records,
    sum_matched,
)
from pets.linkage.holder import hash_to_point, unblind
from pets.linkage.local import link_in_process
from pets.zk.curve import N
from pets.zk.rng import DeterministicRng

SETTINGS = settings(max_examples=25, deadline=None)
scalars = st.integers(min_value=1, max_value=N - 1)
small_ids = st.text(alphabet="abAB12 ", min_size=0, max_size=4)


@SETTINGS
@given(
    ids=st.lists(st.binary(min_size=1, max_size=8), min_size=1, max_size=4, unique=True),
    k_l=scalars,
    k_h=scalars,
    seed=st.binary(max_size=8),
)
def test_unblinding_gives_k_times_hash(
    ids: list[bytes], k_l: int, k_h: int, seed: bytes, domain: LinkageDomain
) -> None:
    batch, state = blind(ids, domain, rng=DeterministicRng(seed))
    leader, helper = KeyShare("leader", k_l), KeyShare("helper", k_h)
    out = evaluate(evaluate(batch, helper, max_rows=len(ids)).outputs, leader, max_rows=len(ids))
    points = unblind(out.outputs, state)
    k = (k_l * k_h % N).to_bytes(32, "big")
    for pos, row in enumerate(state.order.tolist()):
        expected = hash_to_point(ids[row], domain.dst).multiply(k).format()
        assert points[33 * pos : 33 * pos + 33] == expected


@SETTINGS
@given(
    ids=st.lists(st.binary(min_size=1, max_size=8), min_size=1, max_size=4, unique=True),
    a=scalars,
    b=scalars,
)
def test_key_shares_commute(ids: list[bytes], a: int, b: int, domain: LinkageDomain) -> None:
    batch, _ = blind(ids, domain, rng=DeterministicRng(b"c"))
    ka, kb = KeyShare("helper", a), KeyShare("leader", b)
    n = len(ids)
    ab = evaluate(evaluate(batch, ka, max_rows=n).outputs, kb, max_rows=n).outputs
    ba = evaluate(evaluate(batch, kb, max_rows=n).outputs, ka, max_rows=n).outputs
    assert ab == ba


def _plain_join(
    rows_a: list[tuple[str, int]], rows_b: list[tuple[str, int]], domain: LinkageDomain
) -> tuple[set[str], int]:
    """Plaintext model: normalise like the domain, first row per person, sum of A's values."""

    def norm(s: str) -> str:
        import unicodedata

        return unicodedata.normalize("NFKC", s).strip().casefold()

    first_a: dict[str, int] = {}
    for ident, value in rows_a:
        key = norm(ident)
        if key:
            first_a.setdefault(key, value)
    keys_b = {norm(i) for i, _ in rows_b} - {""}
    common = set(first_a) & keys_b
    return common, sum(first_a[k] for k in common) % 2**64


rows = st.lists(st.tuples(small_ids, st.integers(min_value=0, max_value=2**64 - 1)), max_size=10)


@settings(max_examples=20, deadline=None)
@given(rows_a=rows, rows_b=rows)
def test_join_equals_plaintext_join(
    rows_a: list[tuple[str, int]],
    rows_b: list[tuple[str, int]],
    domain: LinkageDomain,
    leader: KeyShare,
    helper: KeyShare,
) -> None:
    """Duplicates, normalisation (case, spaces), empty and full intersections included."""
    rec_a = prepare_records(
        [i for i, _ in rows_a],
        np.array([[v] for _, v in rows_a], dtype=np.uint64).reshape(-1, 1),
        domain,
        "first",
    )
    rec_b = prepare_records([i for i, _ in rows_b], None, domain, "first")
    run = link_in_process(
        [rec_a.ids, rec_b.ids], domain, "q-test", leader=leader, helper=helper, max_rows=64
    )
    common, total = _plain_join(rows_a, rows_b, domain)
    assert run.matched.size == len(common)
    upload_a = run.uploads[0]
    assert rec_a.values is not None
    shares = rec_a.values[upload_a.records]  # a trivial "share": the values themselves
    matched_rows = upload_a.records[run.matched.indices[0]]
    assert {rec_a.ids[r].decode() for r in matched_rows.tolist()} == common
    assert int(sum_matched(shares, run.matched.indices[0])[0]) == total


@SETTINGS
@given(ids=st.lists(st.binary(min_size=1, max_size=6), min_size=1, max_size=8, unique=True))
def test_full_intersection_and_shuffles(
    ids: list[bytes], domain: LinkageDomain, leader: KeyShare, helper: KeyShare
) -> None:
    run = link_in_process(
        [ids, list(reversed(ids))], domain, "q-test", leader=leader, helper=helper, max_rows=8
    )
    assert run.matched.size == len(ids)
    a, b = run.uploads
    left = [ids[r] for r in a.records[run.matched.indices[0]].tolist()]
    right = [list(reversed(ids))[r] for r in b.records[run.matched.indices[1]].tolist()]
    assert left == right


@SETTINGS
@given(
    size=st.integers(min_value=0, max_value=30),
    floor=st.integers(min_value=1, max_value=30),
    extra_a=st.integers(min_value=0, max_value=5),
    extra_b=st.integers(min_value=0, max_value=5),
)
def test_floor_exactly_and_minus_one(size: int, floor: int, extra_a: int, extra_b: int) -> None:
    common = [i.to_bytes(16, "big") for i in range(size)]
    a = common + [(1000 + i).to_bytes(16, "big") for i in range(extra_a)]
    b = [(2000 + i).to_bytes(16, "big") for i in range(extra_b)] + common
    result = match([b"".join(a), b"".join(b)])
    assert result.size == size
    if size >= floor:
        check_floor(result, floor)
    else:
        try:
            check_floor(result, floor)
        except IntersectionBelowFloorError as err:
            assert str(size) not in str(err).replace("min_intersection", "")
        else:
            raise AssertionError("below the floor must be refused")


@given(
    server=st.integers(min_value=1, max_value=100),
    query=st.none() | st.integers(min_value=0, max_value=100),
)
def test_a_query_never_lowers_the_floor(server: int, query: int | None) -> None:
    floor = effective_floor(server, query)
    assert floor >= server and (query is None or floor >= query)


pseudonyms = st.binary(min_size=16, max_size=16).map(
    lambda b: b[:-2] + b"\x00\x00" if b[0] % 3 == 0 else b  # trailing zero bytes on purpose
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(pseudonyms, max_size=12, unique=True), min_size=2, max_size=4))
def test_match_equals_set_intersection(uploads: list[list[bytes]]) -> None:
    result = match([b"".join(u) for u in uploads])
    expected = set(uploads[0]).intersection(*map(set, uploads[1:]))
    got = result.pseudonyms.tobytes()
    listed = [got[i : i + 16] for i in range(0, len(got), 16)]
    assert listed == sorted(expected)
    for u, ix in zip(uploads, result.indices, strict=True):
        assert [u[i] for i in ix.tolist()] == listed


@given(
    st.lists(
        st.lists(st.integers(min_value=0, max_value=2**64 - 1), min_size=2, max_size=2),
        min_size=1,
        max_size=20,
    ),
    st.data(),
)
def test_sum_matched_is_ring_sum(matrix: list[list[int]], data: st.DataObject) -> None:
    rows = data.draw(st.lists(st.integers(min_value=0, max_value=len(matrix) - 1), unique=True))
    got = sum_matched(np.array(matrix, dtype=np.uint64), np.array(rows, dtype=np.int64))
    assert got.tolist() == [sum(matrix[r][c] for r in rows) % 2**64 for c in range(2)]


def test_finish_shuffles_again(domain: LinkageDomain, leader: KeyShare, helper: KeyShare) -> None:
    ids = [b"%d" % i for i in range(40)]
    batch, state = blind(ids, domain, rng=DeterministicRng(b"x"))
    out = evaluate(evaluate(batch, helper, max_rows=40).outputs, leader, max_rows=40)
    upload = finish(out.outputs, state, domain, "q-test", rng=DeterministicRng(b"y"))
    assert sorted(upload.records.tolist()) == list(range(40))
    assert upload.records.tolist() != state.order.tolist()


def test_pipeline_floor_exactly_and_minus_one(
    domain: LinkageDomain, leader: KeyShare, helper: KeyShare
) -> None:
    floor = effective_floor(5, 7)
    for shared, refused in ((floor, False), (floor - 1, True)):
        a = [b"a%d" % i for i in range(4)] + [b"s%d" % i for i in range(shared)]
        b = [b"s%d" % i for i in range(shared)] + [b"b%d" % i for i in range(3)]
        run = link_in_process([a, b], domain, "q-floor", leader=leader, helper=helper, max_rows=20)
        if refused:
            try:
                check_floor(run.matched, floor)
            except IntersectionBelowFloorError:
                pass
            else:
                raise AssertionError("floor - 1 must be refused")
        else:
            check_floor(run.matched, floor)


def test_three_holders_equal_plaintext(
    domain: LinkageDomain, leader: KeyShare, helper: KeyShare
) -> None:
    raw = [
        ["Ann", "bob", " CAROL ", "dave", "ann"],
        ["carol", "ANN", "eve", "Bob"],
        ["ann", "Ｃａｒｏｌ", "zed", "bob "],
    ]
    records = [prepare_records(r, None, domain, "first") for r in raw]
    run = link_in_process(
        [r.ids for r in records], domain, "q-3", leader=leader, helper=helper, max_rows=10
    )
    assert run.matched.size == 3  # ann, bob, carol (NFKC folds the full-width name)
    for rec, upload, ix in zip(records, run.uploads, run.matched.indices, strict=True):
        assert sorted(rec.ids[r] for r in upload.records[ix].tolist()) == [b"ann", b"bob", b"carol"]


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=33 * 4), max_rows=st.integers(min_value=0, max_value=5))
def test_evaluate_on_arbitrary_bytes_raises_only_pets_errors(
    data: bytes, max_rows: int, helper: KeyShare
) -> None:
    from pets.errors import PetsError

    try:
        out = evaluate(data, helper, max_rows=max_rows)
    except PetsError as err:
        assert getattr(err, "step", None) in {
            "batch-length",
            "oversized-batch",
            "bad-point",
            "identity-point",
        }
    else:
        assert len(out.outputs) == len(data)


@settings(max_examples=100, deadline=None)
@given(
    outputs=st.binary(min_size=66, max_size=66),
    proof=st.binary(max_size=70),
    key=st.binary(max_size=34),
)
def test_verify_on_arbitrary_bytes_raises_only_pets_errors(
    outputs: bytes, proof: bytes, key: bytes, domain: LinkageDomain
) -> None:
    from pets.errors import PetsError
    from pets.linkage import verify_batch

    batch, _ = blind([b"a", b"b"], domain, rng=DeterministicRng(b"f"))
    try:
        verify_batch(key, batch, outputs, proof, context=b"", max_rows=2)
    except PetsError:
        pass
    else:
        raise AssertionError("random bytes must not verify")
