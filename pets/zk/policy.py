"""Predicates over credential attributes, and policies made of them (pure, no crypto).

Grammar of a policy: predicates joined by ``and``::

    accreditation >= 2 and purpose in {public-health, research}

Predicate forms (NAME is ``[A-Za-z_][A-Za-z0-9_.-]*``; a VALUE made only of
ASCII digits is an integer in [0, 2^64 - 1], anything else is a string, bare
or double-quoted):

    reveal NAME                 NAME == VALUE   (also NAME = VALUE)
    NAME >= INT   NAME > INT    NAME <= INT     NAME < INT
    NAME in [LO, HI]            LO <= NAME <= HI
    NAME in {VALUE, VALUE, ...}

``>`` and ``<`` are normalised to ``>=``/``<=``, ``LO <= NAME <= HI`` to
``NAME in [LO, HI]`` and set members are sorted, so each predicate has one
canonical string (``str(predicate)``). :func:`check_policy` decides whether
the predicates proven by a presentation imply every predicate of a policy and
returns the policy's canonical predicate strings, which is what a server may
store: never attribute values.

Integers are read by :func:`parse_decimal`: ASCII digits only (``str.isdigit``
and ``int`` would also take "²" or "١٢"), bounded *before* conversion, so no
input reaches ``int()``'s own ValueError for over-long strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pets.errors import InvalidInputError, InvalidProofError

Value = int | str

REVEAL, EQ, GE, LE, RANGE, IN = "reveal", "==", ">=", "<=", "in-range", "in"
_NAME = r"[A-Za-z_][A-Za-z0-9_.\-]*"
_VALUE = r'"[^"\\]*"|[A-Za-z0-9_.:@/+\-]+'
_INT = r"[0-9]+"
_MAX_SET_ENUMERATION = 4096
#: Largest integer a predicate, an attribute or a certified bound may hold.
MAX_INTEGER = (1 << 64) - 1
_ASCII_DECIMAL = re.compile(r"[0-9]+", re.ASCII)


def parse_decimal(text: object, what: str, maximum: int = MAX_INTEGER) -> int:
    """A non-negative decimal integer of ASCII digits, at most ``maximum``.

    Raises :class:`InvalidInputError` naming ``what`` (never echoing the text)
    for anything else: signs, spaces, underscores, non-ASCII digits, or a
    value above ``maximum`` (checked on the length first, so a 10^5-digit
    string costs nothing).
    """
    if not isinstance(text, str) or not _ASCII_DECIMAL.fullmatch(text):
        raise InvalidInputError(f"{what} must be a decimal integer (ASCII digits)")
    if len(text.lstrip("0")) > len(str(maximum)) or int(text) > maximum:
        raise InvalidInputError(f"{what} must be at most {maximum}")
    return int(text)


def _value(token: str) -> Value:
    token = token.strip()
    if token.startswith('"') and token.endswith('"') and len(token) >= 2:
        return token[1:-1]
    if re.fullmatch(_INT, token):
        return parse_decimal(token, "an integer in a predicate")
    if not re.fullmatch(_VALUE, token):
        raise InvalidInputError(f"invalid value {token!r} in predicate")
    return token


def _fmt(value: Value) -> str:
    if isinstance(value, int):
        return str(value)
    if re.fullmatch(r"[A-Za-z0-9_.:@/+\-]+", value) and not re.fullmatch(_INT, value):
        return value
    return '"' + value + '"'


def _sort_key(value: Value) -> tuple[int, int | str]:
    return (0, value) if isinstance(value, int) else (1, value)


@dataclass(frozen=True)
class Predicate:
    """One statement about one attribute; ``str()`` is its canonical form."""

    attribute: str
    op: str
    values: tuple[Value, ...] = ()

    def __post_init__(self) -> None:
        arity = {REVEAL: 0, EQ: 1, GE: 1, LE: 1, RANGE: 2}
        if self.op in arity and len(self.values) != arity[self.op]:
            raise InvalidInputError(f"predicate {self.op!r} takes {arity[self.op]} value(s)")
        if self.op == IN and not self.values:
            raise InvalidInputError("a set predicate needs at least one value")
        if self.op not in (*arity, IN):
            raise InvalidInputError(f"unknown predicate operator {self.op!r}")
        if self.op in (GE, LE, RANGE) and not all(
            isinstance(v, int) and v >= 0 for v in self.values
        ):
            raise InvalidInputError("ordering predicates need non-negative integer bounds")
        if self.op == RANGE and self.values[0] > self.values[1]:  # type: ignore[operator]
            raise InvalidInputError("empty range in predicate")
        if self.op == IN:  # canonical: sorted, no duplicates (str() feeds proof contexts)
            object.__setattr__(self, "values", tuple(sorted(set(self.values), key=_sort_key)))

    def __str__(self) -> str:
        a = self.attribute
        if self.op == REVEAL:
            return f"reveal {a}"
        if self.op == RANGE:
            return f"{a} in [{self.values[0]}, {self.values[1]}]"
        if self.op == IN:
            return f"{a} in {{{', '.join(_fmt(v) for v in self.values)}}}"
        return f"{a} {self.op} {_fmt(self.values[0])}"


def _bound(text: str) -> int:
    return parse_decimal(text, "a range bound")


def parse_predicate(text: str) -> Predicate:
    """Parse one predicate into its canonical :class:`Predicate`."""
    s = text.strip()
    if m := re.fullmatch(rf"reveal\s+({_NAME})", s):
        return Predicate(m[1], REVEAL)
    if m := re.fullmatch(rf"({_INT})\s*<=\s*({_NAME})\s*<=\s*({_INT})", s):
        return Predicate(m[2], RANGE, (_bound(m[1]), _bound(m[3])))
    if m := re.fullmatch(rf"({_NAME})\s+in\s+\[\s*({_INT})\s*,\s*({_INT})\s*\]", s):
        return Predicate(m[1], RANGE, (_bound(m[2]), _bound(m[3])))
    if m := re.fullmatch(rf"({_NAME})\s+in\s+\{{(.*)\}}", s):
        members = [t for t in (p.strip() for p in m[2].split(",")) if t]
        values = tuple(sorted({_value(t) for t in members}, key=_sort_key))
        return Predicate(m[1], IN, values)
    if m := re.fullmatch(rf"({_NAME})\s*(>=|<=|==|=|>|<)\s*({_VALUE})", s):
        name, op, value = m[1], m[2], _value(m[3])
        if op in ("==", "="):
            return Predicate(name, EQ, (value,))
        if not isinstance(value, int):
            raise InvalidInputError(f"predicate {s!r} compares with a non-integer")
        if op == ">":
            return Predicate(name, GE, (value + 1,))
        if op == "<":
            if value == 0:
                raise InvalidInputError(f"predicate {s!r} can never hold")
            return Predicate(name, LE, (value - 1,))
        return Predicate(name, op, (value,))
    raise InvalidInputError(f"cannot parse predicate {text!r}")


def _split_and(text: str) -> list[str]:
    """Split on the word ``and`` outside braces, brackets and quotes."""
    parts, depth, quoted, start, i = [], 0, False, 0, 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in "{[":
            depth += 1
        elif not quoted and ch in "}]":
            depth -= 1
        elif (
            not quoted
            and depth == 0
            and text[i : i + 3].lower() == "and"
            and (i == 0 or text[i - 1].isspace())
            and (i + 3 == len(text) or text[i + 3].isspace())
        ):
            parts.append(text[start:i])
            start = i + 3
            i += 3
            continue
        i += 1
    parts.append(text[start:])
    return parts


@dataclass(frozen=True)
class Policy:
    """A conjunction of predicates."""

    predicates: tuple[Predicate, ...]

    def __str__(self) -> str:
        return " and ".join(str(p) for p in self.predicates)


def parse_policy(text: str) -> Policy:
    """Parse ``pred and pred and ...``; an empty policy is an error."""
    parts = [p for p in (part.strip() for part in _split_and(text)) if p]
    if not parts:
        raise InvalidInputError("empty policy")
    return Policy(tuple(parse_predicate(p) for p in parts))


def _as_predicates(items: Iterable[Predicate | str]) -> list[Predicate]:
    return [p if isinstance(p, Predicate) else parse_predicate(p) for p in items]


def implies(
    proven: Sequence[Predicate], wanted: Predicate, *, max_value: int | None = None
) -> bool:
    """Whether the proven predicates (all on ``wanted.attribute``) imply ``wanted``.

    ``max_value`` is the certified upper bound of an integer attribute, if any.
    """
    facts = [p for p in proven if p.attribute == wanted.attribute]
    if wanted.op == REVEAL:
        return any(p.op == REVEAL for p in facts)
    if not facts and max_value is None:
        return False  # nothing is known about an attribute the credential may not have
    lo, hi = 0, max_value
    allowed: set[Value] | None = None
    for p in facts:
        bounds = [v for v in p.values if isinstance(v, int)]  # ordering ops hold ints only
        if p.op == GE:
            lo = max(lo, bounds[0])
        elif p.op == LE:
            hi = bounds[0] if hi is None else min(hi, bounds[0])
        elif p.op == RANGE:
            lo = max(lo, bounds[0])
            hi = bounds[1] if hi is None else min(hi, bounds[1])
        elif p.op in (EQ, IN):
            allowed = set(p.values) if allowed is None else allowed & set(p.values)
    if allowed is not None:
        candidates = {
            v for v in allowed if not isinstance(v, int) or lo <= v <= (hi if hi is not None else v)
        }
        return bool(candidates) and all(_holds(wanted, v) for v in candidates)
    if hi is None:
        return wanted.op == GE and lo >= wanted.values[0]  # type: ignore[operator]
    if wanted.op == GE:
        return lo >= wanted.values[0]  # type: ignore[operator]
    if wanted.op == LE:
        return hi <= wanted.values[0]  # type: ignore[operator]
    if wanted.op == RANGE:
        return lo >= wanted.values[0] and hi <= wanted.values[1]  # type: ignore[operator]
    if hi - lo >= _MAX_SET_ENUMERATION:
        return False
    return all(_holds(wanted, v) for v in range(lo, hi + 1))


def _holds(p: Predicate, v: Value) -> bool:
    if p.op == EQ:
        return v == p.values[0]
    if p.op == IN:
        return v in p.values
    if not isinstance(v, int):
        return False
    if p.op == GE:
        return v >= p.values[0]  # type: ignore[operator]
    if p.op == LE:
        return v <= p.values[0]  # type: ignore[operator]
    return p.values[0] <= v <= p.values[1]  # type: ignore[operator]


def check_policy(
    policy: Policy | str,
    proven: Iterable[Predicate | str],
    *,
    max_values: Mapping[str, int] | None = None,
) -> list[str]:
    """Check that ``proven`` implies every predicate of ``policy``.

    Returns the policy's canonical predicate strings (safe to store: no
    attribute values). Raises :class:`InvalidProofError` naming the first
    predicate that is not implied.
    """
    pol = parse_policy(policy) if isinstance(policy, str) else policy
    facts = _as_predicates(proven)
    bounds = max_values or {}
    for wanted in pol.predicates:
        if not implies(facts, wanted, max_value=bounds.get(wanted.attribute)):
            raise InvalidProofError(f"presentation does not prove '{wanted}'")
    return [str(p) for p in pol.predicates]
