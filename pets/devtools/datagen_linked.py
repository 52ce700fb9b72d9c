"""Linked synthetic data: hospitals, municipal long-term care and insurer claims of one population.

Issue 16 item 4: data for trying private record linkage. One synthetic
population of ``population`` people (age, sex, home municipality, insurer)
is drawn first; three kinds of holders then keep records about some of them,
each keyed by a pseudonymous resident number written in its own messy way:

``hospitals`` (holders ``hospital-01``, ...), one row per inpatient stay, the
columns of :func:`pets.devtools.datagen.schema_for` ``("hospitals")`` plus
``patient_id``. Patients are drawn from the population, older people more
often; a person may have several stays (repeated ids: the dataset keeps its
``first`` stay) and stays at several hospitals. Ids look like ``R-0001-2345``
or `` r00012345 ``; normalisation ``nfkc, alnum_only, casefold``.

``ltc`` (holders ``municipality-01``, ...), the long-term-care benefit
records of the municipality's residents: one row per recipient per month
(1 to 3 months, so repeated ids; the dataset keeps the ``last``, current
month), ``care_level`` (support1, support2, care1 ... care5), ``service``
(home, day, facility) and ``care_cost`` in thousands of yen [0, 3000].
Recipients are people of 65 and over, more often the older. Ids are written
with spaces and sometimes full-width characters (``Ｒ０００１ ２３４５``);
normalisation ``nfkc, remove_whitespace, casefold``.

``claims`` (holders ``insurer-01``, ...), the claims of each insurer's
members: one row per claim (1 to 4 per claimant, ``sum`` per person),
``claim_type`` (outpatient, inpatient, pharmacy, dental) and ``amount`` in
thousands of yen [0, 2000] (the bound of a person's total). Ids in upper or
lower case with stray spaces around; normalisation ``nfkc, strip, casefold``.

All three normalise to the canonical ``r`` + 8 digits and share the linkage
domain ``resident``. Half a percent of the rows of each holder have an empty
id (dropped by every side). Municipalities and insurers partition the
population, so value-side people never repeat across holders of one side.

:class:`Overlaps` counts the people of each side and of each intersection
(ids not blank, no filters): the *known overlaps*, which ``pets gen-data``
writes to ``linkage.json``. :func:`iter_linked` yields one holder at a time,
so writing files needs memory for the population and one holder's rows. The data is **not secret**
(``numpy.random``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from pets.devtools import datagen as dg
from pets.query.schema import Column, Dataset, Linkage, Schema

KIND = "linked"
DOMAIN = "resident"
DATASETS: tuple[str, ...] = ("hospitals", "ltc", "claims")
HOLDER_PREFIX = {"hospitals": "hospital", "ltc": "municipality", "claims": "insurer"}
CARE_LEVELS = ("support1", "support2", "care1", "care2", "care3", "care4", "care5")
SERVICES = ("home", "day", "facility")
CLAIM_TYPES = ("outpatient", "inpatient", "pharmacy", "dental")
LINKAGES = {
    "hospitals": Linkage(DOMAIN, "patient_id", "first", ("nfkc", "alnum_only", "casefold")),
    "ltc": Linkage(DOMAIN, "resident_id", "last", ("nfkc", "remove_whitespace", "casefold")),
    "claims": Linkage(DOMAIN, "member_id", "sum", ("nfkc", "strip", "casefold")),
}
_MISSING_ID_P = 0.005
_CARE_COST = np.array([50.0, 100.0, 170.0, 200.0, 270.0, 310.0, 360.0])  # kyen / month
_SERVICE_FACTOR = np.array([1.0, 1.2, 2.6])
_CLAIM_KYEN = np.array([8.0, 400.0, 12.0, 15.0])
_CLAIM_P = np.array([0.55, 0.05, 0.3, 0.1])


@dataclass(frozen=True)
class Population:
    """The people every holder's records are about (canonical ids ``r`` + 8 digits)."""

    age: np.ndarray
    sex: np.ndarray  # 0 = F, 1 = M
    municipality: np.ndarray  # index of the person's municipality holder
    insurer: np.ndarray  # index of the person's insurer holder

    def __len__(self) -> int:
        return len(self.age)

    def canonical(self, person: np.ndarray) -> np.ndarray:
        """The canonical ids of ``person`` (indices), as an object array of str."""
        return np.char.mod("r%08d", person + 1).astype(object)


