"""Key generation, public-key bytes, private-key files, the keygen command."""

from __future__ import annotations

import argparse
import json
import os
import stat

import gmpy2
import phe
import pytest

from pets.cli import paillier as paillier_cli
from pets.errors import ConfigError, InvalidInputError
from pets.paillier.keys import (
    generate_keypair,
    load_private_key,
    private_key_from_json,
    private_key_from_primes,
    private_key_to_json,
    public_key_fingerprint,
    public_key_from_bytes,
    public_key_to_bytes,
    save_private_key,
)


@pytest.fixture(scope="module")
def keypair() -> tuple[phe.PaillierPublicKey, phe.PaillierPrivateKey]:
    return generate_keypair(1024, allow_insecure_test_size=True)


def test_generate_2048_is_phe_key() -> None:
    pub, priv = generate_keypair()
    assert isinstance(pub, phe.PaillierPublicKey)
    assert isinstance(priv, phe.PaillierPrivateKey)
    assert pub.n.bit_length() == 2048
    assert pub.g == pub.n + 1
    assert priv.p * priv.q == pub.n


@pytest.mark.slow
def test_generate_3072() -> None:
    pub, _ = generate_keypair(3072)
    assert pub.n.bit_length() == 3072


@pytest.mark.parametrize("bits", [1024, 1536, 4096, 512, 0, -2048])
def test_other_sizes_refused_without_flag(bits: int) -> None:
    with pytest.raises(InvalidInputError, match="allow_insecure_test_size"):
        generate_keypair(bits)


@pytest.mark.parametrize("bits", [True, 2048.0, "2048"])
def test_non_int_size_refused(bits: object) -> None:
    with pytest.raises(InvalidInputError):
        generate_keypair(bits)  # type: ignore[arg-type]


def test_test_flag_allows_small_but_not_tiny() -> None:
    pub, _ = generate_keypair(256, allow_insecure_test_size=True)
    assert pub.n.bit_length() == 256
    with pytest.raises(InvalidInputError):
        generate_keypair(64, allow_insecure_test_size=True)


def test_public_key_round_trip(keypair) -> None:
    pub, _ = keypair
    data = public_key_to_bytes(pub)
    assert len(data) == 128 and data[0] != 0
    assert public_key_from_bytes(data, allow_insecure_test_size=True) == pub
    with pytest.raises(InvalidInputError):
        public_key_from_bytes(data)  # 1024 bits without the test flag
    assert public_key_fingerprint(pub).startswith("sha256:")


def test_public_key_2048_round_trip_without_flag() -> None:
    pub, _ = generate_keypair(2048)
    data = public_key_to_bytes(pub)
    assert len(data) == 256
    assert public_key_from_bytes(data) == pub
    for bad in (data[:-1], data[1:], data + b"\x01"):  # truncated or extended
        with pytest.raises(InvalidInputError):
            public_key_from_bytes(bad)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda n: b"",
        lambda n: b"\x00" + n.to_bytes(128, "big"),
        lambda n: (n + 1).to_bytes(128, "big"),  # even
        lambda n: ((1 << 1023) + 1).to_bytes(128, "big"),  # odd, divisible by 3
        lambda n: int(gmpy2.next_prime(1 << 1023)).to_bytes(128, "big"),  # prime
        lambda n: int(gmpy2.next_prime(1 << 511) ** 2).to_bytes(128, "big"),  # square
    ],
)
def test_public_key_from_bytes_rejects(keypair, mutate) -> None:
    pub, _ = keypair
    with pytest.raises(InvalidInputError):
        public_key_from_bytes(mutate(pub.n), allow_insecure_test_size=True)


def test_private_key_json_round_trip(keypair) -> None:
    pub, priv = keypair
    text = private_key_to_json(priv)
    doc = json.loads(text)
    assert doc["p"] == str(priv.p) and doc["q"] == str(priv.q) and doc["n"] == str(pub.n)
    pub2, priv2 = private_key_from_json(text, allow_insecure_test_size=True)
    assert pub2 == pub and priv2 == priv


