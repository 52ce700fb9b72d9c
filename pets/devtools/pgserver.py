"""A real, throw-away PostgreSQL server for tests and benchmarks (no mocks).

:func:`start_postgres` runs ``initdb`` and ``pg_ctl start`` from the
PostgreSQL binaries on this machine (``PG_BIN`` alone if set, else the newest
``/usr/lib/postgresql/*/bin``, else ``initdb`` on ``PATH``) in a fresh
directory under the system temporary folder. PostgreSQL refuses to run as
root, so under root the server runs as the ``postgres`` user (``runuser``).
It listens on a Unix socket in its own directory and on no TCP address, with
``trust`` authentication for the local superuser, ``fsync`` off (test data
only) unless ``durable`` (benchmarks: ``fsync`` and ``synchronous_commit`` on,
as in production, so a commit pays its flush as SQLite's does).
:meth:`PostgresServer.stop` stops it and removes everything.

Where PostgreSQL cannot be started, :func:`start_postgres` raises
:class:`PostgresUnavailable`; the ``postgres_server`` fixture in
``tests/conftest.py`` turns that into a skip, or into a failure when the
``CI`` environment variable is set, so CI never passes by skipping.
(``tests/postgres.py`` re-exports this module for the tests.)
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SERVICE_USER = "postgres"


class PostgresUnavailable(RuntimeError):
    """PostgreSQL binaries or the user to run them as are missing."""


def find_bin() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``."""
    if os.environ.get("PG_BIN"):  # an explicit choice: no fallback
        candidates = [Path(os.environ["PG_BIN"])]
    else:
        candidates = [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
        on_path = shutil.which("initdb")
        if on_path:
            candidates.append(Path(on_path).parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise PostgresUnavailable(
        "PostgreSQL binaries (initdb, pg_ctl) not found: set PG_BIN or install postgresql"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    """A running server: connect with :meth:`conninfo`."""

    bin: Path
    root: Path
    port: int
    as_user: list[str]
    durable: bool = False

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def conninfo(self, dbname: str = "postgres") -> str:
        """A libpq connection string for the superuser over the Unix socket."""
        return f"host={self.socket_dir} port={self.port} user=postgres dbname={dbname}"

    def create_database(self, name: str) -> str:
        """Create database ``name`` (an identifier) and return its conninfo."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.conninfo(name)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.as_user, *args], capture_output=True, text=True, timeout=120, check=False
        )

    def start(self) -> None:
        init = self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        if init.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {init.stderr.strip()[-500:]}")
        self.start_server()

    def start_server(self) -> None:
        """``pg_ctl start`` on the existing data directory."""
        options = f"-k {self.socket_dir} -p {self.port} -c listen_addresses='' "
        if not self.durable:
            options += "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        start = self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )
        if start.returncode != 0:
            log = (self.root / "server.log").read_text(errors="replace")[-1000:]
            raise PostgresUnavailable(f"pg_ctl start failed: {start.stderr.strip()}\n{log}")

    def stop_server(self, mode: str = "immediate") -> None:
        """``pg_ctl stop``; ``immediate`` is what a crash looks like to clients."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def url(self, dbname: str = "postgres") -> str:
        """The same connection as :meth:`conninfo`, as a ``postgresql://`` URL."""
        return f"postgresql:///{dbname}?host={self.socket_dir}&port={self.port}&user=postgres"

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres(*, durable: bool = False) -> PostgresServer:
    """Start a fresh server (see the module docstring); raise PostgresUnavailable if impossible."""
    folder = find_bin()
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="pets-pg-"))
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            shutil.rmtree(root, ignore_errors=True)
            raise PostgresUnavailable("running as root without runuser to start PostgreSQL")
        try:
            shutil.chown(root, user=SERVICE_USER)
        except (LookupError, PermissionError) as exc:
            shutil.rmtree(root, ignore_errors=True)
            raise PostgresUnavailable(f"no {SERVICE_USER!r} user to run PostgreSQL as") from exc
        as_user = [runuser, "-u", SERVICE_USER, "--"]
    server = PostgresServer(folder, root, _free_port(), as_user, durable)
    subprocess.run([*as_user, "mkdir", "-m", "700", str(server.socket_dir)], check=True)
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    return server