def population_size(holders: int, rows: int) -> int:
    """People in the population: one per hospital stay generated, at least 100."""
    return max(100, holders * rows)


def draw_population(rng: np.random.Generator, size: int, holders: int) -> Population:
    """A population skewed old (as the inpatients of :mod:`pets.devtools.datagen`)."""
    child = rng.random(size) < 0.15
    adult = np.clip(np.rint(95 - rng.gamma(2.6, 14.0, size=size)), 18, 105)
    age = np.where(child, rng.integers(0, 18, size=size), adult).astype(np.int64)
    sex = (rng.random(size) < 0.48).astype(np.int64)
    municipality = rng.integers(0, holders, size=size)
    insurer = rng.integers(0, holders, size=size)
    return Population(age, sex, municipality, insurer)


def schema(max_rows: int) -> Schema:
    """The three linked datasets, each with its linkage declaration."""
    hospitals = dg.schema_for("hospitals", max_rows).dataset("hospitals")
    return Schema(
        (
            Dataset("hospitals", hospitals.columns, max_rows, linkage=LINKAGES["hospitals"]),
            Dataset(
                "ltc",
                (
                    Column("care_level", "category", domain=CARE_LEVELS),
                    Column("service", "category", domain=SERVICES),
                    Column("care_cost", "float", 0, 3000, 10),
                ),
                max_rows,
                linkage=LINKAGES["ltc"],
            ),
            Dataset(
                "claims",
                (
                    Column("claim_type", "category", domain=CLAIM_TYPES),
                    Column("amount", "float", 0, 2000, 10),
                ),
                max_rows,
                linkage=LINKAGES["claims"],
            ),
        )
    )


Columns = dict[str, np.ndarray]


def hospital_rows(
    rng: np.random.Generator, people: Population, n: int
) -> tuple[Columns, np.ndarray]:
    """``n`` stays at one hospital: the ``hospitals`` columns and messy ``patient_id``.

    Also returns the population index of each row whose id is not blank (as do
    :func:`ltc_rows` and :func:`claims_rows`).
    """
    weight = 0.2 + (people.age / 60.0) ** 2
    person = rng.choice(len(people), size=n, p=weight / weight.sum())
    age = people.age[person]
    p = dg._PREFECTURE_WEIGHTS / dg._PREFECTURE_WEIGHTS.sum()
    home = rng.choice(len(dg.PREFECTURES), p=p)
    prefecture = np.where(rng.random(n) < 0.8, home, rng.choice(len(dg.PREFECTURES), size=n, p=p))
    band = np.where(age < 18, 0, np.where(age < 65, 1, 2))
    cumulative = np.cumsum(dg._DIAGNOSIS_MIX, axis=1)[band]
    diagnosis = (rng.random(n)[:, None] > cumulative).sum(axis=1).clip(0, len(dg.DIAGNOSES) - 1)
    median_stay = dg._STAY_DAYS[diagnosis] * (0.6 + age / 120)
    stay = np.clip(np.rint(median_stay * rng.lognormal(0.0, 0.6, size=n)), 1, 365)
    cost = (30 + dg._DAILY_KYEN[diagnosis] * stay) * rng.lognormal(0.0, 0.25, size=n)
    cost = cost + (rng.random(n) < dg._SURGERY_P[diagnosis]) * rng.lognormal(6.8, 0.5, size=n)
    ids, kept = _blank_some(rng, _hospital_ids(rng, people.canonical(person)))
    return {
        "patient_id": ids,
        "age": age.astype(np.float64),
        "sex": np.asarray(("F", "M"), dtype=object)[people.sex[person]],
        "prefecture": np.asarray(dg.PREFECTURES, dtype=object)[prefecture],
        "diagnosis": np.asarray(dg.DIAGNOSES, dtype=object)[diagnosis],
        "length_of_stay": stay.astype(np.float64),
        "cost": np.clip(np.round(cost, 1), 0, 5000),
    }, person[kept]


def ltc_rows(
    rng: np.random.Generator, people: Population, municipality: int
) -> tuple[Columns, np.ndarray]:
    """The care records of one municipality's recipients (1 to 3 monthly rows each)."""
    residents = np.flatnonzero(people.municipality == municipality)
    age = people.age[residents]
    p_care = np.clip((age - 60) / 35.0, 0, 1) ** 1.2 * 0.8
    recipients = residents[rng.random(len(residents)) < p_care]
    months = rng.integers(1, 4, size=len(recipients))
    person = np.repeat(recipients, months)
    n = len(person)
    old = np.clip((people.age[person] - 65) / 35.0, 0, 1)
    level = np.clip(np.rint(old * 6 + rng.normal(0, 1.3, size=n)), 0, len(CARE_LEVELS) - 1)
    level = level.astype(np.int64)
    service = np.where(level >= 4, rng.choice(3, size=n, p=[0.3, 0.2, 0.5]), rng.choice(3, size=n))
    cost = _CARE_COST[level] * _SERVICE_FACTOR[service] * rng.lognormal(0.0, 0.2, size=n)
    ids, kept = _blank_some(rng, _ltc_ids(rng, people.canonical(person)))
    return {
        "resident_id": ids,
        "care_level": np.asarray(CARE_LEVELS, dtype=object)[level],
        "service": np.asarray(SERVICES, dtype=object)[service],
        "care_cost": np.clip(np.round(cost, 1), 0, 3000),
    }, person[kept]


def claims_rows(
    rng: np.random.Generator, people: Population, insurer: int
) -> tuple[Columns, np.ndarray]:
    """The claims of one insurer's members (60% claim, 1 to 4 claims each)."""
    members = np.flatnonzero(people.insurer == insurer)
    claimants = members[rng.random(len(members)) < 0.6]
    person = np.repeat(claimants, rng.integers(1, 5, size=len(claimants)))
    rng.shuffle(person)
    n = len(person)
    kind = rng.choice(len(CLAIM_TYPES), size=n, p=_CLAIM_P)
    amount = _CLAIM_KYEN[kind] * rng.lognormal(0.0, 0.7, size=n)
    ids, kept = _blank_some(rng, _claim_ids(rng, people.canonical(person)))
    return {
        "member_id": ids,
        "claim_type": np.asarray(CLAIM_TYPES, dtype=object)[kind],
        "amount": np.clip(np.round(amount, 1), 0, 2000),
    }, person[kept]


@dataclass(frozen=True, eq=False)
class HolderRows:
    """One holder's rows of one dataset, and who they are about (for the known overlaps)."""

    holder: str
    dataset: str
    columns: Columns
    people: np.ndarray  # population index of every row whose id is not blank

    def __len__(self) -> int:
        return len(self.columns[LINKAGES[self.dataset].id_column])


def iter_linked(holders: int, rows: int, seed: int) -> Iterator[HolderRows]:
    """Every holder's rows, one holder at a time (hospitals, then municipalities, insurers).

    Hospitals have ``rows`` stays each; municipalities and insurers as many
    rows as their share of the population gives. The data depends on
    ``seed``, ``holders`` and ``rows`` (the population does). Memory: the
    population and one holder's rows.
    """
    pop_seed, *holder_seeds = np.random.SeedSequence(seed).spawn(1 + 3 * holders)
    people = draw_population(
        np.random.default_rng(pop_seed), population_size(holders, rows), holders
    )
    width = max(2, len(str(holders)))
    for k, dataset in enumerate(DATASETS):
        for i in range(holders):
            rng = np.random.default_rng(holder_seeds[k * holders + i])
            if dataset == "hospitals":
                columns, who = hospital_rows(rng, people, rows)
            elif dataset == "ltc":
                columns, who = ltc_rows(rng, people, i)
            else:
                columns, who = claims_rows(rng, people, i)
            yield HolderRows(f"{HOLDER_PREFIX[dataset]}-{i + 1:0{width}d}", dataset, columns, who)