def _secret_free(message: str, priv: phe.PaillierPrivateKey) -> bool:
    return str(priv.p)[:12] not in message and str(priv.q)[:12] not in message


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d.update(p=d["p"] + "x"),
        lambda d: d.update(p=int(d["p"])),
        lambda d: d.update(q=str(int(d["q"]) + 2)),
        lambda d: d.update(n=str(int(d["n"]) + 2)),
        lambda d: d.update(format="other"),
        lambda d: d.update(version=2),
        lambda d: d.update(bits=2048),
        lambda d: d.update(p="0" + d["p"]),
        lambda d: d.pop("q"),
    ],
)
def test_private_key_json_rejects_without_leaking(keypair, edit) -> None:
    _, priv = keypair
    doc = json.loads(private_key_to_json(priv))
    edit(doc)
    with pytest.raises(InvalidInputError) as info:
        private_key_from_json(json.dumps(doc), allow_insecure_test_size=True)
    assert _secret_free(str(info.value), priv)
    assert info.value.__cause__ is None


def test_private_key_from_primes_checks() -> None:
    p = int(gmpy2.next_prime(1 << 255))
    q = int(gmpy2.next_prime(p + (1 << 200)))
    pub, priv = private_key_from_primes(p, q, allow_insecure_test_size=True)
    assert pub.n == p * q and {priv.p, priv.q} == {p, q}
    with pytest.raises(InvalidInputError):
        private_key_from_primes(p, p, allow_insecure_test_size=True)
    with pytest.raises(InvalidInputError):
        private_key_from_primes(p, q + 2, allow_insecure_test_size=True)  # not prime
    with pytest.raises(InvalidInputError):
        private_key_from_primes(p, q)  # 512-bit modulus without the flag


def test_key_file_mode_and_round_trip(keypair, tmp_path) -> None:
    _, priv = keypair
    path = tmp_path / "analyst.key"
    save_private_key(path, priv)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_private_key(path, allow_insecure_test_size=True) == priv
    assert [p.name for p in tmp_path.iterdir()] == ["analyst.key"]  # no temp file left


def test_key_file_not_overwritten(keypair, tmp_path) -> None:
    _, priv = keypair
    path = tmp_path / "analyst.key"
    path.write_text("keep me")
    with pytest.raises(ConfigError):
        save_private_key(path, priv)
    assert path.read_text() == "keep me"
    save_private_key(path, priv, overwrite=True)
    assert load_private_key(path, allow_insecure_test_size=True) == priv
    assert len(list(tmp_path.iterdir())) == 1


def test_load_refuses_readable_file(keypair, tmp_path) -> None:
    _, priv = keypair
    path = tmp_path / "analyst.key"
    save_private_key(path, priv)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_private_key(path, allow_insecure_test_size=True)


def test_load_errors_are_config_errors_without_secrets(keypair, tmp_path) -> None:
    _, priv = keypair
    with pytest.raises(ConfigError):
        load_private_key(tmp_path / "missing.key")
    path = tmp_path / "bad.key"
    doc = json.loads(private_key_to_json(priv))
    doc["q"] = str(int(doc["q"]) + 2)
    path.write_text(json.dumps(doc))
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError) as info:
        load_private_key(path, allow_insecure_test_size=True)
    assert _secret_free(str(info.value), priv)
    with pytest.raises(ConfigError):
        load_private_key(path)  # also: 1024-bit without the flag


def test_reprs_do_not_show_primes(keypair) -> None:
    pub, priv = keypair
    assert _secret_free(repr(priv), priv) and _secret_free(repr(pub), priv)


def test_cli_keygen(tmp_path, capsys) -> None:
    parser = argparse.ArgumentParser(prog="pets")
    paillier_cli.register(parser.add_subparsers(dest="command"))
    out = tmp_path / "k.json"
    pub_out = tmp_path / "k.pub"
    args = parser.parse_args(
        ["paillier", "keygen", "--out", str(out), "--public-out", str(pub_out)]
    )
    assert args.func(args) == 0
    priv = load_private_key(out)
    assert priv.public_key.n.bit_length() == 2048
    assert public_key_from_bytes(pub_out.read_bytes()) == priv.public_key
    printed = capsys.readouterr().out
    assert public_key_fingerprint(priv.public_key) in printed
    assert _secret_free(printed, priv)
    with pytest.raises(SystemExit):
        parser.parse_args(["paillier", "keygen", "--out", str(out), "--bits", "1024"])
    with pytest.raises(ConfigError):
        args.func(args)  # refuses to overwrite without --force
