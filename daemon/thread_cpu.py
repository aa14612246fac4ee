"""CPU time of the daemon's threads, by kind of thread.

The daemon's threads share one interpreter lock, so which of them spends the CPU is
what decides its throughput; the operating system shows every Python thread under the
process's name, so only the process itself can tell them apart. Threads are grouped by
their name without its trailing number (`ExchangeActor-12` counts as `ExchangeActor`).
Threads outside Python (ZeroMQ's own) and threads that have ended are not counted.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

NUMBERED = re.compile(r"-\d+$")
TASKS = Path("/proc/self/task")
"""Linux's view of this process's threads, each by its native id."""


def cpu_by_thread() -> dict[str, float]:
    """CPU seconds of the live Python threads so far, summed by kind, in name order."""
    totals: dict[str, float] = {}
    for thread in threading.enumerate():
        seconds = thread_cpu_s(thread)
        if seconds is None:
            continue
        kind = NUMBERED.sub("", thread.name)
        totals[kind] = totals.get(kind, 0.0) + seconds
    return {kind: round(totals[kind], 6) for kind in sorted(totals)}


def thread_cpu_s(thread: threading.Thread) -> float | None:
    """The thread's user and system CPU seconds (at the clock tick's resolution); None
    where the system cannot say (not started, ended meanwhile, no /proc). Read from
    /proc by native id: a thread ending meanwhile is then only missing, never misread."""
    if thread.native_id is None:
        return None
    try:
        stat = (TASKS / str(thread.native_id) / "stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # after the name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
