"""A :class:`~pets.devtools.localcluster.LocalCluster` whose servers keep their state
in PostgreSQL (``state = "postgresql://..."``, :mod:`pets.server.store.postgres`).

Each server gets its OWN database (:func:`server_databases`): a leader and a
helper must never share one, or a database reader would see what the
one-honest-server model keeps apart (docs/ARCHITECTURE.md, "Storage").
Used by the integration tests and the PostgreSQL benchmark.

``leader_replicas = N`` starts the leader as N real processes (issue 14, item
2) on the leader's one database, each on its own port with its own
``replica`` name (``leader``, ``leader-r2``, ...); holders and analysts get
every replica's address (a comma list: gRPC ``round_robin``), and
:meth:`PostgresCluster.kill` / :meth:`~PostgresCluster.restart_server` take a
replica's process name.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path

from pets.devtools.localcluster import LocalCluster
from pets.devtools.pgserver import PostgresServer

_databases = itertools.count()


@dataclass
class PostgresCluster(LocalCluster):
    """Servers named in ``state_urls`` use that database; others SQLite as usual."""

    state_urls: dict[str, str] = field(default_factory=dict)
    # The leader's processes on its database (each its own port and replica name).
    leader_replicas: int = 1

    @classmethod
    def like(cls, cluster: LocalCluster, state_urls: dict[str, str]) -> PostgresCluster:
        """The same cluster settings, with the servers' state in PostgreSQL."""
        settings = {f.name: getattr(cluster, f.name) for f in fields(cluster) if f.init}
        return cls(**settings, state_urls=state_urls)

    @property
    def leader_processes(self) -> list[str]:
        """The leader replicas' process names: ``leader``, ``leader-r2``, ..."""
        return ["leader"] + [f"leader-r{i}" for i in range(2, self.leader_replicas + 1)]

    def start_servers(self) -> None:
        for h in self.helper_names:
            self._start_server(h, "helper")
        for process in self.leader_processes:
            self._start_server(process, "leader")

    def restart_server(self, name: str) -> None:
        self._start_server(name, "leader" if name in self.leader_processes else "helper")

    def address(self, name: str) -> str:
        """A server's address; the leader's lists every started replica (comma list)."""
        if name == "leader" and self.leader_replicas > 1:
            started = [p for p in self.leader_processes if p in self.ports]
            return ",".join(f"127.0.0.1:{self.ports[p]}" for p in started)
        return super().address(name)

    def replica_address(self, process: str) -> str:
        """One leader replica's own address."""
        return f"127.0.0.1:{self.ports[process]}"

    def _server_config(self, name: str, role: str) -> Path:
        server = "leader" if name in self.leader_processes else name
        path = super()._server_config(server, role)
        text = path.read_text()
        if server != name:  # another process of the leader: its own port and file
            text = re.sub(
                r'^listen = "[^"]*"$',
                f'listen = "127.0.0.1:{self.ports.get(name, 0)}"',
                text,
                flags=re.MULTILINE,
            )
            path = path.with_name(f"{name}.toml")
        if server in self.state_urls:  # top-level keys: before the first [table]
            replica = f'replica = "{name}"\n' if self.leader_replicas > 1 else ""
            text = f'state = "{self.state_urls[server]}"\n{replica}' + text
        path.write_text(text)
        return path


def server_databases(server: PostgresServer, names: Iterable[str]) -> dict[str, str]:
    """A fresh database on ``server`` for each server name: ``{name: url}``."""
    urls = {}
    for name in names:
        database = f"pets_{name.replace('-', '_')}_{next(_databases)}"
        server.create_database(database)
        urls[name] = server.url(database)
    return urls
