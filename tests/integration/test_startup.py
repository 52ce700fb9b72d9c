"""Start-up order (issue 15, item 9): a server binds its port before its service starts.

A leader whose port is taken prints one ``pets serve: error:`` line and exits
with :data:`pets.cli.exits.EXIT_FAILED`: no "leader started" (it never did), and
no misleading ``critical`` lines about its contribution loops before the
real reason.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pets.cli.exits import EXIT_FAILED


@pytest.mark.parametrize("server", ["leader", "helper-1"])
def test_a_port_in_use_is_one_clear_error(make_cluster, server: str) -> None:  # type: ignore[no-untyped-def]
    cluster = make_cluster()
    config = cluster.workdir / "config" / f"{server}.toml"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pets",
            "serve",
            "--config",
            str(config),
            "--listen",
            cluster.address(server),  # the running server's port
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == EXIT_FAILED
    lines = out.stderr.splitlines()
    errors = [line for line in lines if line.startswith("pets serve: error:")]
    assert len(errors) == 1 and "could not listen on" in errors[0]
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert [r for r in records if r["level"] in ("error", "critical")] == []
    assert not [r for r in records if r["msg"] in ("leader started", "helper started")]
    assert "Traceback" not in out.stderr


def test_a_metrics_port_in_use_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The metrics endpoint is bound before the service starts, like the gRPC port."""
    import asyncio
    import socket

    from pets.errors import ConfigError
    from pets.server.app import Server
    from pets.server.config import ServerConfig

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        config = ServerConfig(
            role="helper",
            name="helper-1",
            listen="127.0.0.1:0",
            state_dir=tmp_path,
            min_holders=1,
            tls=None,
            metrics_listen=address,
        )
        with pytest.raises(ConfigError, match=f"could not serve metrics on {address}"):
            asyncio.run(Server(config).start())
