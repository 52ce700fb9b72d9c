"""Policy parsing, canonical predicate strings and implication."""

from __future__ import annotations

import pytest

from pets.errors import InvalidInputError, InvalidProofError
from pets.zk.policy import Predicate, check_policy, implies, parse_policy, parse_predicate


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("age>=18", "age >= 18"),
        ("age > 17", "age >= 18"),
        ("age < 66", "age <= 65"),
        ("18 <= age <= 65", "age in [18, 65]"),
        ("age in [ 18 , 65 ]", "age in [18, 65]"),
        ("purpose in {research, public-health}", "purpose in {public-health, research}"),
        ("purpose in {research, research}", "purpose in {research}"),
        ('country = "New Zealand"', 'country == "New Zealand"'),
        ("country == JP", "country == JP"),
        ("code == 7", "code == 7"),
        ("reveal name", "reveal name"),
    ],
)
def test_canonical_forms(text: str, canonical: str) -> None:
    pred = parse_predicate(text)
    assert str(pred) == canonical
    assert parse_predicate(str(pred)) == pred


@pytest.mark.parametrize(
    "text",
    [
        "",
        "age",
        "age >= -1",
        "age >= x",
        "age < 0",
        "age in [5, 4]",
        "age in {}",
        "1age >= 3",
        "age ~ 3",
        "age in {a b}",
    ],
)
def test_invalid_predicates(text: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_predicate(text)


def test_policy_split_respects_braces_and_quotes() -> None:
    policy = parse_policy(
        'accreditation >= 2 and purpose in {public-health, research} and team == "r and d"'
    )
    assert [str(p) for p in policy.predicates] == [
        "accreditation >= 2",
        "purpose in {public-health, research}",
        'team == "r and d"',
    ]
    assert str(policy).startswith("accreditation >= 2 and ")
    with pytest.raises(InvalidInputError):
        parse_policy("  and ")


@pytest.mark.parametrize(
    ("proven", "wanted", "max_value", "ok"),
    [
        (["age >= 21"], "age >= 18", None, True),
        (["age >= 17"], "age >= 18", None, False),
        (["age in [20, 30]"], "age >= 18", None, True),
        (["age in [20, 30]"], "age <= 30", None, True),
        (["age in [20, 30]"], "age in [18, 40]", None, True),
        (["age in [20, 30]"], "age in [21, 40]", None, False),
        (["age >= 18"], "age <= 100", 100, True),
        (["age >= 18"], "age <= 100", None, False),
        (["age >= 18", "age <= 20"], "age in {18, 19, 20}", None, True),
        (["age >= 18", "age <= 21"], "age in {18, 19, 20}", None, False),
        (["age == 42"], "age >= 40", None, True),
        (["age in {41, 42}"], "age >= 40", None, True),
        (["p in {a, b}"], "p in {a, b, c}", None, True),
        (["p in {a, d}"], "p in {a, b, c}", None, False),
        (["p == a"], "p in {a}", None, True),
        (["p in {a, b}", "p in {b, c}"], "p == b", None, True),
        (["reveal p"], "reveal p", None, True),
        (["p == a"], "reveal p", None, False),
        (["q >= 100"], "p >= 1", None, False),
    ],
)
def test_implication(proven: list[str], wanted: str, max_value: int | None, ok: bool) -> None:
    facts = [parse_predicate(p) for p in proven]
    assert implies(facts, parse_predicate(wanted), max_value=max_value) is ok


def test_check_policy_returns_policy_strings_or_names_the_gap() -> None:
    assert check_policy("age > 17 and p in {a, b}", ["age >= 20", "p == a"]) == [
        "age >= 18",
        "p in {a, b}",
    ]
    with pytest.raises(InvalidProofError, match=r"does not prove 'p in \{a, b\}'"):
        check_policy("age > 17 and p in {a, b}", ["age >= 20"])


def test_predicate_validation() -> None:
    with pytest.raises(InvalidInputError):
        Predicate("a", "~", (1,))
    with pytest.raises(InvalidInputError):
        Predicate("a", ">=", ())


def test_nothing_is_implied_about_an_attribute_without_facts() -> None:
    from pets.zk.policy import Predicate, implies, parse_predicate

    wanted = parse_predicate("clearance >= 0")
    assert not implies([], wanted)  # the credential may not have the attribute at all
    assert implies([], wanted, max_value=10)  # a certified integer attribute: trivially true
    assert isinstance(wanted, Predicate)


def test_set_predicates_are_canonical_however_built() -> None:
    from pets.zk.policy import IN, Predicate, parse_predicate

    built = Predicate("purpose", IN, ("research", "public-health", "research"))
    assert str(built) == str(parse_predicate("purpose in {research, public-health}"))
    assert built.values == ("public-health", "research")
