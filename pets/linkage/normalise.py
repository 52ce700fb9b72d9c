"""Identifier normalisation, as a linkage domain declares it.

Two datasets link only if the same person's identifier becomes the same bytes
on both sides, so the steps belong to the *domain* (the identifier space, e.g.
a national resident number), not to one dataset. A normalisation is an ordered
tuple of step names, applied left to right; the result is UTF-8 bytes.

Steps (a small closed set, so every holder implements them identically):

* ``nfkc``: Unicode NFKC (UAX #15), e.g. full-width digits to ASCII;
* ``casefold``: :meth:`str.casefold` (Unicode default case folding);
* ``strip``: remove leading and trailing whitespace;
* ``collapse_whitespace``: runs of whitespace become one space, ends stripped;
* ``remove_whitespace``: remove all whitespace;
* ``digits_only``: keep only ASCII digits 0-9 (put ``nfkc`` first to fold other digits);
* ``alnum_only``: keep only characters for which :meth:`str.isalnum` holds.

An identifier that is missing (``None``) or empty after normalisation cannot
be linked; :func:`normalise_ids` drops it and counts it, never raising on data.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence

from pets.errors import SchemaError

_NON_DIGITS = re.compile(r"[^0-9]+")

_STEPS: dict[str, Callable[[str], str]] = {
    "nfkc": lambda s: unicodedata.normalize("NFKC", s),
    "casefold": str.casefold,
    "strip": str.strip,
    "collapse_whitespace": lambda s: " ".join(s.split()),
    "remove_whitespace": lambda s: "".join(s.split()),
    "digits_only": lambda s: _NON_DIGITS.sub("", s),
    "alnum_only": lambda s: "".join(ch for ch in s if ch.isalnum()),
}

#: The step names a schema may use.
NORMALISATION_STEPS = tuple(_STEPS)
#: The default for free-text identifiers.
DEFAULT_NORMALISATION = ("nfkc", "strip", "casefold")


def check_normalisation(steps: Iterable[str]) -> tuple[str, ...]:
    """The steps as a tuple, or :class:`~pets.errors.SchemaError` naming an unknown step."""
    out = tuple(steps)
    for step in out:
        if step not in _STEPS:
            raise SchemaError(
                f"unknown identifier normalisation step {step!r}; "
                f"expected some of {', '.join(NORMALISATION_STEPS)}"
            )
    return out


def normalise_one(value: object, steps: Sequence[str]) -> bytes | None:
    """One identifier to bytes, or None when it is missing or normalises to nothing.

    Accepts ``str``, ``int`` (its decimal form) and UTF-8 ``bytes``; anything
    else (floats, which would lose digits, NaN, None) is treated as missing.
    """
    if isinstance(value, bytes | bytearray):
        try:
            text = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None
    elif isinstance(value, str):
        text = value
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    else:
        return None
    for step in steps:
        text = _STEPS[step](text)
    return text.encode("utf-8") if text else None


def normalise_ids(
    values: Iterable[object], steps: Sequence[str]
) -> tuple[list[bytes], list[int], int]:
    """Normalise a column: (identifiers kept, their row numbers, count dropped)."""
    steps = check_normalisation(steps)
    ids: list[bytes] = []
    rows: list[int] = []
    dropped = 0
    for row, value in enumerate(values):
        ident = normalise_one(value, steps)
        if ident is None:
            dropped += 1
        else:
            ids.append(ident)
            rows.append(row)
    return ids, rows, dropped
