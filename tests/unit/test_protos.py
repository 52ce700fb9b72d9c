"""The committed generated code must match the .proto files byte for byte."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _protogen():
    spec = importlib.util.spec_from_file_location("protogen", ROOT / "tools" / "protogen.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_code_matches_protos() -> None:
    stale = _protogen().diff()
    assert stale == [], f"generated code is stale, run `make protos`: {stale}"


def test_every_proto_has_generated_code() -> None:
    protogen = _protogen()
    names = {p.stem for p in protogen.proto_files()}
    assert names, "no .proto files found"
    for name in names:
        assert (ROOT / "pets" / "v1" / f"{name}_pb2.py").exists()
