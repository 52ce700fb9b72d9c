"""The README's by-hand walk-through, run for real from examples/local."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on port {port}"
            time.sleep(0.1)


def test_examples_local_walkthrough(tmp_path: Path) -> None:
    work = tmp_path / "local"
    shutil.copytree(ROOT / "examples" / "local", work)
    leader, helper = _free_port(), _free_port()
    for cfg in work.glob("*.toml"):
        text = cfg.read_text().replace("7001", str(leader)).replace("7002", str(helper))
        cfg.write_text(text)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    setup = subprocess.run(
        ["bash", "setup.sh"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert setup.returncode == 0, setup.stderr
    pets = [sys.executable, "-m", "pets"]
    procs = [
        subprocess.Popen(
            [*pets, "serve", "--config", "helper.toml"], cwd=work, stderr=subprocess.DEVNULL
        )
    ]
    _wait_listening(helper)
    procs.append(
        subprocess.Popen(
            [*pets, "serve", "--config", "leader.toml"], cwd=work, stderr=subprocess.DEVNULL
        )
    )
    _wait_listening(leader)
    procs += [
        subprocess.Popen(
            [*pets, "node", "--config", f"node-0{i}.toml"], cwd=work, stderr=subprocess.DEVNULL
        )
        for i in (1, 2, 3)
    ]
    try:
        out = subprocess.run(
            [
                *pets,
                "query",
                "--config",
                "analyst.toml",
                "--close-after",
                "3",
                "--deadline",
                "60",
                "--json",
                "--query",
                "mean(cost) from hospitals group by sex",
            ],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout.splitlines()[-1])  # JSON Lines: the outcome is last
        assert doc["state"] == "ready" and doc["contributors"] == 3
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        codes = [p.wait(20) for p in procs]
    assert codes == [0] * len(procs)
