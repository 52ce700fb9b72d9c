"""A whole pets deployment on loopback, as separate processes.

Used by ``pets demo``, the integration tests and the end-to-end benchmarks:
it creates a project CA and one certificate per party, writes each party's
TOML config, and runs every server and node as its own ``python -m pets``
process (exactly what an operator would run), each logging JSON lines to
``logs/<name>.log``. Servers listen on port 0 and report the bound port
through a port file; a restarted server gets its old port back so the other
parties' configs stay valid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from pets.client.config import Endpoints
from pets.errors import UnavailableError
from pets.identity import files as identity_files
from pets.identity.certificates import Role
from pets.query import Schema
from pets.runtime.tomlconfig import TlsFiles

START_TIMEOUT_SECONDS = 30.0


@dataclass
class Process:
    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen | None = None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = self.log.open("ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.popen = subprocess.Popen(
            self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
        out.close()

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.running:
            assert self.popen is not None
            self.popen.send_signal(sig)

    def wait(self, timeout: float) -> int | None:
        if self.popen is None:
            return None
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)
            return None


@dataclass
class LocalCluster:
    """Leader, helpers and holder nodes on 127.0.0.1, each a real process."""

    workdir: Path
    schema: Schema
    holder_data: dict[str, dict[str, Path]] = field(default_factory=dict)
    helpers: int = 1
    min_holders: int = 3
    insecure: bool = False
    limits: dict[str, float | int] = field(default_factory=dict)
    leader_extra_toml: str = ""
    node_policy_toml: str = ""
    dp_toml: str = ""  # a [dp] table for every server (docs/DP.md)
    processes: dict[str, Process] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        self.certs = self.workdir / "certs"
        self.schema_path = self.workdir / "schema.toml"

    # -- set-up -----------------------------------------------------------------
    @property
    def helper_names(self) -> list[str]:
        return [f"helper-{i + 1}" for i in range(self.helpers)]

    def prepare(self, analysts: tuple[str, ...] = ("analyst",)) -> None:
        """Certificates for every party and the shared schema file."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.schema_path.write_text(self.schema.to_toml())
        if self.insecure:
            return
        identity_files.init_ca(self.certs, overwrite=True)
        identity_files.issue_to_dir(self.certs, Role.LEADER, "leader", overwrite=True)
        for name in self.helper_names:
            identity_files.issue_to_dir(self.certs, Role.HELPER, name, overwrite=True)
        for name in self.holder_data:
            identity_files.issue_to_dir(self.certs, Role.HOLDER, name, overwrite=True)
        for name in analysts:
            identity_files.issue_to_dir(self.certs, Role.ANALYST, name, overwrite=True)

    def issue(self, role: Role, name: str) -> None:
        identity_files.issue_to_dir(self.certs, role, name, overwrite=True)

    def tls(self, name: str) -> TlsFiles | None:
        if self.insecure:
            return None
        return TlsFiles(
            self.certs / "ca.pem",
            identity_files.cert_path(self.certs, name),
            identity_files.key_path(self.certs, name),
        )

    def _tls_toml(self, name: str) -> str:
        tls = self.tls(name)
        if tls is None:
            return ""
        return f'[tls]\nca = "{tls.ca}"\ncert = "{tls.cert}"\nkey = "{tls.key}"\n'

    def address(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    def _flags(self) -> list[str]:
        return ["--insecure"] if self.insecure else []

    def _server_config(self, name: str, role: str) -> Path:
        lines = [
            f'role = "{role}"',
            f'name = "{name}"',
            f'listen = "127.0.0.1:{self.ports.get(name, 0)}"',
            f'state_dir = "{self.workdir / "state" / name}"',
            f"min_holders = {self.min_holders}",
        ]
        # Helpers get the schema too: they derive a DP query's noise themselves.
        lines.append(f'schema = "{self.schema_path}"')
        if role == "leader":
            lines.append(self.leader_extra_toml)
        lines.append(self._tls_toml(name))
        lines.append(self.dp_toml)
        if role == "leader":
            for h in self.helper_names:
                lines.append(f'[[helpers]]\nname = "{h}"\naddress = "{self.address(h)}"\n')
        if self.limits:
            lines.append("[limits]")
            lines += [f"{k} = {v}" for k, v in self.limits.items()]
        path = self.workdir / "config" / f"{name}.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        return path

    def _start_server(self, name: str, role: str) -> None:
        config = self._server_config(name, role)
        port_file = self.workdir / "run" / f"{name}.port"
        port_file.parent.mkdir(parents=True, exist_ok=True)
        port_file.unlink(missing_ok=True)
        proc = Process(
            name,
            [
                sys.executable,
                "-m",
                "pets",
                "serve",
                "--role",
                role,
                "--config",
                str(config),
                "--port-file",
                str(port_file),
                *self._flags(),
            ],
            self.workdir / "logs" / f"{name}.log",
        )
        proc.start()
        self.processes[name] = proc
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not port_file.exists():
            if not proc.running:
                raise UnavailableError(
                    f"{name} exited during start-up; see {proc.log}:\n{self.tail(name)}"
                )
            if time.monotonic() > deadline:
                raise UnavailableError(f"{name} did not start within {START_TIMEOUT_SECONDS} s")
            time.sleep(0.05)
        self.ports[name] = int(port_file.read_text())

    def start_servers(self) -> None:
        for h in self.helper_names:
            self._start_server(h, "helper")
        self._start_server("leader", "leader")

    def node_config(self, name: str) -> Path:
        helpers = "\n".join(f'{h} = "{self.address(h)}"' for h in self.helper_names)
        data = "\n".join(f'{ds} = "{p}"' for ds, p in self.holder_data[name].items())
        text = (
            f'name = "{name}"\nschema = "{self.schema_path}"\nleader = "{self.address("leader")}"\n'
            f'state_dir = "{self.workdir / "state" / name}"\n\n[helpers]\n{helpers}\n\n'
            f"[data]\n{data}\n\n{self._tls_toml(name)}\n{self.node_policy_toml}\n"
        )
        path = self.workdir / "config" / f"{name}.toml"
        path.write_text(text)
        return path

    def start_node(self, name: str) -> None:
        config = self.node_config(name)
        proc = Process(
            name,
            [sys.executable, "-m", "pets", "node", "--config", str(config), *self._flags()],
            self.workdir / "logs" / f"{name}.log",
        )
        proc.start()
        self.processes[name] = proc

    def start_nodes(self) -> None:
        for name in self.holder_data:
            self.start_node(name)

    def wait_nodes_ready(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Block until every node logged that it is watching the leader."""
        deadline = time.monotonic() + timeout
        for name in self.holder_data:
            while '"watching leader"' not in self.tail(name, 200):
                if not self.processes[name].running:
                    raise UnavailableError(f"node {name} exited:\n{self.tail(name)}")
                if time.monotonic() > deadline:
                    raise UnavailableError(f"node {name} not ready within {timeout} s")
                time.sleep(0.05)

    def start(self) -> LocalCluster:
        self.prepare()
        self.start_servers()
        self.start_nodes()
        return self

    def write_analyst_config(self, path: Path, name: str = "analyst") -> Path:
        """An ``analyst.toml`` for ``pets query`` against this cluster."""
        helpers = "\n".join(f'{h} = "{self.address(h)}"' for h in self.helper_names)
        text = (
            f'name = "{name}"\nschema = "{self.schema_path}"\n'
            f'leader = "{self.address("leader")}"\n\n[helpers]\n{helpers}\n\n'
            f"{self._tls_toml(name)}"
        )
        path.write_text(text)
        return path

    def endpoints(self, name: str = "analyst") -> Endpoints:
        """Connection settings for an analyst (or any client) of this cluster."""
        return Endpoints(
            name=name,
            leader=self.address("leader"),
            helpers={h: self.address(h) for h in self.helper_names},
            tls=self.tls(name),
            schema=self.schema_path,
        )

    # -- operations ----------------------------------------------------------------
    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.processes[name]
        proc.signal(sig)
        proc.wait(10)

    def restart_server(self, name: str) -> None:
        role = "leader" if name == "leader" else "helper"
        self._start_server(name, role)

    def tail(self, name: str, lines: int = 20) -> str:
        try:
            return "\n".join(self.processes[name].log.read_text().splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def log_text(self) -> str:
        return "\n".join(p.log.read_text() for p in self.processes.values() if p.log.exists())

    def stop(self, timeout: float = 15.0) -> dict[str, int | None]:
        """SIGTERM every process (nodes first), wait, return the exit codes."""
        codes: dict[str, int | None] = {}
        order = [n for n in self.processes if n in self.holder_data] + [
            n for n in self.processes if n not in self.holder_data
        ]
        for name in order:
            self.processes[name].signal(signal.SIGTERM)
        for name in order:
            proc = self.processes[name]
            codes[name] = proc.popen.returncode if proc.popen and not proc.running else None
            if codes[name] is None:
                codes[name] = proc.wait(timeout)
        return codes

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
