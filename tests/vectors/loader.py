"""The one loader of the project's JSON known-answer vectors (schema: tests/vectors/README.md).

Every vector file is one JSON object::

    {
      "description": "what the file pins and how it was made",
      "accept": [{"name": "...", "step": "(optional) the operation", ...}],
      "reject": [{"name": "...", "step": "the step that must fail",
                  "error": "a pets.errors class", "match": "(optional) text in the message",
                  ...}],
      ...shared fields used by every case (keys, a schema, ...)
    }

:func:`load` checks that shape (unique names; every reject names its step and a
:mod:`pets.errors` class) and returns a :class:`VectorFile`;
:func:`cases` turns a list into ``pytest.param`` entries with the names as ids;
:func:`rejected` is the ``pytest.raises`` of one reject case, checking the
``match`` text as well.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pets import errors

VECTORS_DIR = Path(__file__).resolve().parent

Case = dict[str, Any]


class VectorSchemaError(Exception):
    """A vector file does not follow the schema."""


@dataclass(frozen=True)
class VectorFile:
    path: Path
    description: str
    accept: list[Case]
    reject: list[Case]
    shared: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.shared[key]


def load(relative: str | Path) -> VectorFile:
    """Load and check ``tests/vectors/<relative>`` (or an absolute path)."""
    path = VECTORS_DIR / relative
    doc = json.loads(path.read_text(encoding="utf-8"))
    where = str(relative)
    if not isinstance(doc, dict):
        raise VectorSchemaError(f"{where}: not a JSON object")
    description = doc.get("description")
    if not isinstance(description, str) or not description.strip():
        raise VectorSchemaError(f"{where}: needs a 'description'")
    accept, reject = doc.get("accept", []), doc.get("reject", [])
    if not accept and not reject:
        raise VectorSchemaError(f"{where}: no 'accept' or 'reject' cases")
    names: set[str] = set()
    for kind, items in (("accept", accept), ("reject", reject)):
        if not isinstance(items, list) or not all(isinstance(c, dict) for c in items):
            raise VectorSchemaError(f"{where}: '{kind}' must be a list of objects")
        for case in items:
            name = case.get("name")
            if not isinstance(name, str) or not name:
                raise VectorSchemaError(f"{where}: a {kind} case has no 'name'")
            if name in names:
                raise VectorSchemaError(f"{where}: two cases are named {name!r}")
            names.add(name)
            if kind == "reject":
                _check_reject(where, case)
    shared = {k: v for k, v in doc.items() if k not in {"description", "accept", "reject"}}
    return VectorFile(path, description, accept, reject, shared)


def _check_reject(where: str, case: Case) -> None:
    name = case["name"]
    if not isinstance(case.get("step"), str) or not case["step"]:
        raise VectorSchemaError(f"{where}: reject {name!r} does not name its 'step'")
    error = getattr(errors, str(case.get("error")), None)
    if not (isinstance(error, type) and issubclass(error, errors.PetsError)):
        raise VectorSchemaError(f"{where}: reject {name!r}: 'error' is not a pets.errors class")
    if "match" in case and not isinstance(case["match"], str):
        raise VectorSchemaError(f"{where}: reject {name!r}: 'match' must be text")


def cases(items: list[Case], *, step: str | None = None) -> list[Any]:
    """``pytest.param`` per case (id: its name), only those of ``step`` if given."""
    return [pytest.param(c, id=c["name"]) for c in items if step is None or c.get("step") == step]


def error_class(case: Case) -> type[errors.PetsError]:
    """The :mod:`pets.errors` class a reject case must raise."""
    error: type[errors.PetsError] = getattr(errors, case["error"])
    return error


@contextlib.contextmanager
def rejected(case: Case) -> Iterator[None]:
    """Expect the reject case's error (and its ``match`` text, if any) from the block."""
    with pytest.raises(error_class(case)) as info:
        yield
    if "match" in case:
        assert case["match"] in str(info.value), (case["match"], str(info.value))
