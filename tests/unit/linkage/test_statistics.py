"""Linked statistics end to end in memory: real additive shares, compared with pandas.

"count, sum, mean and group-by of the long-term-care side's values over the
people who are also in the hospital's filtered cohort" (issue 16): the holder
encodes each person's row as [1, cost, cost^2, one-hot(level)...,
cost·one-hot(level)...], secret-shares the matrix of its upload order with
:func:`pets.sharing.shard`, each server sums its share rows over the matched
set, and the analyst adds the servers' sums. A forged matched set is caught
by the digest check.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pets import sharing
from pets.linkage import (
    DigestMismatchError,
    KeyShare,
    LinkageDomain,
    check_digests,
    match,
    matched_set_digest,
    prepare_records,
    sum_matched,
)
from pets.linkage.local import link_in_process
from pets.zk.rng import DeterministicRng

LEVELS = 3


def _datasets() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(7)  # synthetic test data, not secrets
    people = [f"{i:06d}" for i in range(80)]
    hospital = pd.DataFrame(
        {
            "patient": [f" {p} " if i % 5 == 0 else p for i, p in enumerate(people[:50])]
            + people[:6],  # readmissions: repeated ids, spaces
            "diagnosis": rng.choice(["E11", "I10"], size=56).tolist(),
        }
    )
    ltc = pd.DataFrame(
        {
            "resident": people[30:80] + people[30:40],  # several care records per person
            "care_level": rng.integers(0, LEVELS, size=60).tolist(),
            "care_cost": rng.integers(0, 5000, size=60).tolist(),
        }
    )
    return hospital, ltc


def _encode(levels: np.ndarray, costs: np.ndarray) -> np.ndarray:
    onehot = np.eye(LEVELS, dtype=np.uint64)[levels.astype(np.int64)]
    costs = costs.astype(np.uint64)
    return np.column_stack(
        [np.ones_like(costs), costs, costs * costs, onehot, onehot * costs[:, None]]
    )


def test_linked_count_sum_mean_variance_group_by_equal_pandas(
    domain: LinkageDomain, leader: KeyShare, helper: KeyShare
) -> None:
    hospital, ltc = _datasets()
    cohort = hospital[hospital["diagnosis"] == "E11"]  # the hospital's filter
    # LTC: one row per person, the latest level and the summed cost (two rules, one pass each).
    last = prepare_records(ltc["resident"], ltc[["care_level"]].to_numpy(), domain, "last")
    summed = prepare_records(ltc["resident"], ltc[["care_cost"]].to_numpy(), domain, "sum")
    assert last.ids == summed.ids and last.values is not None and summed.values is not None
    rows = _encode(last.values[:, 0], summed.values[:, 0])
    hosp = prepare_records(cohort["patient"], None, domain, "first")

    run = link_in_process(
        [last.ids, hosp.ids],
        domain,
        "q-stats",
        leader=leader,
        helper=helper,
        max_rows=100,
        rng=DeterministicRng(b"stats"),
    )
    upload = run.uploads[0]
    ordered = rows[upload.records]  # the holder shares its rows in upload order
    shares = sharing.shard(ordered.reshape(-1), 2)
    d = rows.shape[1]
    leader_share = shares.leader.reshape(-1, d)
    helper_share = sharing.expand_share(shares.helper_seeds[0], ordered.size).reshape(-1, d)
    # Each server matches on its own copy and they compare digests before summing.
    leader_view = match([u.pseudonyms for u in run.uploads])
    helper_view = match([u.pseudonyms for u in run.uploads])
    check_digests(
        matched_set_digest("q-stats", leader_view), matched_set_digest("q-stats", helper_view)
    )
    total = sharing.unshard(
        [
            sum_matched(leader_share, leader_view.indices[0]),
            sum_matched(helper_share, helper_view.indices[0]),
        ]
    ).astype(np.int64)

    per_person = ltc.groupby("resident").agg(
        care_level=("care_level", "last"), care_cost=("care_cost", "sum")
    )
    ids = {p.strip() for p in cohort["patient"]}
    linked = per_person[per_person.index.isin(ids)]
    count, cost_sum, cost_sq = int(total[0]), int(total[1]), int(total[2])
    assert count == len(linked) > 0
    assert cost_sum == int(linked["care_cost"].sum())
    assert cost_sum / count == pytest.approx(linked["care_cost"].mean())
    variance = cost_sq / count - (cost_sum / count) ** 2
    assert variance == pytest.approx(linked["care_cost"].var(ddof=0))
    by_level = linked.groupby("care_level")["care_cost"].agg(["count", "sum"])
    for level in range(LEVELS):
        expected = by_level.loc[level] if level in by_level.index else {"count": 0, "sum": 0}
        assert int(total[3 + level]) == int(expected["count"])
        assert int(total[3 + LEVELS + level]) == int(expected["sum"])


def test_forged_matched_set_fails_the_digest(
    domain: LinkageDomain, leader: KeyShare, helper: KeyShare
) -> None:
    ids_a = [b"%d" % i for i in range(20)]
    ids_b = [b"%d" % i for i in range(10, 30)]
    run = link_in_process(
        [ids_a, ids_b], domain, "q-forge", leader=leader, helper=helper, max_rows=30
    )
    honest = match([u.pseudonyms for u in run.uploads])
    # The leader drops one matched person from the copy it relays.
    dropped = honest.pseudonyms.tobytes()[:16]  # not pseudonyms[0]: numpy strips trailing NULs
    forged_a = run.uploads[0].pseudonyms.replace(dropped, b"\xee" * 16)
    forged = match([forged_a, run.uploads[1].pseudonyms])
    assert forged.size == honest.size - 1
    with pytest.raises(DigestMismatchError):
        check_digests(matched_set_digest("q-forge", forged), matched_set_digest("q-forge", honest))
