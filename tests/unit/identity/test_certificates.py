"""Unit tests for pets.identity.certificates (CA, issuing, peer identity) and its file/CLI layers.

The real TLS handshake is exercised in tests/integration/test_tls_identity.py;
here expiry and chain checks go through ``verify_identity`` with an injected
clock.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pets.cli.certs import register
from pets.errors import AuthenticationError, ConfigError, InvalidInputError, PetsError
from pets.identity.certificates import (
    CA,
    DEFAULT_SERVER_HOSTS,
    Identity,
    Peer,
    Role,
    check_key_pair,
    create_ca,
    identity_uri,
    issue,
    load_ca,
    parse_identity_uri,
    peer_identity,
    validate_name,
    verify_identity,
    verify_identity_cached,
)
from pets.identity.files import init_ca, issue_to_dir, load_ca_from_dir, load_tls_material
from pets.transport.peer import peer_from_auth_context

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def ca() -> CA:
    return create_ca(now=T0)


def _cert(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def _eku(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def _san(cert: x509.Certificate) -> x509.SubjectAlternativeName:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


def _forge(ca: CA, sans: list[x509.GeneralName] | None) -> bytes:
    """A certificate signed by ``ca`` with arbitrary SANs (None: no SAN extension)."""
    key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _cert(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, None)
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(T0)
        .not_valid_after(T0 + dt.timedelta(days=1))
    )
    if sans is not None:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return b.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


# ---------------------------------------------------------------------------- CA


def test_create_ca_profile(ca: CA) -> None:
    cert = _cert(ca.cert_pem)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert isinstance(cert.public_key().curve, ec.SECP256R1)
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "pets project CA"
    assert cert.issuer == cert.subject
    cert.verify_directly_issued_by(cert)
    assert cert.not_valid_before_utc <= T0 < cert.not_valid_after_utc
    assert load_ca(ca.cert_pem, ca.key_pem) == ca


def test_create_ca_rejects_bad_arguments() -> None:
    with pytest.raises(InvalidInputError):
        create_ca("")
    with pytest.raises(InvalidInputError):
        create_ca(valid_days=0)
    with pytest.raises(InvalidInputError, match="timezone-aware"):
        create_ca(now=dt.datetime(2030, 1, 1))  # naive on purpose


def test_load_ca_rejects_mismatch_and_non_ca(ca: CA) -> None:
    other = create_ca(now=T0)
    with pytest.raises(InvalidInputError, match="does not match"):
        load_ca(ca.cert_pem, other.key_pem)
    holder = issue(ca, Role.HOLDER, "h", now=T0)
    with pytest.raises(InvalidInputError, match="not a CA"):
        load_ca(holder.cert_pem, holder.key_pem)
    with pytest.raises(InvalidInputError):
        load_ca(b"garbage", ca.key_pem)


def test_reprs_never_show_keys(ca: CA) -> None:
    ident = issue(ca, Role.ANALYST, "alice", now=T0)
    for obj in (ca, ident):
        assert b"PRIVATE" not in repr(obj).encode()
        assert "KEY" not in repr(obj)
    assert repr(ident) == "Identity(Peer(role=<Role.ANALYST: 'analyst'>, name='alice'))"


# ---------------------------------------------------------------------------- issue


@pytest.mark.parametrize("role", list(Role))
def test_issue_carries_role_and_name(ca: CA, role: Role) -> None:
    ident = issue(ca, role, "party-1", now=T0)
    assert isinstance(ident, Identity)
    cert = _cert(ident.cert_pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "party-1"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == role
    assert _san(cert).get_values_for_type(x509.UniformResourceIdentifier) == [
        f"pets://{role}/party-1"
    ]
    assert peer_identity(ident.cert_pem) == Peer(role, "party-1")
    assert peer_identity(cert.public_bytes(serialization.Encoding.DER)) == Peer(role, "party-1")
    assert ident.peer == Peer(role, "party-1")
    assert ident.chain == (ca.cert_pem,)
    cert.verify_directly_issued_by(_cert(ca.cert_pem))
    check_key_pair(ident.cert_pem, ident.key_pem)
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert verify_identity(ca.cert_pem, ident.cert_pem, now=T0) == Peer(role, "party-1")


@pytest.mark.parametrize("role", [Role.LEADER, Role.HELPER])
def test_server_roles_get_server_auth_and_hosts(ca: CA, role: Role) -> None:
    cert = _cert(issue(ca, role, "srv", now=T0).cert_pem)
    assert _eku(cert) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    san = _san(cert)
    # The pinned server name first, then the default hosts.
    assert san.get_values_for_type(x509.DNSName) == [f"srv.{role.value}.pets", "localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert DEFAULT_SERVER_HOSTS == ("localhost", "127.0.0.1", "::1")


@pytest.mark.parametrize("role", [Role.HOLDER, Role.ANALYST])
def test_client_roles_get_client_auth_only(ca: CA, role: Role) -> None:
    cert = _cert(issue(ca, role, "cli", now=T0).cert_pem)
    assert _eku(cert) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    san = _san(cert)
    assert san.get_values_for_type(x509.DNSName) == []
    assert san.get_values_for_type(x509.IPAddress) == []
    with pytest.raises(InvalidInputError, match="client role"):
        issue(ca, role, "cli", hosts=["localhost"], now=T0)


def test_issue_custom_hosts(ca: CA) -> None:
    hosts = ["agg1.example.org", "10.0.0.7", "[fd00::1]", "AGG1.example.org."]
    san = _san(_cert(issue(ca, "helper", "h1", hosts=hosts, now=T0).cert_pem))
    assert san.get_values_for_type(x509.DNSName) == ["h1.helper.pets", "agg1.example.org"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("10.0.0.7"),
        ipaddress.ip_address("fd00::1"),
    ]
    san = _san(_cert(issue(ca, "helper", "h1", hosts=[], now=T0).cert_pem))
    assert san.get_values_for_type(x509.DNSName) == ["h1.helper.pets"]  # only the pinned name


@pytest.mark.parametrize("host", ["", "bad host", "-x.org", "a..b", "x/y", "a" * 64 + ".org"])
def test_issue_rejects_bad_hosts(ca: CA, host: str) -> None:
    with pytest.raises(InvalidInputError):
        issue(ca, Role.LEADER, "l", hosts=[host], now=T0)


def test_issue_rejects_hosts_given_as_one_string(ca: CA) -> None:
    with pytest.raises(InvalidInputError, match="sequence"):
        issue(ca, Role.LEADER, "l", hosts="localhost", now=T0)


@pytest.mark.parametrize(
    "name",
    ["", "a" * 65, "a/b", "a b", "hôpital", "a:b", "a@b", ".", "..", "x\n", "pets://holder/x"],
)
def test_issue_rejects_malformed_names(ca: CA, name: str) -> None:
    with pytest.raises(InvalidInputError, match="invalid party name"):
        issue(ca, Role.HOLDER, name, now=T0)
    with pytest.raises(InvalidInputError):
        validate_name(name)


@pytest.mark.parametrize("name", ["a", "a" * 64, "Hospital_A.01-east", "...", "-", "_"])
def test_valid_names(ca: CA, name: str) -> None:
    assert validate_name(name) == name
    assert peer_identity(issue(ca, Role.HOLDER, name, now=T0).cert_pem).name == name


@pytest.mark.parametrize("role", ["admin", "Leader", "", "issuer"])
def test_issue_rejects_unknown_roles(ca: CA, role: str) -> None:
    with pytest.raises(InvalidInputError, match="unknown role"):
        issue(ca, role, "x", now=T0)


def test_issue_validity_and_ca_expiry() -> None:
    ca = create_ca(valid_days=10, now=T0)
    ident = issue(ca, Role.HOLDER, "h", valid_days=365, now=T0 + dt.timedelta(days=5))
    cert, ca_cert = _cert(ident.cert_pem), _cert(ca.cert_pem)
    assert cert.not_valid_after_utc == ca_cert.not_valid_after_utc  # clipped to the CA
    assert cert.not_valid_before_utc <= T0 + dt.timedelta(days=5)
    with pytest.raises(InvalidInputError, match="not valid at the issuing time"):
        issue(ca, Role.HOLDER, "h", now=T0 + dt.timedelta(days=11))
    with pytest.raises(InvalidInputError):
        issue(ca, Role.HOLDER, "h", valid_days=-1, now=T0)


# ---------------------------------------------------------------------------- reading


def test_identity_uri_round_trip() -> None:
    assert identity_uri(Role.HELPER, "h-2") == "pets://helper/h-2"
    assert parse_identity_uri("pets://analyst/bob") == Peer(Role.ANALYST, "bob")
    assert str(Peer(Role.HOLDER, "x")) == "pets://holder/x"


@pytest.mark.parametrize(
    "uri",
    [
        "pets://admin/x",
        "pets://holder/",
        "pets://holder/a/b",
        "pets://holder/a?b",
        "pets:/holder/x",
        "pets://HOLDER/x",
        "pets://holder/..",
        "https://holder/x",
        "pets://holder/" + "a" * 65,
    ],
)
def test_parse_identity_uri_rejects_malformed(uri: str) -> None:
    with pytest.raises(AuthenticationError):
        parse_identity_uri(uri)


def test_peer_identity_without_san(ca: CA) -> None:
    with pytest.raises(AuthenticationError, match="no subject alternative"):
        peer_identity(_forge(ca, None))


def test_peer_identity_without_pets_uri(ca: CA) -> None:
    pem = _forge(ca, [x509.DNSName("localhost"), x509.UniformResourceIdentifier("spiffe://a/b")])
    with pytest.raises(AuthenticationError, match="no pets identity URI"):
        peer_identity(pem)


def test_peer_identity_malformed_uri(ca: CA) -> None:
    with pytest.raises(AuthenticationError, match="malformed"):
        peer_identity(_forge(ca, [x509.UniformResourceIdentifier("pets://holder/a b")]))


def test_peer_identity_two_uris_is_ambiguous(ca: CA) -> None:
    uris = [
        x509.UniformResourceIdentifier("pets://holder/a"),
        x509.UniformResourceIdentifier("pets://leader/a"),
    ]
    with pytest.raises(AuthenticationError, match="more than one"):
        peer_identity(_forge(ca, uris))


def test_peer_identity_ignores_other_uris(ca: CA) -> None:
    uris = [
        x509.UniformResourceIdentifier("spiffe://example.org/x"),
        x509.UniformResourceIdentifier("pets://analyst/bob"),
    ]
    assert peer_identity(_forge(ca, uris)) == Peer(Role.ANALYST, "bob")


@pytest.mark.parametrize("data", [b"", b"garbage", b"-----BEGIN CERTIFICATE-----\nAAAA\n"])
def test_peer_identity_garbage(data: bytes) -> None:
    with pytest.raises(AuthenticationError):
        peer_identity(data)


def test_verify_identity_rejects_other_ca_and_expiry(ca: CA) -> None:
    ident = issue(ca, Role.HOLDER, "h", valid_days=30, now=T0)
    assert verify_identity(ca.cert_pem, ident.cert_pem, now=T0 + dt.timedelta(days=29)).name == "h"
    other = create_ca(now=T0)
    with pytest.raises(AuthenticationError):
        verify_identity(other.cert_pem, ident.cert_pem, now=T0)
    with pytest.raises(AuthenticationError):  # expired
        verify_identity(ca.cert_pem, ident.cert_pem, now=T0 + dt.timedelta(days=31))
    with pytest.raises(AuthenticationError):  # not yet valid
        verify_identity(ca.cert_pem, ident.cert_pem, now=T0 - dt.timedelta(days=1))
    with pytest.raises(AuthenticationError):  # a certificate without the pets URI
        verify_identity(ca.cert_pem, _forge(ca, None), now=T0)


def test_check_key_pair_mismatch(ca: CA) -> None:
    a = issue(ca, Role.HOLDER, "a", now=T0)
    b = issue(ca, Role.HOLDER, "b", now=T0)
    with pytest.raises(InvalidInputError, match="does not match"):
        check_key_pair(a.cert_pem, b.key_pem)


def test_peer_from_auth_context(ca: CA) -> None:
    ident = issue(ca, Role.HOLDER, "hospital-a", now=T0)
    ctx = {
        "transport_security_type": [b"ssl"],
        "x509_common_name": [b"hospital-a"],
        "x509_pem_cert": [ident.cert_pem],
        "security_level": [b"TSI_PRIVACY_AND_INTEGRITY"],
    }
    assert peer_from_auth_context(ctx) == Peer(Role.HOLDER, "hospital-a")


@pytest.mark.parametrize(
    "ctx",
    [
        {},
        {"transport_security_type": [b"insecure"], "security_level": [b"TSI_SECURITY_NONE"]},
        {"transport_security_type": [b"ssl"], "security_level": [b"TSI_PRIVACY_AND_INTEGRITY"]},
        {"transport_security_type": [b"ssl"], "x509_pem_cert": []},
        {"transport_security_type": [b"insecure"], "x509_pem_cert": [b"x"]},
        {"transport_security_type": [b"ssl"], "x509_pem_cert": [b"not a cert"]},
    ],
)
def test_peer_from_auth_context_rejects(ctx: dict[str, list[bytes]]) -> None:
    with pytest.raises(AuthenticationError):
        peer_from_auth_context(ctx)


def test_errors_are_pets_errors() -> None:
    assert issubclass(AuthenticationError, PetsError)
    assert issubclass(ConfigError, PetsError)


# ---------------------------------------------------------------------------- files


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_files_round_trip(tmp_path: Path) -> None:
    d = tmp_path / "certs"
    ca_cert, ca_key = init_ca(d)
    assert (ca_cert, ca_key) == (d / "ca.pem", d / "ca-key.pem")
    assert _mode(ca_key) == 0o600
    assert _mode(d) == 0o700
    cert, key = issue_to_dir(d, Role.LEADER, "leader-1", ["agg.example.org"])
    assert (cert, key) == (d / "leader-1.pem", d / "leader-1-key.pem")
    assert _mode(key) == 0o600
    ca_pem, cert_pem, key_pem = load_tls_material(d, "leader-1")
    assert ca_pem == ca_cert.read_bytes()
    assert peer_identity(cert_pem) == Peer(Role.LEADER, "leader-1")
    check_key_pair(cert_pem, key_pem)
    assert load_ca_from_dir(d).cert_pem == ca_pem
    assert sorted(p.name for p in d.iterdir()) == [
        "ca-key.pem",
        "ca.pem",
        "leader-1-key.pem",
        "leader-1.pem",
    ]  # no temporary files left behind


def test_files_refuse_overwrite(tmp_path: Path) -> None:
    init_ca(tmp_path)
    first = (tmp_path / "ca.pem").read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        init_ca(tmp_path)
    assert (tmp_path / "ca.pem").read_bytes() == first
    issue_to_dir(tmp_path, "holder", "h")
    with pytest.raises(ConfigError, match="already exists"):
        issue_to_dir(tmp_path, "holder", "h")
    issue_to_dir(tmp_path, "holder", "h", overwrite=True)
    init_ca(tmp_path, overwrite=True)
    assert (tmp_path / "ca.pem").read_bytes() != first


def test_files_missing_ca_says_how_to_create(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ca\.pem.*pets certs init --dir"):
        issue_to_dir(tmp_path, "holder", "h")
    with pytest.raises(ConfigError, match=r"ca\.pem.*pets certs init --dir"):
        load_tls_material(tmp_path, "h")


def test_files_missing_cert_says_how_to_create(tmp_path: Path) -> None:
    init_ca(tmp_path)
    with pytest.raises(ConfigError, match=r"h1\.pem.*pets certs issue --dir .* --name h1"):
        load_tls_material(tmp_path, "h1")
    issue_to_dir(tmp_path, "holder", "h1")
    (tmp_path / "h1-key.pem").unlink()
    with pytest.raises(ConfigError, match=r"h1-key\.pem.*pets certs issue"):
        load_tls_material(tmp_path, "h1")


def test_files_detect_swapped_key_and_foreign_ca(tmp_path: Path) -> None:
    init_ca(tmp_path)
    issue_to_dir(tmp_path, "holder", "a")
    issue_to_dir(tmp_path, "holder", "b")
    (tmp_path / "a-key.pem").write_bytes((tmp_path / "b-key.pem").read_bytes())
    with pytest.raises(ConfigError, match=r"a-key\.pem.*does not match"):
        load_tls_material(tmp_path, "a")
    init_ca(tmp_path, overwrite=True)  # a new CA: old certificates no longer chain
    with pytest.raises(ConfigError, match=r"b\.pem is not usable"):
        load_tls_material(tmp_path, "b")


def test_files_bad_ca_key(tmp_path: Path) -> None:
    init_ca(tmp_path)
    (tmp_path / "ca-key.pem").write_bytes(b"nonsense")
    with pytest.raises(ConfigError, match="bad CA"):
        issue_to_dir(tmp_path, "holder", "h")


@pytest.mark.parametrize("name", ["ca", "x-key", "a/b", "", ".."])
def test_files_reject_reserved_and_bad_names(tmp_path: Path, name: str) -> None:
    init_ca(tmp_path)
    with pytest.raises(ConfigError):
        issue_to_dir(tmp_path, "holder", name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca-key.pem", "ca.pem"]


def test_files_bad_role_or_host_is_config_error(tmp_path: Path) -> None:
    init_ca(tmp_path)
    with pytest.raises(ConfigError, match="unknown role"):
        issue_to_dir(tmp_path, "admin", "x")
    with pytest.raises(ConfigError, match="client role"):
        issue_to_dir(tmp_path, "analyst", "x", ["localhost"])


# ---------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pets")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_init_and_issue(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = _parser()
    args = parser.parse_args(["certs", "init", "--dir", str(tmp_path)])
    assert args.func(args) == 0
    assert f"wrote {tmp_path / 'ca-key.pem'}" in capsys.readouterr().out
    argv = ["certs", "issue", "--dir", str(tmp_path), "--role", "helper", "--name", "h1"]
    args = parser.parse_args([*argv, "--host", "h.example.org", "--host", "10.1.2.3"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'h1.pem'}" in out
    assert f"wrote {tmp_path / 'h1-key.pem'}" in out
    san = _san(_cert((tmp_path / "h1.pem").read_bytes()))
    assert san.get_values_for_type(x509.DNSName) == ["h1.helper.pets", "h.example.org"]
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["pets://helper/h1"]


def test_cli_rejects_unknown_role(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        _parser().parse_args(["certs", "issue", "--dir", "d", "--role", "boss", "--name", "x"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_cli_errors_propagate_as_config_error(tmp_path: Path) -> None:
    parser = _parser()
    args = parser.parse_args(
        ["certs", "issue", "--dir", str(tmp_path), "--role", "holder", "--name", "h"]
    )
    with pytest.raises(ConfigError, match="pets certs init"):
        args.func(args)


def test_server_dns_name_is_pinned_and_validated(ca: CA) -> None:
    from pets.identity.certificates import server_dns_name

    assert server_dns_name(Role.HELPER, "helper-1") == "helper-1.helper.pets"
    for bad in ("a_b", "a.b", "-x"):
        with pytest.raises(InvalidInputError, match="DNS label"):
            issue(ca, Role.HELPER, bad, now=T0)
    with pytest.raises(InvalidInputError):
        server_dns_name(Role.HOLDER, "org")


def test_cached_verification_still_checks_the_clock_and_the_ca(ca: CA) -> None:
    holder = issue(ca, Role.HOLDER, "h-cached", now=T0)
    at = T0 + dt.timedelta(days=1)
    assert verify_identity_cached(ca.cert_pem, holder.cert_pem, now=at) == Peer(
        Role.HOLDER, "h-cached"
    )
    again = verify_identity_cached(ca.cert_pem, holder.cert_pem, now=at)  # from the cache
    assert again.name == "h-cached"
    with pytest.raises(AuthenticationError, match="validity period"):
        verify_identity_cached(ca.cert_pem, holder.cert_pem, now=T0 + dt.timedelta(days=4000))
    with pytest.raises(AuthenticationError, match="validity period"):
        verify_identity_cached(ca.cert_pem, holder.cert_pem, now=T0 - dt.timedelta(days=2))
    other = create_ca(now=T0)
    with pytest.raises(AuthenticationError):
        verify_identity_cached(other.cert_pem, holder.cert_pem, now=at)
