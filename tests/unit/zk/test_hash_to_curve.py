"""RFC 9380 expand_message_xmd (K.1) and hash_to_curve (J.8.1) vectors, on both backends."""

from __future__ import annotations

import pytest

from pets.errors import InvalidInputError
from pets.zk import hash_to_curve as h2c
from pets.zk.curve import N, is_on_curve
from pets.zk.group import get_group
from tests.unit.zk.helpers import BACKENDS, load_vectors

XMD = load_vectors("expand_message_xmd_sha256_rfc9380_k1.json")
H2C = load_vectors("hash_to_curve_secp256k1_rfc9380_j81.json")


def test_vector_files_are_complete() -> None:
    assert len(XMD["vectors"]) == 10
    assert len(H2C["vectors"]) == 5
    assert H2C["dst"] == "QUUX-V01-CS02-with-secp256k1_XMD:SHA-256_SSWU_RO_"


@pytest.mark.parametrize(
    "vector", XMD["vectors"], ids=lambda v: f"{v['msg'][:8]}-{v['len_in_bytes']}"
)
def test_expand_message_xmd_k1(vector: dict) -> None:
    out = h2c.expand_message_xmd(
        vector["msg"].encode(), XMD["dst"].encode(), vector["len_in_bytes"]
    )
    assert out.hex() == vector["uniform_bytes"]


@pytest.mark.parametrize("vector", H2C["vectors"], ids=lambda v: v["msg"][:8] or "empty")
def test_hash_to_curve_j81_every_step(vector: dict) -> None:
    msg, dst = vector["msg"].encode(), H2C["dst"].encode()
    u = h2c.hash_to_field(msg, dst, 2)
    assert [f"{x:064x}" for x in u] == vector["u"]
    for ui, q in zip(u, ("Q0", "Q1"), strict=True):
        x, y = h2c.map_to_curve(ui)
        assert (f"{x:064x}", f"{y:064x}") == (vector[q]["x"], vector[q]["y"])
    x, y = h2c.hash_to_curve(msg, dst)
    assert (f"{x:064x}", f"{y:064x}") == (vector["P"]["x"], vector["P"]["y"])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("vector", H2C["vectors"], ids=lambda v: v["msg"][:8] or "empty")
def test_group_hash_to_point_matches_vectors(backend: str, vector: dict) -> None:
    point = get_group(backend).hash_to_point(vector["msg"].encode(), H2C["dst"].encode())
    y = int(vector["P"]["y"], 16)
    assert point.to_bytes().hex() == f"{2 + (y & 1):02x}" + vector["P"]["x"]


def test_sswu_output_is_on_isogenous_curve() -> None:
    for u in (0, 1, 2, h2c.P - 1, 12345678901234567890):
        x, y = h2c.map_to_curve_sswu(u)
        assert (y * y - (x**3 + h2c.ISO_A * x + h2c.ISO_B)) % h2c.P == 0
        mapped = h2c.map_to_curve(u)
        assert mapped is not None and is_on_curve(*mapped)


def test_empty_dst_rejected() -> None:
    with pytest.raises(InvalidInputError):
        h2c.expand_message_xmd(b"abc", b"", 32)


def test_oversize_dst_is_hashed_and_too_long_output_rejected() -> None:
    long_dst = b"x" * 300
    assert h2c.expand_message_xmd(b"m", long_dst, 32) == h2c.expand_message_xmd(b"m", long_dst, 32)
    assert h2c.expand_message_xmd(b"m", long_dst, 32) != h2c.expand_message_xmd(
        b"m", b"x" * 299, 32
    )
    with pytest.raises(InvalidInputError):
        h2c.expand_message_xmd(b"m", b"dst", 256 * 32)


def test_hash_to_scalar_is_domain_separated_and_in_range() -> None:
    a = h2c.hash_to_scalar(b"research", b"A")
    assert 0 <= a < N
    assert a != h2c.hash_to_scalar(b"research", b"B")
    assert a != h2c.hash_to_scalar(b"researcH", b"A")


@pytest.mark.parametrize("backend", BACKENDS)
def test_derived_generators_are_distinct_cached_and_identical(backend: str) -> None:
    g = get_group(backend)
    h0, h1 = g.derive_generator("pets/pedersen/value/0"), g.derive_generator("other")
    assert h0 is g.derive_generator("pets/pedersen/value/0")
    assert len({h0, h1, g.generator}) == 3
    assert (
        h0.to_bytes() == get_group("coincurve").derive_generator("pets/pedersen/value/0").to_bytes()
    )
