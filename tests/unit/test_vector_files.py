"""Every vector file that follows the one schema (tests/vectors/README.md) passes its checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.vectors.loader import VectorSchemaError, load

SCHEMA_FILES = (
    "encoding.json",
    "sharing.json",
    "seal.json",
    "query/query_vectors.json",
    "paillier/packing.json",
    "paillier/reject.json",
    "paillier/spec_signing.json",
    "linkage/oprf.json",
    "linkage/join.json",
    "linkage/normalise.json",
    "linkage/reject.json",
    "zk/point_encodings.json",
)


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_vector_file_follows_the_schema(name: str) -> None:
    vectors = load(name)
    assert vectors.accept or vectors.reject


@pytest.mark.parametrize(
    ("doc", "complaint"),
    [
        ({"accept": [{"name": "a"}]}, "description"),
        ({"description": "d"}, "no 'accept' or 'reject'"),
        ({"description": "d", "accept": [{"name": "a"}, {"name": "a"}]}, "two cases"),
        ({"description": "d", "reject": [{"name": "r", "error": "InvalidInputError"}]}, "step"),
        (
            {"description": "d", "reject": [{"name": "r", "step": "s", "error": "KeyError"}]},
            "error",
        ),
    ],
)
def test_malformed_vector_files_are_refused(
    doc: dict[str, object], complaint: str, tmp_path: Path
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(VectorSchemaError, match=complaint):
        load(path)
