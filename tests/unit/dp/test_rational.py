"""Privacy parameters read as the exact decimals they spell, and bounded in size."""

from __future__ import annotations

from fractions import Fraction

import pytest

from pets.dp.rational import MAX_DECIMAL_EXPONENT, MAX_TEXT_LENGTH, exact
from pets.errors import InvalidInputError


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0.1", Fraction(1, 10)),
        ("1/32", Fraction(1, 32)),
        ("1e-300", Fraction(1, 10**300)),
        (" 2.5E+3 ", Fraction(2500)),
        (f"1e-{MAX_DECIMAL_EXPONENT}", Fraction(1, 10**MAX_DECIMAL_EXPONENT)),
        (f"1e{MAX_DECIMAL_EXPONENT}", Fraction(10**MAX_DECIMAL_EXPONENT)),
    ],
)
def test_decimal_text_is_exact(text: str, value: Fraction) -> None:
    assert exact(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "1e-20000000",  # Fraction(Decimal(...)) would build 10**20000000 (49 s, measured)
        "1e20000000",
        f"1e-{MAX_DECIMAL_EXPONENT + 1}",
        "0." + "0" * MAX_DECIMAL_EXPONENT + "1",
        "1" * (MAX_TEXT_LENGTH + 1),
        "1/" + "3" * (MAX_TEXT_LENGTH + 1),
    ],
)
def test_huge_numbers_are_refused_quickly(text: str) -> None:
    with pytest.raises(InvalidInputError, match="epsilon") as info:
        exact(text, "epsilon")
    assert len(str(info.value)) < 200  # the text is not echoed whole


def test_floats_and_fractions_are_unchanged() -> None:
    assert exact(0.1) == Fraction(1, 10)
    assert exact(Fraction(1, 3)) == Fraction(1, 3)
    assert exact(5e-324) == Fraction(5, 10**324)
