"""Lay out the installed package shape for the static checkers: build/lint/pets.

``server/`` and ``client/`` are installed as ``pets.server`` and
``pets.client`` (setuptools ``package-dir``), which an import hook resolves at
run time but import-linter and mypy, reading the file system, cannot. This
builds ``build/lint/pets`` as the installed tree would look: real folders,
each ``.py``/``.pyi``/``py.typed`` file a symlink to the source, ``server/``
at ``pets/server`` and ``client/`` at ``pets/client``. ``make lint`` points
both tools at it; errors name ``build/lint/pets/...`` paths, which map one to
one to the sources (``pets/server/x.py`` is ``server/x.py``).
"""

from __future__ import annotations

import os
import shutil
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUFFIXES = {".py", ".pyi", ".typed"}


def package_dirs() -> dict[str, Path]:
    """``pets`` -> ``pets/``, ``pets.server`` -> ``server/``, ... from pyproject.toml."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mapping = config["tool"]["setuptools"]["package-dir"]
    return {name: ROOT / folder for name, folder in mapping.items()}


def link_tree(source: Path, target: Path) -> None:
    for folder, dirs, files in os.walk(source):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        rel = Path(folder).relative_to(source)
        (target / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            if Path(name).suffix in SUFFIXES:
                os.symlink(Path(folder) / name, target / rel / name)


def main(out: str = "build/lint") -> int:
    base = ROOT / out
    if base.exists():
        shutil.rmtree(base)
    for name, folder in sorted(package_dirs().items()):  # "pets" before "pets.client"
        link_tree(folder, base.joinpath(*name.split(".")))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
