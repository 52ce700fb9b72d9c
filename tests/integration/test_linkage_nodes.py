"""Linked queries answered by real node processes on generated data (issue 16, items 2 and 4).

``pets gen-data --kind linked`` data (hospitals, municipal long-term care,
insurer claims; messy ids, one domain) held by six node processes; a leader
and a helper over mutual TLS. The nodes answer PROTOCOL_LINKAGE queries on
their own (client/node.py -> client/linkage.py); every answer must equal the
pandas plaintext join of the same files (pets.devtools.linkjoin), and a cohort
below the floor must be refused with nothing released.
"""

from __future__ import annotations

from pathlib import Path

from pets.devtools.demo_linked import LINKED_QUERIES, run_linked_queries


def test_nodes_answer_linked_queries_like_the_plaintext_join(tmp_path: Path) -> None:
    queries = run_linked_queries(tmp_path, holders=2, rows=300)
    assert [q["name"] for q in queries] == [name for name, _ in LINKED_QUERIES]
    for q in queries:
        assert q["match"], q
        assert q["clean_shutdown"], q
    refused = [q for q in queries if q["failure"]]
    assert [q["failure"] for q in refused] == ["below_min_intersection"]
    assert refused[0]["secure"] is None
    assert all(q["secure"] is not None for q in queries if not q["failure"])
