"""The CPU a real daemon's threads run on (`cpu`), as the kernel reports it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, DaemonProcess, market_buy, running_daemon, write_config

ALLOWED: set[int] = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
pytestmark = pytest.mark.skipif(
    len(ALLOWED) < 2, reason="needs Linux and two CPUs to tell one CPU from any")


def threads_cpus(daemon: DaemonProcess) -> list[set[int]]:
    """The CPUs each live thread of the daemon may run on."""
    assert daemon.process is not None
    cpus = []
    for task in Path(f"/proc/{daemon.process.pid}/task").iterdir():
        try:
            cpus.append(os.sched_getaffinity(int(task.name)))
        except ProcessLookupError:  # the thread ended meanwhile
            continue
    return cpus


@pytest.mark.parametrize("extra,expected", [
    ("", {max(ALLOWED, default=0)}),
    ('cpu = "auto"', {max(ALLOWED, default=0)}),
    (f"cpu = {min(ALLOWED, default=0)}", {min(ALLOWED, default=0)}),
    ('cpu = "any"', ALLOWED),
])
def test_every_thread_runs_on_the_configured_cpus(
        tmp_path: Path, extra: str, expected: set[int]) -> None:
    with running_daemon(tmp_path, extra=extra) as daemon:
        # the threads an order passes through are running once it is filled
        assert daemon.client().submit(market_buy())["status"] == "filled"
        cpus = threads_cpus(daemon)
        assert len(cpus) > 10, "front end, actors, workers, ZeroMQ's I/O thread"
        assert all(allowed == expected for allowed in cpus)
        assert daemon.stop() == 0


def test_a_cpu_the_process_may_not_use_stops_start_up_with_status_2(tmp_path: Path) -> None:
    config = write_config(tmp_path / "orderd.toml", control="tcp://127.0.0.1:1",
                          events="tcp://127.0.0.1:2", extra=f"cpu = {max(ALLOWED) + 1}")
    result = subprocess.run([sys.executable, "-m", "daemon.cli", "--config", str(config)],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"cpu: CPU {max(ALLOWED) + 1} is not one this process may run on" in result.stderr


def test_a_reload_that_changes_the_cpu_applies_the_rest(tmp_path: Path) -> None:
    with running_daemon(tmp_path) as daemon:
        write_config(daemon.config, control=daemon.control, events=daemon.events,
                     extra=f'log_level = "DEBUG"\ncpu = {min(ALLOWED)}')
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGHUP)
        assert "log level DEBUG" in daemon.wait_for_log("reloaded")
        daemon.wait_for_log("changes to cpu need a restart and were not applied")
        assert all(allowed == {max(ALLOWED)} for allowed in threads_cpus(daemon))
        assert daemon.stop() == 0
