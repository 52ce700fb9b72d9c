"""Bad configurations give one ``pets <cmd>: error:`` line, never a traceback (issue 15, 7, 10).

Every case runs the real ``python -m pets`` command as a subprocess, as an
operator would, against files made for the case: a state directory that is a
file, missing schema and data files, swapped certificate and key files,
another party's certificate. Each must fail before any network traffic, with
exit status 1 (:data:`pets.cli.exits.EXIT_FAILED`) and exactly one error line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pets.cli.exits import EXIT_FAILED
from pets.devtools.datafiles import write_data
from pets.devtools.datagen import generate
from pets.devtools.localcluster import LocalCluster

HOLDERS = ("hospital-01", "hospital-02")


def _tls(certs: Path, cert: str, key: str | None = None) -> str:
    return (
        f'[tls]\nca = "{certs}/ca.pem"\ncert = "{certs}/{cert}.pem"\n'
        f'key = "{certs}/{key or cert}-key.pem"\n'
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Certificates for every party, a schema and two holders' data, no processes."""
    root = tmp_path_factory.mktemp("cli-errors")
    data = generate("hospitals", len(HOLDERS), 20, 3)
    files = write_data(data, root / "data")
    holder_data = dict(zip(HOLDERS, files.values(), strict=True))
    cluster = LocalCluster(workdir=root, schema=data.schema, holder_data=holder_data)
    cluster.prepare(analysts=("alice",))
    (root / "a-file").write_text("not a folder\n")
    # A folder nobody may write to (root ignores modes: then a read-only filesystem's).
    read_only = root / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    if os.geteuid() == 0:
        read_only = Path("/sys/pets-test-state")
    return {
        "root": root,
        "certs": cluster.certs,
        "schema": cluster.schema_path,
        "read_only": read_only,
    }


def _leader(w: dict[str, Path], *, state: str = "", schema: str = "", tls: str = "") -> str:
    return (
        f'role = "leader"\nname = "leader"\nlisten = "127.0.0.1:0"\n'
        f'state_dir = "{state or w["root"] / "state" / "leader"}"\n'
        f'schema = "{schema or w["schema"]}"\nmin_holders = 2\n'
        f"{tls or _tls(w['certs'], 'leader')}\n"
        '[[helpers]]\nname = "helper-1"\naddress = "127.0.0.1:9"\n'
    )


def _node(
    w: dict[str, Path], *, schema: str = "", data: str = "", tls: str = "", state: str = ""
) -> str:
    csv = data or w["root"] / "data" / "hospital-01" / "hospitals.csv"
    return (
        f'name = "hospital-01"\nschema = "{schema or w["schema"]}"\nleader = "127.0.0.1:9"\n'
        f'state_dir = "{state or w["root"] / "state" / "hospital-01"}"\n'
        f'[helpers]\nhelper-1 = "127.0.0.1:9"\n[data]\nhospitals = "{csv}"\n'
        f"{tls or _tls(w['certs'], 'hospital-01')}"
    )


def _analyst(w: dict[str, Path], *, schema: str = "", tls: str = "") -> str:
    return (
        f'name = "alice"\nschema = "{schema or w["schema"]}"\nleader = "127.0.0.1:9"\n'
        f'[helpers]\nhelper-1 = "127.0.0.1:9"\n{tls or _tls(w["certs"], "alice")}'
    )


def _serve(text: str) -> list[str]:
    return ["serve", "--config", text]


def _run_node(text: str) -> list[str]:
    return ["node", "--config", text]


def _query(text: str) -> list[str]:
    return ["query", "--config", text, "--query", "count() from hospitals"]


Case = tuple[Callable[[str], list[str]], Callable[[dict[str, Path]], str], str]

