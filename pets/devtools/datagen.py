"""Deterministic synthetic data for demos, tests and benchmarks.

:func:`generate` returns, for ``holders`` data holders, the schema (TOML) of
all datasets of a kind and each holder's data (CSV text for tables, a float64
array for vector datasets). It is pure: the CLI writes the files.

The data is **not secret**: it is drawn with ``numpy.random.default_rng``,
which the project otherwise never uses for anything secret. Each holder's data
comes from its own child of ``numpy.random.SeedSequence(seed)``, so a holder's
rows depend only on ``seed``, its index and ``rows``, not on how many holders
were generated.

Kinds:

``hospitals`` (holders ``hospital-01``, ...; one dataset ``hospitals``), one
row per inpatient stay: ``age`` int [0, 110]; ``sex`` (F, M); ``prefecture``
(8 large prefectures, most patients from the hospital's own); ``diagnosis``
(ICD-10 chapter letter: C neoplasms, E endocrine, I circulatory, J
respiratory, K digestive, M musculoskeletal, N genitourinary, S injury;
mix depends on age); ``length_of_stay`` int days [0, 365] (log-normal,
longer for older patients); ``cost`` float in **thousands of yen** [0, 5000]
(i.e. up to 5,000,000 yen), scale 10 (100-yen resolution), log-normal with
occasional surgery.

Why thousands of yen: a variance query sums squares. In yen at scale 1 one
square can reach (5e6)^2 = 2.5e13, so the 64-bit ring only holds the sum of
squares of 2^63 / 2.5e13 ~ 368,000 rows: 1000 hospitals could contribute
only 368 stays each. In thousands of yen at scale 10 a square is at most
(5e4)^2 = 2.5e9, so about 3.7e9 rows fit: 1000 holders x 3.7 million rows,
far above ``max_rows``, while costs keep a 100-yen resolution.

``supply_chain`` (holders ``supplier-01``, ...), dataset ``supply_chain``, one
row per activity record of a company: ``supplier`` (its upstream supplier, 8
regional firms), ``product`` (6 product lines), ``stage`` (raw_material,
manufacturing, transport, retail), ``kg_co2e`` float [0, 100000] scale 100
(heavy-tailed log-normal by stage and product). Sums of ``kg_co2e`` are safe
for ~9e11 rows; a *variance* of ``kg_co2e`` over more than ~92,000 rows in
total needs a narrower ``clip`` (squares reach 1e14 at scale 100;
``QueryPlan.max_holders`` tells). Vector dataset ``emissions_daily``: 365
daily totals in kg CO2e per holder, [0, 1e6] scale 100, with seasonal and
weekly cycles.

``linked`` (holders ``hospital-01``, ``municipality-01``, ``insurer-01``, ...;
datasets ``hospitals``, ``ltc``, ``claims``): records about one synthetic
population, each dataset with a messy pseudonymous id column and a linkage
declaration (domain ``resident``), for linked queries; see
:mod:`pets.devtools.datagen_linked`. ``GeneratedData.overlaps`` holds the
known people per dataset and per intersection.

``max_rows`` in the schema is ``rows`` rounded up to a power of ten (at least
100), so every generated holder is within it (``linked``: the largest
holder's rows).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pets.errors import InvalidInputError
from pets.query.schema import Column, Dataset, Schema

KINDS: tuple[str, ...] = ("hospitals", "supply_chain")
#: Every kind ``generate`` makes: the unlinked ones and ``linked`` (three linked datasets).
ALL_KINDS: tuple[str, ...] = (*KINDS, "linked")

PREFECTURES = ("Tokyo", "Kanagawa", "Osaka", "Aichi", "Saitama", "Chiba", "Hyogo", "Fukuoka")
_PREFECTURE_WEIGHTS = np.array([14.0, 9.2, 8.8, 7.5, 7.3, 6.3, 5.4, 5.1])
DIAGNOSES = ("C", "E", "I", "J", "K", "M", "N", "S")
# Diagnosis mix by age band (children, adults 18-64, 65+), in DIAGNOSES order.
_DIAGNOSIS_MIX = np.array(
    [
        [0.03, 0.05, 0.02, 0.38, 0.14, 0.05, 0.06, 0.27],
        [0.17, 0.07, 0.12, 0.10, 0.19, 0.12, 0.08, 0.15],
        [0.23, 0.05, 0.27, 0.16, 0.10, 0.08, 0.06, 0.05],
    ]
)
_STAY_DAYS = np.array([14.0, 11.0, 16.0, 10.0, 8.0, 18.0, 9.0, 20.0])  # median stay
_DAILY_KYEN = np.array([70.0, 40.0, 80.0, 45.0, 55.0, 60.0, 50.0, 65.0])  # per day
_SURGERY_P = np.array([0.35, 0.02, 0.30, 0.03, 0.25, 0.30, 0.10, 0.40])

SUPPLIERS = (
    "hokkaido_pulp",
    "tohoku_metals",
    "kanto_chemical",
    "chubu_parts",
    "kansai_textile",
    "chugoku_steel",
    "shikoku_plastics",
    "kyushu_semicon",
)
PRODUCTS = ("battery", "bicycle", "laptop", "smartphone", "solar_panel", "t_shirt")
STAGES = ("raw_material", "manufacturing", "transport", "retail")
_STAGE_P = np.array([0.35, 0.30, 0.25, 0.10])
_STAGE_KG = np.array([800.0, 1200.0, 150.0, 40.0])  # median kg CO2e per record
_PRODUCT_FACTOR = np.array([3.0, 0.8, 1.5, 0.6, 4.0, 0.2])
DAYS = 365


@dataclass(frozen=True)
class GeneratedData:
    """A generated set: the schema TOML and, per holder, its datasets' data.

    ``files[holder][dataset]`` is CSV text (table datasets) or a float64
    array (vector datasets), ready for ``parse_csv`` / ``Table.from_vector``.
    """

    kind: str
    schema_toml: str
    files: dict[str, dict[str, str | np.ndarray]] = field(default_factory=dict)
    overlaps: dict[str, object] | None = None  # kind linked: the known overlaps

    @property
    def schema(self) -> Schema:
        """The parsed schema."""
        return Schema.from_toml(self.schema_toml)

    @property
    def holders(self) -> list[str]:
        """Holder names in order."""
        return list(self.files)


def generate(kind: str, holders: int, rows: int, seed: int) -> GeneratedData:
    """Synthetic data of ``kind`` for ``holders`` holders of ``rows`` rows each."""
    if kind not in ALL_KINDS:
        raise InvalidInputError(f"unknown data kind {kind!r} (one of {', '.join(ALL_KINDS)})")
    for name, value, least in (("holders", holders, 1), ("rows", rows, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise InvalidInputError(f"{name} must be an integer >= {least}, got {value!r}")
    if kind == "linked":
        return _generate_linked(holders, rows, seed)
    schema = schema_for(kind, max_rows_for(rows))
    prefix = "hospital" if kind == "hospitals" else "supplier"
    width = max(2, len(str(holders)))
    children = np.random.SeedSequence(seed).spawn(holders)
    files: dict[str, dict[str, str | np.ndarray]] = {}
    for i, child in enumerate(children):
        rng = np.random.default_rng(child)
        name = f"{prefix}-{i + 1:0{width}d}"
        if kind == "hospitals":
            files[name] = {"hospitals": _hospital_csv(rng, rows)}
        else:
            files[name] = {
                "supply_chain": _supply_chain_csv(rng, rows),
                "emissions_daily": _daily_emissions(rng),
            }
    header = f"# pets synthetic data schema: kind={kind}, seed={seed} (non-secret, numpy RNG)\n"
    return GeneratedData(kind, header + schema.to_toml(), files)


def _generate_linked(holders: int, rows: int, seed: int) -> GeneratedData:
    from pets.devtools import datagen_linked as dl

    overlaps = dl.Overlaps(holders, rows)
    parts = []
    for part in dl.iter_linked(holders, rows, seed):
        overlaps.add(part)
        parts.append(part)
    schema = dl.schema(overlaps.max_rows)
    files: dict[str, dict[str, str | np.ndarray]] = {
        p.holder: {p.dataset: dl.to_csv(schema.dataset(p.dataset), p.columns)} for p in parts
    }
    header = f"# pets synthetic data schema: kind=linked, seed={seed} (non-secret, numpy RNG)\n"
    return GeneratedData("linked", header + schema.to_toml(), files, overlaps.to_dict())


def max_rows_for(rows: int) -> int:
    """``rows`` rounded up to a power of ten, at least 100."""
    out = 100
    while out < rows:
        out *= 10
    return out


def schema_for(kind: str, max_rows: int) -> Schema:
    """The schema of every dataset of ``kind``."""
    if kind == "hospitals":
        return Schema(
            (
                Dataset(
                    "hospitals",
                    (
                        Column("age", "int", 0, 110, 1),
                        Column("sex", "category", domain=("F", "M")),
                        Column("prefecture", "category", domain=PREFECTURES),
                        Column("diagnosis", "category", domain=DIAGNOSES),
                        Column("length_of_stay", "int", 0, 365, 1),
                        Column("cost", "float", 0, 5000, 10),
                    ),
                    max_rows,
                ),
            )
        )
    if kind == "supply_chain":
        return Schema(
            (
                Dataset(
                    "supply_chain",
                    (
                        Column("supplier", "category", domain=SUPPLIERS),
                        Column("product", "category", domain=PRODUCTS),
                        Column("stage", "category", domain=STAGES),
                        Column("kg_co2e", "float", 0, 100_000, 100),
                    ),
                    max_rows,
                ),
                Dataset(
                    "emissions_daily", (), 1, kind="vector", length=DAYS, lo=0, hi=1e6, scale=100
                ),
            )
        )
    raise InvalidInputError(f"unknown data kind {kind!r} (one of {', '.join(KINDS)})")


def _hospital_csv(rng: np.random.Generator, n: int) -> str:
    p = _PREFECTURE_WEIGHTS / _PREFECTURE_WEIGHTS.sum()
    home = rng.choice(len(PREFECTURES), p=p)
    local = rng.random(n) < rng.uniform(0.7, 0.9)
    prefecture = np.where(local, home, rng.choice(len(PREFECTURES), size=n, p=p))
    child = rng.random(n) < 0.1
    adult_age = 100 - rng.gamma(3.0, 12.0, size=n)
    age = np.where(child, rng.integers(0, 18, size=n), np.clip(np.rint(adult_age), 18, 110))
    age = age.astype(np.int64)
    sex = (rng.random(n) < 0.48).astype(np.int64)  # 0 = F, 1 = M
    band = np.where(age < 18, 0, np.where(age < 65, 1, 2))
    cumulative = np.cumsum(_DIAGNOSIS_MIX, axis=1)[band]
    diagnosis = (rng.random(n)[:, None] > cumulative).sum(axis=1).clip(0, len(DIAGNOSES) - 1)
    median_stay = _STAY_DAYS[diagnosis] * (0.6 + age / 120)
    stay = np.rint(median_stay * rng.lognormal(0.0, 0.6, size=n))
    stay = np.where(rng.random(n) < 0.05, 0, np.clip(stay, 1, 365)).astype(np.int64)
    cost = (30 + _DAILY_KYEN[diagnosis] * stay) * rng.lognormal(0.0, 0.25, size=n)
    surgery = rng.random(n) < _SURGERY_P[diagnosis]
    cost = cost + surgery * rng.lognormal(np.log(900.0), 0.5, size=n)
    cost = np.clip(np.round(cost, 1), 0, 5000)
    return _csv(
        ("age", "sex", "prefecture", "diagnosis", "length_of_stay", "cost"),
        (
            age.tolist(),
            _labels(("F", "M"), sex),
            _labels(PREFECTURES, prefecture),
            _labels(DIAGNOSES, diagnosis),
            stay.tolist(),
            [f"{c:.1f}" for c in cost.tolist()],
        ),
    )


def _supply_chain_csv(rng: np.random.Generator, n: int) -> str:
    supplier_p = rng.dirichlet(np.full(len(SUPPLIERS), 0.6))
    product_p = rng.dirichlet(np.full(len(PRODUCTS), 0.4))
    supplier = rng.choice(len(SUPPLIERS), size=n, p=supplier_p)
    product = rng.choice(len(PRODUCTS), size=n, p=product_p)
    stage = rng.choice(len(STAGES), size=n, p=_STAGE_P)
    median = _STAGE_KG[stage] * _PRODUCT_FACTOR[product]
    kg = np.clip(np.round(median * rng.lognormal(0.0, 1.0, size=n), 2), 0, 100_000)
    return _csv(
        ("supplier", "product", "stage", "kg_co2e"),
        (
            _labels(SUPPLIERS, supplier),
            _labels(PRODUCTS, product),
            _labels(STAGES, stage),
            [f"{v:.2f}" for v in kg.tolist()],
        ),
    )


def _daily_emissions(rng: np.random.Generator) -> np.ndarray:
    day = np.arange(DAYS)
    base = rng.lognormal(np.log(2000.0), 0.8)
    seasonal = 1 + 0.2 * np.cos(2 * np.pi * (day - 20) / DAYS)
    weekly = np.where(day % 7 >= 5, 0.6, 1.0)
    noise = rng.lognormal(0.0, 0.15, size=DAYS)
    return np.clip(np.round(base * seasonal * weekly * noise, 2), 0, 1e6)


def _labels(domain: Sequence[str], codes: np.ndarray) -> list[str]:
    return np.asarray(domain, dtype=object)[codes].tolist()


def _csv(header: Sequence[str], columns: Sequence[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(zip(*columns, strict=True))
    return out.getvalue()
