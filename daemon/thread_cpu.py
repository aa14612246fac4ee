"""CPU time of the daemon's threads, by kind of thread.

The daemon's threads share one interpreter lock, so which of them spends the CPU is
what decides its throughput; the operating system shows every Python thread under the
process's name, so only the process itself can tell them apart. Threads are grouped by
their name without its trailing number (`ExchangeActor-12` counts as `ExchangeActor`).
Threads outside Python (ZeroMQ's own) and threads that have ended are not counted.
"""

from __future__ import annotations

import re
import sys
import threading
import time

NUMBERED = re.compile(r"-\d+$")
LINUX = sys.platform.startswith("linux")
"""Where a thread's CPU clock can be made from its native id (`cpu_clock`)."""


def cpu_by_thread() -> dict[str, float]:
    """CPU seconds of the live Python threads so far, summed by kind, in name order
    (none where the system is not Linux)."""
    if not LINUX:
        return {}
    totals: dict[str, float] = {}
    for thread in threading.enumerate():
        seconds = thread_cpu_s(thread)
        if seconds is None:
            continue
        kind = NUMBERED.sub("", thread.name)
        totals[kind] = totals.get(kind, 0.0) + seconds
    return {kind: round(totals[kind], 6) for kind in sorted(totals)}


def thread_cpu_s(thread: threading.Thread) -> float | None:
    """The thread's CPU seconds (Linux); None where the system cannot say (not started,
    ended meanwhile)."""
    if thread.native_id is None:
        return None
    try:
        return time.clock_gettime(cpu_clock(thread.native_id))
    except OSError:  # the thread ended since it was listed
        return None


def cpu_clock(native_id: int) -> int:
    """Linux's CPU-time clock of the thread with this id, as glibc's
    `pthread_getcpuclockid` makes it (nanoseconds; /proc would give clock ticks, too
    coarse for a hundred threads that each run briefly). Made from the id rather than
    asked of the thread's handle: the handle of a thread that has just ended may be
    freed, while a clock of an ended thread is only refused (EINVAL)."""
    return (~native_id << 3) | 6
