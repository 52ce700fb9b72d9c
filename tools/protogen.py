"""Generate the Python code for ``protos/pets/v1/*.proto`` into ``pets/v1/``.

``python tools/protogen.py`` (what ``make protos`` runs) regenerates the
committed files; ``python tools/protogen.py --check`` exits 1 when the
committed code differs from what the ``.proto`` files give. The test suite
runs the same comparison (``tests/unit/test_protos.py``). The output depends
on the ``grpcio-tools`` version, which is pinned in ``pyproject.toml``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
PACKAGE_DIR = Path("pets") / "v1"
SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def proto_files() -> list[Path]:
    return sorted((PROTO_ROOT / PACKAGE_DIR).glob("*.proto"))


def generate(out_root: Path) -> dict[str, bytes]:
    """Run protoc on every .proto file; return {relative path: content}."""
    from grpc_tools import protoc  # dev dependency, imported only here

    out_root.mkdir(parents=True, exist_ok=True)
    protos = [str(p.relative_to(PROTO_ROOT)) for p in proto_files()]
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return {
        str(p.relative_to(out_root)): p.read_bytes()
        for p in sorted((out_root / PACKAGE_DIR).iterdir())
        if p.name.endswith(SUFFIXES)
    }


def committed() -> dict[str, bytes]:
    return {
        str(p.relative_to(ROOT)): p.read_bytes()
        for p in sorted((ROOT / PACKAGE_DIR).iterdir())
        if p.name.endswith(SUFFIXES)
    }


def diff() -> list[str]:
    """Paths whose committed content differs from freshly generated code."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
    have = committed()
    return sorted(p for p in fresh.keys() | have.keys() if fresh.get(p) != have.get(p))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args(argv)
    if args.check:
        stale = diff()
        for path in stale:
            print(f"stale generated file: {path} (run `make protos`)", file=sys.stderr)
        return 1 if stale else 0
    generate(ROOT)
    init = ROOT / PACKAGE_DIR / "__init__.py"
    if not init.exists():
        init.write_text('"""Generated protobuf and gRPC code for package pets.v1."""\n')
    print(f"generated code for {len(proto_files())} proto files in {PACKAGE_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
