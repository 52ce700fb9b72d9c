"""pets.devtools.proc_cpu: CPU time of a process tree, live children included."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from pets.devtools.proc_cpu import tree_cpu_seconds

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")


def test_counts_this_process_and_a_live_child() -> None:
    own = tree_cpu_seconds(os.getpid())
    assert own is not None and own >= 0
    # A child that burns about 0.3 s of CPU, then waits to be stopped: still alive, so
    # only the /proc walk (not getrusage) can count it.
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time, sys\n"
            "end = time.process_time() + 0.3\n"
            "while time.process_time() < end: pass\n"
            "print('done', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "done"
        before = time.process_time()
        total = tree_cpu_seconds(os.getpid())
        assert total is not None
        assert total - own >= 0.25 - (time.process_time() - before)
        alone = tree_cpu_seconds(child.pid)
        assert alone is not None and alone >= 0.25
    finally:
        child.kill()
        child.wait()
