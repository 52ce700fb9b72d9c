"""A :class:`~pets.devtools.localcluster.LocalCluster` whose servers keep their state
in PostgreSQL (``state = "postgresql://..."``, :mod:`pets.server.store.postgres`).

Each server gets its OWN database (:func:`server_databases`): a leader and a
helper must never share one, or a database reader would see what the
one-honest-server model keeps apart (docs/ARCHITECTURE.md, "Storage").
Used by the integration tests and the PostgreSQL benchmark.
"""

from __future__ import annotations

import itertools
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

    @classmethod
    def like(cls, cluster: LocalCluster, state_urls: dict[str, str]) -> PostgresCluster:
        """The same cluster settings, with the servers' state in PostgreSQL."""
        settings = {f.name: getattr(cluster, f.name) for f in fields(cluster) if f.init}
        return cls(**settings, state_urls=state_urls)

    def _server_config(self, name: str, role: str) -> Path:
        path = super()._server_config(name, role)
        if name in self.state_urls:  # a top-level key: before the first [table]
            path.write_text(f'state = "{self.state_urls[name]}"\n' + path.read_text())
        return path


def server_databases(server: PostgresServer, names: Iterable[str]) -> dict[str, str]:
    """A fresh database on ``server`` for each server name: ``{name: url}``."""
    urls = {}
    for name in names:
        database = f"pets_{name.replace('-', '_')}_{next(_databases)}"
        server.create_database(database)
        urls[name] = server.url(database)
    return urls
