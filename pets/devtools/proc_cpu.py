"""CPU time of a whole process tree, for benchmarks on a shared machine.

A wall-clock rate on a machine that other work also loads measures that load
as much as the code. The CPU time the measured processes used is the
load-independent figure; with worker pools (``pets.vdaf.pool``,
``BatchVerifier``) it has to include every descendant, which
``resource.getrusage`` only counts once a child has exited and been waited
for. So this reads ``/proc/<pid>/stat`` (user + system time) of a process and
all its live descendants. Linux only: elsewhere it returns None and callers
leave the metric out. Resolution is the kernel's clock tick (usually 10 ms),
so measure spans of at least a few hundred milliseconds.
"""

from __future__ import annotations

import os


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            # The command name (field 2) may contain spaces; the rest follows its ')'.
            return f.read().rpartition(")")[2].split()
    except OSError:
        return None


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def tree_cpu_seconds(*pids: int) -> float | None:
    """User + system CPU seconds of ``pids`` and all their live descendants (None
    where ``/proc`` is not available)."""
    if not os.path.isdir("/proc/self"):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    seen: set[int] = set()
    for pid in pids:
        for p in _descendants(pid):
            if p in seen:
                continue
            seen.add(p)
            fields = _stat_fields(p)
            if fields is not None:
                total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick
