"""Processes under test: a real orderd on free ports, and the raw ceiling server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocol.client import OrderdClient
from tests.helpers import ROOT, DaemonProcess, free_port, toml_value

LIVE = ["pending_submit", "unknown", "pending_cancel"]


def bench_config(control: str, events: str, *, orders: dict[str, Any] | None = None,
                 faults: dict[str, Any] | None = None,
                 exchange: dict[str, Any] | None = None,
                 reconciliation: dict[str, Any] | None = None) -> str:
    """A daemon configuration: the paper venue, logging at WARNING so the log costs
    nothing per order."""
    lines = ['state_dir = "state"', 'log_level = "WARNING"',
             f'[control]\nendpoint = "{control}"', f'[events]\nendpoint = "{events}"',
             "[orders]"]
    lines += [f"{key} = {toml_value(value)}" for key, value in (orders or {}).items()]
    lines.append('[[exchanges]]\nname = "paper"\ndriver = "paper"')
    lines += [f"{key} = {toml_value(value)}" for key, value in (exchange or {}).items()]
    if faults:
        lines.append("[exchanges.faults]")
        lines += [f"{key} = {toml_value(value)}" for key, value in faults.items()]
    if reconciliation:
        lines.append("[reconciliation]")
        lines += [f"{key} = {toml_value(value)}" for key, value in reconciliation.items()]
    return "\n".join(lines) + "\n"


@contextmanager
def orderd(workdir: Path, **config: Any) -> Iterator[DaemonProcess]:
    """A running daemon; stopped with SIGTERM (SIGKILL if it hangs) on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    daemon = DaemonProcess(workdir)
    daemon.config.write_text(bench_config(daemon.control, daemon.events, **config))
    daemon.start()
    try:
        yield daemon
    finally:
        try:
            daemon.stop()
        except subprocess.TimeoutExpired:
            daemon.stop(signal.SIGKILL)


@contextmanager
def raw_ceiling(workdir: Path) -> Iterator[tuple[str, int]]:
    """The raw ceiling server on a free port; yields its endpoint and pid."""
    workdir.mkdir(parents=True, exist_ok=True)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.raw_ceiling", "--endpoint", endpoint,
         "--db", str(workdir / "raw.sqlite")], cwd=ROOT, stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        if process.stdout.readline().strip() != b"ready":
            raise RuntimeError("raw ceiling server did not start")
        yield endpoint, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


def rss_mb(pid: int) -> float:
    """Resident set size of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


@dataclass(frozen=True)
class Usage:
    """What a process has used so far; the difference of two is what a run cost."""

    cpu_s: float
    """User plus system CPU seconds, all its threads."""
    switches: int
    """Context switches of its live threads, voluntary and not. Each is a thread that
    stopped (to wait for a lock, the GIL, a sleep, I/O) or was stopped: in a daemon
    whose threads take turns at one GIL, they are what thread hand-offs cost."""

    def __sub__(self, other: Usage) -> Usage:
        return Usage(self.cpu_s - other.cpu_s, self.switches - other.switches)


def usage(pid: int) -> Usage:
    """A process's usage so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    switches = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        switches += sum(int(line.split()[1]) for line in status.splitlines()
                        if "ctxt_switches:" in line)
    return Usage((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), switches)


@dataclass(frozen=True)
class Reading:
    """The daemon's CPU so far: the process's, and its threads' by kind (its `stats`)."""

    usage: Usage
    threads: dict[str, float]


def read_daemon(client: OrderdClient, pid: int) -> Reading:
    # the client reads JSON numbers as decimals
    return Reading(usage(pid), {kind: float(seconds) for kind, seconds
                                in client.stats()["threads_cpu_s"].items()})


def spent_since(before: Reading, client: OrderdClient, pid: int,
                orders: int) -> tuple[Usage, dict[str, float]]:
    """What the daemon spent since `before`: its usage, and its CPU microseconds per
    order by kind of thread, with `other` for the rest of the process (ZeroMQ's threads,
    threads that ended meanwhile)."""
    after = read_daemon(client, pid)
    used = after.usage - before.usage
    spent = {kind: seconds - before.threads.get(kind, 0.0)
             for kind, seconds in after.threads.items()}
    spent["other"] = max(0.0, used.cpu_s - sum(spent.values()))
    return used, {kind: seconds / max(1, orders) * 1e6 for kind, seconds in spent.items()}


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def wait_settled(client: OrderdClient, timeout_s: float = 120.0) -> float:
    """Seconds until no order is waiting for its exchange (the pipeline behind
    `wait=durable` replies has caught up)."""
    begin = time.perf_counter()
    while time.perf_counter() - begin < timeout_s:
        page = client.list(status=LIVE, limit=1)
        if not page["orders"]:
            return time.perf_counter() - begin
        time.sleep(0.02)
    raise RuntimeError(f"orders still live after {timeout_s} s")
