"""An alert program that hands the alert to a background job and exits 0 at once (as
notifier scripts do: `curl ... &`, `mail`, which forks) is waited for until timeout_s,
then counted as a failed delivery: the sink waits for the end of the program's output
pipes, which the background job holds, not for the program. A program that does time out
is ended with whatever it started, and one that fails says why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from actors.metrics.alert_sinks import SinkError, run_executable
from tests.helpers import wait_until


def test_an_alert_program_that_exits_at_once_is_a_delivery(tmp_path: Path) -> None:
    got = tmp_path / "alert.json"
    program = tmp_path / "alert.sh"
    program.write_text(f"#!/bin/sh\ncat > {got}\n( sleep 30 ) &\nexit 0\n")
    os.chmod(program, 0o755)
    deliver = run_executable(program, timeout_s=10.0)
    deliver(b'{"name": "circuit_open"}')  # raised SinkError: TimeoutExpired before
    assert got.read_text() == '{"name": "circuit_open"}'


def _gone(pid: int) -> bool:
    """True once the process has ended (a zombie nobody reaped counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_timeout_ends_what_the_program_started_too(tmp_path: Path) -> None:
    job = tmp_path / "job.pid"
    program = tmp_path / "alert.sh"
    program.write_text(f"#!/bin/sh\n( sleep 30 ) &\necho $! > {job}\nsleep 30\n")
    os.chmod(program, 0o755)
    with pytest.raises(SinkError, match="TimeoutExpired"):
        run_executable(program, timeout_s=0.5)(b"{}")
    pid = int(job.read_text())
    wait_until(lambda: _gone(pid), "the background job killed with the program")


def test_a_failing_program_says_why(tmp_path: Path) -> None:
    program = tmp_path / "alert.sh"
    program.write_text("#!/bin/sh\necho 'curl: (6) Could not resolve host' >&2\nexit 6\n")
    os.chmod(program, 0o755)
    with pytest.raises(SinkError, match=r"^exit status 6: curl: \(6\) Could not resolve host$"):
        run_executable(program, timeout_s=3.0)(b"{}")
