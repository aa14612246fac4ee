"""The CPU a real daemon's threads run on (`cpu`), as the kernel reports it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import DaemonProcess, market_buy

ALLOWED = os.sched_getaffinity(0)


def threads_cpus(extra: str, workdir: Path) -> list[set[int]]:
    """The CPUs each thread of a daemon with config `extra` may run on, once it has
    filled an order (so the threads an order passes through are running)."""
    daemon = DaemonProcess(workdir, extra=extra).start()
    try:
        assert daemon.client().submit(market_buy())["status"] == "filled"
        assert daemon.process is not None
        tasks = Path(f"/proc/{daemon.process.pid}/task")
        return [os.sched_getaffinity(int(task.name)) for task in tasks.iterdir()]
    finally:
        daemon.stop()


@pytest.mark.parametrize("extra,expected", [
    ("", {max(ALLOWED)}),
    ('cpu = "auto"', {max(ALLOWED)}),
    (f"cpu = {min(ALLOWED)}", {min(ALLOWED)}),
    ('cpu = "any"', ALLOWED),
])
def test_every_thread_runs_on_the_configured_cpus(
        tmp_path: Path, extra: str, expected: set[int]) -> None:
    cpus = threads_cpus(extra, tmp_path)
    assert len(cpus) > 10, "front end, actors, workers, ZeroMQ's I/O thread"
    assert all(allowed == expected for allowed in cpus)
