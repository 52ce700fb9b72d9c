"""Exact rationals for privacy parameters and noise scales.

Privacy parameters arrive as decimal numbers (``epsilon 0.5`` in a query,
``1e-3`` in a configuration). They are read as the *decimal they spell*
(``0.1`` is exactly ``1/10``, not the binary float nearest to it), so that
every later step — ε²/2, sensitivity/ε, budget sums — is exact rational
arithmetic with :class:`fractions.Fraction` and no rounding ever decides
whether a budget is spent.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from pets.errors import InvalidInputError

Rational = Fraction | int | float | str

# Text longer than this, or a decimal exponent beyond +-this, is refused: the
# exact Fraction of "1e-20000000" is 10**20000000 (49 s to build, measured),
# while every float (5e-324 .. 1.8e308) and any sensible parameter fits.
MAX_TEXT_LENGTH = 100
MAX_DECIMAL_EXPONENT = 400
"""What :func:`exact` accepts: Fraction, int, finite float, or a string (``"0.5"``, ``"1/32"``)."""


def exact(value: Rational, what: str = "value") -> Fraction:
    """``value`` as an exact :class:`Fraction` (a float is read as its shortest decimal repr)."""
    if isinstance(value, bool):
        raise InvalidInputError(f"{what} must be a number, got {value!r}")
    if isinstance(value, Fraction):
        return value
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(f"{what} must be finite, got {value!r}")
        return Fraction(Decimal(repr(value)))
    if isinstance(value, str):
        text = value.strip()
        if len(text) > MAX_TEXT_LENGTH:
            raise InvalidInputError(
                f"{what} {value[:40]!r}... is longer than {MAX_TEXT_LENGTH} characters"
            )
        try:
            if "/" in text:
                return Fraction(text)
            dec = Decimal(text)
        except (ValueError, ZeroDivisionError, InvalidOperation):
            raise InvalidInputError(f"{what} {value[:40]!r} is not a number") from None
        if not dec.is_finite():
            raise InvalidInputError(f"{what} must be finite, got {value[:40]!r}")
        if dec and abs(dec.adjusted()) > MAX_DECIMAL_EXPONENT:
            raise InvalidInputError(
                f"{what} {value[:40]!r} is out of range (|exponent| > {MAX_DECIMAL_EXPONENT})"
            )
        return Fraction(dec)
    raise InvalidInputError(f"{what} must be a number, got {type(value).__name__}")


def positive(value: Rational, what: str) -> Fraction:
    """:func:`exact`, and the result must be > 0."""
    out = exact(value, what)
    if out <= 0:
        raise InvalidInputError(f"{what} must be positive, got {format_rational(out)}")
    return out


def format_rational(value: Fraction) -> str:
    """``"1/32"``, ``"3"``: the exact text :func:`exact` reads back equal."""
    return str(value)