class Overlaps:
    """The known overlaps: people per dataset and per intersection (ids not blank, no filters)."""

    def __init__(self, holders: int, rows: int) -> None:
        size = population_size(holders, rows)
        self._present = {d: np.zeros(size, dtype=bool) for d in DATASETS}
        self.most_rows = 1

    def add(self, part: HolderRows) -> None:
        """Count one holder's rows in."""
        self._present[part.dataset][part.people] = True
        self.most_rows = max(self.most_rows, len(part))

    def to_dict(self) -> dict[str, object]:
        """``{"domain", "persons": {dataset: n}, "intersections": {"a&b": n, ...}}``."""
        present = self._present
        both: dict[str, int] = {}
        for r in (2, 3):
            for combo in itertools.combinations(DATASETS, r):
                mask = np.logical_and.reduce([present[d] for d in combo])
                both["&".join(combo)] = int(np.count_nonzero(mask))
        persons = {d: int(np.count_nonzero(m)) for d, m in present.items()}
        return {"domain": DOMAIN, "persons": persons, "intersections": both}

    @property
    def max_rows(self) -> int:
        """The schema's ``max_rows``: the largest holder's rows rounded up to a power of ten."""
        return dg.max_rows_for(self.most_rows)


# -- messy identifiers ---------------------------------------------------------------

_FULL_WIDTH = str.maketrans(
    "0123456789rR", "".join(chr(0xFF10 + d) for d in range(10)) + "\uff52\uff32"
)


def _hospital_ids(rng: np.random.Generator, ids: np.ndarray) -> np.ndarray:
    style = rng.integers(0, 3, size=len(ids))
    out = np.empty(len(ids), dtype=object)
    for i, (text, s) in enumerate(zip(ids.tolist(), style.tolist(), strict=True)):
        if s == 0:
            out[i] = f"R-{text[1:5]}-{text[5:]}"
        elif s == 1:
            out[i] = f" {text} "
        else:
            out[i] = text.upper()
    return out


def _ltc_ids(rng: np.random.Generator, ids: np.ndarray) -> np.ndarray:
    style = rng.integers(0, 3, size=len(ids))
    out = np.empty(len(ids), dtype=object)
    for i, (text, s) in enumerate(zip(ids.tolist(), style.tolist(), strict=True)):
        if s == 0:
            out[i] = f"{text[:5]} {text[5:]}".upper().translate(_FULL_WIDTH)
        elif s == 1:
            out[i] = f"{text[:1]} {text[1:5]} {text[5:]}"
        else:
            out[i] = text
    return out


def _claim_ids(rng: np.random.Generator, ids: np.ndarray) -> np.ndarray:
    style = rng.integers(0, 3, size=len(ids))
    out = np.empty(len(ids), dtype=object)
    for i, (text, s) in enumerate(zip(ids.tolist(), style.tolist(), strict=True)):
        out[i] = text.upper() if s == 0 else f"  {text}" if s == 1 else text
    return out


def _blank_some(rng: np.random.Generator, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Blank about half a percent of the ids; return the ids and the mask of those kept."""
    blank = rng.random(len(ids)) < _MISSING_ID_P
    ids[blank] = ""
    return ids, ~blank


def to_csv(dataset: Dataset, columns: Columns) -> str:
    """One holder's rows as CSV text: the id column first, then the dataset's columns."""
    assert dataset.linkage is not None
    header = [dataset.linkage.id_column, *dataset.column_names]
    values: list[list[object]] = [columns[dataset.linkage.id_column].tolist()]
    for column in dataset.columns:
        data = columns[column.name]
        if column.type == "int":
            values.append(data.astype(np.int64).tolist())
        elif column.type == "float":
            values.append([f"{v:.1f}" for v in data.tolist()])
        else:
            values.append(data.tolist())
    return dg._csv(header, values)
