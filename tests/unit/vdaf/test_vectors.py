"""Every JSON vector under tests/vectors/vdaf/, through one loader.

- ``Xof*.json``: the draft's XOF vectors (derived seed and a Field128 expansion),
  through both the fast and the public pycryptodome TurboSHAKE128 paths.
- ``Prio3*.json``: the draft's Prio3 vectors and pets' own Prio3BoundedVec
  vectors; :func:`pets.vdaf.vectors.check_vector` runs each vector's
  ``operations`` byte for byte and requires every ``success: false`` operation
  to raise a VdafError naming that step.

Set ``PETS_VDAF_EXTRA_VECTORS`` to a directory (e.g. the draft repository's
``test_vec/vdaf``) to run a larger published set through the same loader.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pets.vdaf import xof as xof_mod
from pets.vdaf.field import Field128
from pets.vdaf.vectors import check_vector, variant_of

VECTOR_DIR = Path(__file__).resolve().parents[2] / "vectors" / "vdaf"


def _prio3_files() -> list[Path]:
    files = sorted(VECTOR_DIR.glob("Prio3*.json"))
    extra = os.environ.get("PETS_VDAF_EXTRA_VECTORS")
    if extra:
        files += sorted(p for p in Path(extra).glob("Prio3*.json"))
    return files


PRIO3_FILES = _prio3_files()


def test_vector_set_is_complete() -> None:
    names = {p.name for p in PRIO3_FILES}
    for family in (
        "Prio3Count",
        "Prio3Sum",
        "Prio3SumVec",
        "Prio3Histogram",
        "Prio3MultihotCountVec",
        "Prio3SumVecWithMultiproof",
        "Prio3HigherDegree",
        "Prio3BoundedVec",
    ):
        assert f"{family}_0.json" in names
    assert sum("_bad_" in n for n in names) >= 17


@pytest.mark.parametrize("path", PRIO3_FILES, ids=lambda p: p.name)
def test_prio3_vector(path: Path) -> None:
    doc = json.loads(path.read_text())
    log = check_vector(variant_of(path.name), doc)
    if "_bad_" in path.name:
        assert "rejected as expected" in log[-1]
    else:
        assert log[-1] == "unshard: ok"


@pytest.mark.parametrize("name", ["XofTurboShake128", "XofFixedKeyAes128"])
@pytest.mark.parametrize("fast", [True, False])
def test_xof_vector(name: str, fast: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not fast:
        monkeypatch.setattr(xof_mod, "turboshake128", xof_mod._public_oneshot)
    elif xof_mod._FAST is None:
        pytest.skip("pycryptodome's raw Keccak layout not available")
    doc = json.loads((VECTOR_DIR / f"{name}.json").read_text())
    cls = getattr(xof_mod, name)
    seed, dst, binder = (bytes.fromhex(doc[k]) for k in ("seed", "dst", "binder"))
    assert cls.derive_seed(seed, dst, binder).hex() == doc["derived_seed"]
    vec = cls.expand_into_vec(Field128, seed, dst, binder, doc["length"])
    assert Field128.encode_vec(vec).hex() == doc["expanded_vec_field128"]


def test_xof_next_is_a_stream() -> None:
    """Successive ``next`` calls concatenate to one long read (draft §6.2)."""
    x = xof_mod.XofTurboShake128(bytes(32), b"dst", b"binder")
    parts = x.next(5) + x.next(0) + x.next(40)
    assert parts == xof_mod.XofTurboShake128(bytes(32), b"dst", b"binder").next(45)
    a = xof_mod.XofFixedKeyAes128(bytes(16), b"dst", b"binder")
    parts = a.next(5) + a.next(30) + a.next(1)
    assert parts == xof_mod.XofFixedKeyAes128(bytes(16), b"dst", b"binder").next(36)


def test_variant_names() -> None:
    assert variant_of("Prio3SumVec_12.json") == "Prio3SumVec"
    assert variant_of("dir/Prio3Count_bad_helper_seed.json") == "Prio3Count"
    assert variant_of("Prio3SumVecWithMultiproof_1.json") == "Prio3SumVecWithMultiproof"
    with pytest.raises(ValueError):
        variant_of("Poplar1_0.json")


def test_higher_degree_with_parameters_matches_published_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The parameterised Prio3HigherDegree (``degree``, ``gadget_calls``).

    The draft repository publishes this form of the test circuit. The values
    below come from its ``Prio3HigherDegree_37.json`` (degree 4, 8 calls,
    Field64, EVAL_OUTPUT_LEN 8). That file was generated with ``VERSION = 12``,
    so the DST is pinned to 12 here. Everything else is the draft-20 code path.
    """
    from pets.vdaf import prio3 as prio3_mod
    from pets.vdaf import prio3_higher_degree

    monkeypatch.setattr(prio3_mod, "VERSION", 12)
    vdaf = prio3_higher_degree(2, 4, 8)
    ctx = bytes.fromhex("736f6d65206170706c69636174696f6e")
    nonce, key, rand = bytes(range(16)), bytes(range(32)), bytes(range(64))
    cases = [
        ([0] * 8, "5127d69ab76c1f05d94c9c77", "96d95545e84c916ca1f0f74a9b61ba7df894251918603cd4"),
        ([3] * 8, "5427d69ab76c1f05dc4c9c77", "96d95545e84c916c99a53ddb233f381247d4d7d349de38b1"),
        (
            [0, 1, 2, 3] * 2,
            "5127d69ab76c1f05da4c9c77",
            "96d95545e84c916c8f0cd74574e06a4463befc6eaac75f2a",
        ),
    ]
    outs: list[list[list[int]]] = [[], []]
    for meas, leader_prefix, leader_vshare in cases:
        public, inputs = vdaf.shard(ctx, meas, nonce, rand)
        assert inputs[0].hex().startswith(leader_prefix)
        s0, v0 = vdaf.verify_init(key, ctx, 0, nonce, public, inputs[0])
        s1, v1 = vdaf.verify_init(key, ctx, 1, nonce, public, inputs[1])
        assert v0.hex() == leader_vshare
        assert v1.hex() == "6b26aaba16b36e93e8e8d22b1cfe789b0d04bb738406fbb7"
        msg = vdaf.verifier_shares_to_message(ctx, [v0, v1])
        outs[0].append(vdaf.verify_next(ctx, s0, msg))
        outs[1].append(vdaf.verify_next(ctx, s1, msg))
    agg = [vdaf.encode_agg_share(vdaf.aggregate(o)) for o in outs]
    assert agg[0].hex().startswith("f67582d026465e0f8de6d466e719dcbf")
    assert vdaf.unshard(agg, 3) == [3, 4, 5, 6, 3, 4, 5, 6]
