"""A real cluster whose servers run as several replicas on one PostgreSQL database each.

A server's first replica is its usual process (``leader``, ``helper-1``); more
processes of the same server (same name, certificate and database, their own
port) are started with :meth:`ReplicaCluster.start_replica` under a process
alias such as ``helper-1-b`` (the leader's own replicas can also come from
:attr:`~pets.devtools.pgcluster.PostgresCluster.leader_replicas`). Every party lists
every running replica's address (``address(server)`` joins them, so channels spread
calls with ``round_robin``), except that :attr:`ReplicaCluster.leader_dials` may
choose which of the helper's replicas the leader's config lists, so a test decides
which replica the leader's Register, Prepare and Finalize calls reach.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pets.devtools.pgcluster import PostgresCluster

HELPER = "helper-1"


@dataclass
class ReplicaCluster(PostgresCluster):
    """A :class:`PostgresCluster` with extra processes of its servers."""

    # server name -> its replicas' process aliases (the first is the server's name)
    replicas: dict[str, list[str]] = field(default_factory=dict)
    # The helper replicas whose addresses the leader's config lists (None: every one).
    leader_dials: list[str] | None = None

    def server_of(self, alias: str) -> str:
        for server, aliases in self.replicas.items():
            if alias in aliases:
                return server
        return alias

    def start_replica(self, server: str, alias: str) -> None:
        """Start one process of ``server`` (another port, the same database) as ``alias``."""
        aliases = self.replicas.setdefault(server, [server])
        if alias not in aliases:
            aliases.append(alias)
        self._start_server(alias, "leader" if server == "leader" else "helper")

    def replica_address(self, alias: str) -> str:
        return f"127.0.0.1:{self.ports[alias]}"

    def address(self, name: str) -> str:
        if name not in self.replicas:  # one process, or the leader's own replicas
            return super().address(name)
        aliases = [a for a in self.replicas[name] if a in self.ports]
        return ",".join(self.replica_address(a) for a in aliases)

    def _server_config(self, name: str, role: str) -> Path:
        server = self.server_of(name)
        if server != name:  # another process of `server`: its config, its own port
            text = super()._server_config(server, role).read_text()
            text = re.sub(
                r'^listen = "[^"]*"$',
                f'listen = "127.0.0.1:{self.ports.get(name, 0)}"',
                text,
                flags=re.MULTILINE,
            )
            path = self.workdir / "config" / f"{name}.toml"
            path.write_text(text)
            return path
        path = super()._server_config(name, role)
        if role == "leader" and self.leader_dials is not None:
            dials = ",".join(self.replica_address(r) for r in self.leader_dials)
            text = re.sub(
                rf'(name = "{HELPER}"\naddress = )"[^"]*"', rf'\1"{dials}"', path.read_text()
            )
            path.write_text(text)
        return path
