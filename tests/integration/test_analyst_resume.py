"""A killed leader does not cost the analyst the result (issue 15, item 6).

``pets query --json`` runs as a real process; its first stdout line names the
query as soon as the leader accepted it. The leader is then killed (SIGKILL)
and restarted mid-query; holders contribute to the restarted leader, the
query closes, and the same ``pets query`` process re-attaches and prints the
exact result. ``pets result QUERY_ID`` and ``pets query --resume QUERY_ID``
fetch the finished result again later.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

from pets.cli.exits import EXIT_OK
from tests.integration.conftest import contribute, expected, run

QUERY = "sum(cost) from hospitals group by sex"


def _readline(proc: subprocess.Popen[str], timeout: float = 60.0) -> str:
    """The next stdout line of ``proc``, or "" if it ends (or stays silent) first."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() if ready else ""


def _pets(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pets", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _rows(doc: dict) -> list[tuple[str, float]]:
    return sorted((row["sex"], row["sum"]) for row in doc["result"]["rows"])


def test_query_survives_a_leader_restart_and_result_fetches_it_later(
    make_cluster, tmp_path: Path
) -> None:
    cluster = make_cluster()  # no nodes: this test decides when holders contribute
    config = cluster.write_analyst_config(tmp_path / "analyst.toml")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pets",
            "query",
            "--config",
            str(config),
            "--json",
            "--close-after",
            "2",
            "--deadline",
            "90",
            "--query",
            QUERY,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        first = _readline(proc)
        assert first, "no query id on stdout before the leader went away"
        submitted = json.loads(first)
        assert submitted["event"] == "submitted"
        query_id = submitted["query_id"]

        cluster.kill("leader", signal.SIGKILL)
        cluster.restart_server("leader")
        for holder in ("org-1", "org-2"):
            run(contribute(cluster, holder, query_id))

        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == EXIT_OK, err
    assert "Traceback" not in err
    assert "re-attaching" in err  # it noticed the lost leader and came back
    doc = json.loads(out.splitlines()[-1])
    assert doc["event"] == "outcome" and doc["query_id"] == query_id
    assert doc["state"] == "ready" and doc["contributors"] == 2

    truth = expected(cluster, QUERY, ["org-1", "org-2"])
    want = sorted((row["sex"], row["sum"]) for row in truth.to_json_obj()["rows"])
    got = _rows(doc)
    assert [k for k, _ in got] == [k for k, _ in want]
    for (_, a), (_, b) in zip(got, want, strict=True):
        assert abs(a - b) <= 1e-6 * max(1.0, abs(b))

    # Later, from another process: by id, both spellings.
    later = _pets("result", "--config", str(config), "--json", query_id)
    assert later.returncode == EXIT_OK, later.stderr
    assert _rows(json.loads(later.stdout.splitlines()[-1])) == got
    resumed = _pets("query", "--config", str(config), "--json", "--resume", query_id)
    assert resumed.returncode == EXIT_OK, resumed.stderr
    assert _rows(json.loads(resumed.stdout.splitlines()[-1])) == got
    # For people, on a non-TTY (stderr is a pipe here): a plain status line, not silence.
    text = _pets("result", "--config", str(config), query_id)
    assert text.returncode == EXIT_OK, text.stderr
    assert f"{query_id}: ready, 2 contributor(s)" in text.stderr
    assert "2 holders contributed" in text.stdout


def test_result_of_an_unknown_query_is_one_error_line(shared_cluster, tmp_path: Path) -> None:
    config = shared_cluster.write_analyst_config(tmp_path / "analyst.toml")
    out = _pets("result", "--config", str(config), "q-doesnotexist")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("pets result: error: ")
