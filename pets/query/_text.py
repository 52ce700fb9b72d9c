"""A tiny lexer and value formatter shared by the query parsers and ``describe``.

The text syntax is for people at a command line; the wire form of a query is
its canonical JSON (:meth:`pets.query.model.Query.to_json`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from pets.errors import QueryError

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | "(?P<dq>[^"]*)"
  | '(?P<sq>[^']*)'
  | (?P<op><=|>=|!=|==|=|<|>)
  | (?P<punct>[()\[\],*])
  | (?P<word>[^\s()\[\],*=!<>"']+)
    """,
    re.VERBOSE,
)
_INT_RE = re.compile(r"[+-]?\d+")
_FLOAT_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
KEYWORDS = frozenset(
    {"and", "in", "from", "where", "group", "by", "bins", "clip"}
    | {"linked", "to", "min_intersection"}
)


@dataclass(frozen=True)
class Token:
    """One lexical token: ``kind`` is ``str`` (quoted), ``word``, ``op`` or ``punct``."""

    kind: str
    text: str
    pos: int

    def is_word(self, *words: str) -> bool:
        """True if this is an unquoted word equal (case-insensitively) to one of ``words``."""
        return self.kind == "word" and self.text.lower() in words


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens; an unterminated quote or stray ``!`` raises."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise QueryError(f"cannot parse query text at position {pos}: {text[pos : pos + 20]!r}")
        kind = match.lastgroup
        if kind == "dq" or kind == "sq":
            tokens.append(Token("str", match.group(kind), pos))
        elif kind != "ws":
            tokens.append(Token(str(kind), match.group(0), pos))
        pos = match.end()
    return tokens


def number(text: str) -> int | float | None:
    """The int or float a bare word spells, or ``None`` if it is not a number."""
    if _INT_RE.fullmatch(text):
        return int(text)
    if _FLOAT_RE.fullmatch(text):
        return float(text)
    return None


def format_number(value: float, *, keep_float: bool = False) -> str:
    """Render a number so that :func:`number` reads it back equal.

    With ``keep_float`` an integral float keeps its ``.0`` so that it reads
    back as a float, not an int.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not keep_float and math.isfinite(value) and float(value).is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(float(value))


def format_scalar(value: str | int | float) -> str:
    """Render a filter value: numbers type-faithfully, strings bare when unambiguous."""
    if isinstance(value, str):
        bare = (
            value
            and re.fullmatch(r"[^\s()\[\],*=!<>\"']+", value)
            and number(value) is None
            and value.lower() not in KEYWORDS
        )
        if bare:
            return value
        return f"'{value}'" if '"' in value else f'"{value}"'
    return format_number(value, keep_float=True)
