"""The CPU the daemon's threads run on (`cpu`; used by `orderd run` only).

Only one thread at a time runs Python (the GIL), and an order passes between
threads many times (front end, OrderActor, an exchange worker, whichever worker
commits the paper venue's queued writes, and back). Spread over several CPUs,
every hand-off wakes a thread on another CPU while the one that let go of the GIL
asks for it back. Measured in the latency50 benchmark on two cores
(bench/README.md): 27..30 context switches and 1,130..1,370 µs of CPU per order
on any CPU, 10.5..11.2 switches and 700..990 µs on one, where a hand-off is a
switch on the same core and the other cores are left to the daemon's clients.
"""

from __future__ import annotations

import os

AUTO = "auto"
"""One CPU of those the process may use: the highest-numbered (CPU 0 tends to get
more of the system's own work)."""
ANY = "any"
"""Threads run on any CPU the process may use, as the scheduler places them."""
EXPECTED = f'expected "{AUTO}", "{ANY}" or a CPU number'


def check_cpu(setting: int | str) -> str | None:
    """Why `setting` is not a CPU setting, or None. Whether the CPU it names exists is
    for `pin` to say, on the machine the daemon runs on."""
    if isinstance(setting, bool):
        return EXPECTED
    if isinstance(setting, int):
        return None if setting >= 0 else EXPECTED
    return None if setting in (AUTO, ANY) else EXPECTED


def pin(setting: int | str) -> int | None:
    """Keep the calling thread, and every thread it starts from now on, on the CPU
    `setting` names; returns that CPU, or None when threads run anywhere.
    ValueError when the CPU is not one this process may run on; OSError when the
    system refuses."""
    if setting == ANY:
        return None
    if not hasattr(os, "sched_setaffinity"):
        if setting == AUTO:
            return None
        raise ValueError("this system cannot keep threads on one CPU; use \"auto\" or \"any\"")
    allowed = os.sched_getaffinity(0)
    cpu = max(allowed) if setting == AUTO else int(setting)
    if cpu not in allowed:
        listed = ", ".join(str(n) for n in sorted(allowed))
        raise ValueError(f"CPU {cpu} is not one this process may run on ({listed})")
    os.sched_setaffinity(0, {cpu})
    return cpu