CASES: dict[str, Case] = {
    "leader state_dir is a file": (
        _serve,
        lambda w: _leader(w, state=str(w["root"] / "a-file" / "leader")),
        "state_dir",
    ),
    "leader state_dir read-only": (
        _serve,
        lambda w: _leader(w, state=str(w["read_only"] / "leader")),
        "state_dir",
    ),
    "node state_dir read-only": (
        _run_node,
        lambda w: _node(w, state=str(w["read_only"] / "hospital-01")),
        "pets-test-state" if os.geteuid() == 0 else "read-only",
    ),
    "leader schema missing": (
        _serve,
        lambda w: _leader(w, schema=str(w["root"] / "nope.toml")),
        "schema file",
    ),
    "leader key of another party": (
        _serve,
        lambda w: _leader(w, tls=_tls(w["certs"], "leader", "alice")),
        "private key does not match the certificate",
    ),
    "leader with a helper's certificate": (
        _serve,
        lambda w: _leader(w, tls=_tls(w["certs"], "helper-1")),
        "certificate of helper 'helper-1'",
    ),
    "node schema missing": (
        _run_node,
        lambda w: _node(w, schema=str(w["root"] / "nope.toml")),
        "schema file",
    ),
    "node data file missing": (
        _run_node,
        lambda w: _node(w, data=str(w["root"] / "nope.csv")),
        "nope.csv",
    ),
    "node key of another party": (
        _run_node,
        lambda w: _node(w, tls=_tls(w["certs"], "hospital-01", "hospital-02")),
        "private key does not match the certificate",
    ),
    "node with an analyst's certificate": (
        _run_node,
        lambda w: _node(w, tls=_tls(w["certs"], "alice")),
        "certificate of analyst 'alice'",
    ),
    "node with another holder's certificate": (
        _run_node,
        lambda w: _node(w, tls=_tls(w["certs"], "hospital-02")),
        "certificate of holder 'hospital-02'",
    ),
    "analyst schema missing": (
        _query,
        lambda w: _analyst(w, schema=str(w["root"] / "nope.toml")),
        "schema file",
    ),
    "analyst key of another party": (
        _query,
        lambda w: _analyst(w, tls=_tls(w["certs"], "alice", "leader")),
        "private key does not match the certificate",
    ),
    "analyst with a holder's certificate": (
        _query,
        lambda w: _analyst(w, tls=_tls(w["certs"], "hospital-01")),
        "certificate of holder 'hospital-01'",
    ),
}


def _pets(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pets", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        stdin=subprocess.DEVNULL,
    )


def _assert_one_error_line(proc: subprocess.CompletedProcess[str], command: str, says: str) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith(f"pets {command}:")]
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith(f"pets {command}: error: "), proc.stderr
    assert says in errors[0], proc.stderr
    assert proc.returncode == EXIT_FAILED, proc.stderr


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_configuration_is_one_error_line(world: dict[str, Path], case: str) -> None:
    argv, config, says = CASES[case]
    path = world["root"] / f"{case.replace(' ', '-').replace(chr(39), '')}.toml"
    path.write_text(config(world))
    proc = _pets(argv(str(path)), world["root"])
    _assert_one_error_line(proc, argv("x")[0], says)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["gen-data", "--kind", "hospitals", "--holders", "1", "--out", "a-file/x"], "a-file"),
        (["certs", "init", "--dir", "a-file"], "a-file"),
        (["demo", "--holders", "1", "--keep", "a-file/x"], "a-file"),
        (["paillier", "keygen", "--out", "a-file/k"], "a-file"),
        (["credential", "issuer-keygen", "--out", "a-file/k"], "a-file"),
        (["bench", "--quick", "--only", "nosuch"], "nosuch"),
    ],
    ids=lambda v: v[0] if isinstance(v, list) else "",
)
def test_bad_paths_are_one_error_line(world: dict[str, Path], args: list[str], says: str) -> None:
    """The other entry points, where a path is not a folder."""
    proc = _pets(args, world["root"])
    _assert_one_error_line(proc, args[0], says)
