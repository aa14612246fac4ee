"""The CPU the daemon's threads run on.

Only one thread at a time runs Python (the GIL), and an order passes between
threads many times (front end, OrderActor, an exchange worker, the paper venue's
writer, and back). Spread over several CPUs, every hand-off wakes a thread on
another CPU while the one that let go of the GIL asks for it back: on two cores,
27..31 context switches and 1,070..1,500 µs of CPU per order in the latency50
benchmark. On one CPU, the thread holding the GIL runs on until it waits for
something, and a hand-off is a switch on the same core: 10.5..11.7 switches and
620..990 µs per order, and the other cores are left to the daemon's clients.
"""

from __future__ import annotations

import os

AUTO = "auto"
"""One CPU of those the process may use: the highest-numbered (CPU 0 tends to get
more of the system's own work)."""
ANY = "any"
"""Threads run on any CPU the process may use, as the scheduler places them."""


def allowed_cpus() -> set[int]:
    """The CPUs this process may run on (all of them where that cannot be asked)."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def check_cpu(setting: int | str) -> str | None:
    """Why `setting` is not a CPU setting this process can follow, or None."""
    if isinstance(setting, str):
        return None if setting in (AUTO, ANY) else f'"{AUTO}", "{ANY}" or a CPU number'
    allowed = allowed_cpus()
    if setting not in allowed:
        return f"CPU {setting} is not one this process may run on ({_listed(allowed)})"
    if not hasattr(os, "sched_setaffinity"):
        return "this system cannot pin threads to a CPU; use \"auto\" or \"any\""
    return None


def pin(setting: int | str) -> int | None:
    """Keep the calling thread, and every thread it starts from now on, on the CPU
    `setting` names; returns that CPU, or None when threads run anywhere."""
    if setting == ANY or not hasattr(os, "sched_setaffinity"):
        return None
    cpu = max(allowed_cpus()) if setting == AUTO else int(setting)
    os.sched_setaffinity(0, {cpu})
    return cpu


def _listed(cpus: set[int]) -> str:
    return ", ".join(str(cpu) for cpu in sorted(cpus))
