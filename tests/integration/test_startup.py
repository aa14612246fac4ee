"""Start-up fails fast and says why; one owner per state_dir."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from daemon.state_lock import StateDirInUse
from orderd import BasicOrderExecutor, ReliableOrderExecutor
from tests.helpers import ROOT, DaemonProcess, free_port, market_buy, write_config

FAIL_FAST_S = 10.0
"""A start-up that cannot succeed ends within this (it used to hang until SIGTERM)."""


@contextmanager
def listening(port: int) -> Iterator[None]:
    """Another program holding a TCP port."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        yield


def orderd(*args: str, timeout_s: float = FAIL_FAST_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout_s)


@pytest.mark.parametrize("key", ["control.endpoint", "events.endpoint", "metrics.listen"])
def test_a_port_in_use_stops_start_up_at_once_naming_its_key(tmp_path: Path, key: str) -> None:
    control, events, metrics = (free_port() for _ in range(3))
    daemon = DaemonProcess(tmp_path, control=f"tcp://127.0.0.1:{control}",
                           events=f"tcp://127.0.0.1:{events}",
                           extra=f'[metrics]\nlisten = "127.0.0.1:{metrics}"\n')
    taken = {"control.endpoint": control, "events.endpoint": events,
             "metrics.listen": metrics}[key]
    with listening(taken):
        started = time.monotonic()
        result = orderd("--config", str(daemon.config))
        assert time.monotonic() - started < FAIL_FAST_S
        assert result.returncode == 1
        assert f"start-up failed: {key}: " in result.stderr and "in use" in result.stderr
        # check-config reports the same, without starting
        checked = orderd("check-config", "--config", str(daemon.config))
        assert checked.returncode == 1 and f"{key}: " in checked.stderr
    # what it opened is closed again: the same configuration starts now
    daemon.start()
    assert daemon.client().ping()["state"] == "ready"
    assert daemon.stop() == 0


def test_a_socket_zeromq_cannot_bind_stops_start_up(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "control.sock"
    config = write_config(tmp_path / "orderd.toml", control=f"ipc://{missing}",
                          events=f"tcp://127.0.0.1:{free_port()}")
    result = orderd("--config", str(config))
    assert result.returncode == 1
    assert "start-up failed: control.endpoint: cannot bind" in result.stderr


def test_check_config_reports_a_state_dir_it_cannot_write(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    config = tmp_path / "orderd.toml"
    config.write_text('state_dir = "a-file/state"\n'
                      f'[control]\nendpoint = "tcp://127.0.0.1:{free_port()}"\n'
                      f'[events]\nendpoint = "tcp://127.0.0.1:{free_port()}"\n')
    result = orderd("check-config", "--config", str(config))
    assert result.returncode == 1
    assert f"state_dir: {tmp_path / 'a-file'} is not a folder" in result.stderr
    fine = write_config(tmp_path / "fine.toml", control=f"tcp://127.0.0.1:{free_port()}",
                        events=f"tcp://127.0.0.1:{free_port()}")
    assert orderd("check-config", "--config", str(fine)).returncode == 0


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()}


def test_a_second_owner_of_a_state_dir_exits_2_and_touches_nothing(tmp_path: Path) -> None:
    first = DaemonProcess(tmp_path).start()
    assert first.process is not None
    first.client().submit(market_buy(client_order_id="owned"))
    first.client().halt("hold still")  # nothing moves in the state_dir meanwhile
    before = snapshot(first.state_dir)
    in_use = f"state_dir {first.state_dir} is in use by pid {first.process.pid}"

    config = write_config(tmp_path / "second.toml", control=f"tcp://127.0.0.1:{free_port()}",
                          events=f"tcp://127.0.0.1:{free_port()}")
    config.write_text(config.read_text().replace(
        'state_dir = "state"', f'state_dir = "{first.state_dir}"', 1))
    daemon = orderd("--config", str(config))
    assert daemon.returncode == 2 and in_use in daemon.stderr
    job = subprocess.run([sys.executable, "-m", "orderd.reconciliation_job", "--config",
                          str(config), "--run-once"], cwd=ROOT, capture_output=True, text=True,
                         timeout=FAIL_FAST_S)
    assert job.returncode == 2 and in_use in job.stderr
    assert "Warning" not in job.stderr  # `python -m` of a module the package imports itself
    venue = orderd("paper-venue", "--listen", "127.0.0.1:0", "--state", str(first.state_dir))
    assert venue.returncode == 2 and in_use in venue.stderr
    checked = orderd("check-config", "--config", str(config))
    assert checked.returncode == 1 and in_use in checked.stderr
    assert "state_dir: state_dir" not in checked.stderr  # the key is named once
    assert snapshot(first.state_dir) == before

    async def executors() -> None:
        for executor in (ReliableOrderExecutor({"state_dir": str(first.state_dir)}),
                         BasicOrderExecutor({"state_dir": str(first.state_dir)})):
            with pytest.raises(StateDirInUse, match="is in use by pid"):
                await executor.configure()
            await executor.close()

    asyncio.run(executors())
    assert snapshot(first.state_dir) == before
    assert first.client().status(client_order_id="owned")["status"] == "filled"
    assert first.stop() == 0


def test_a_state_dir_is_free_again_once_its_owner_is_gone(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path).start()
    assert daemon.process is not None
    os.kill(daemon.process.pid, 9)  # the kernel drops the lock with the process
    daemon.process.wait(timeout=30)
    daemon.start()
    assert daemon.client().ping()["state"] == "ready"
    assert daemon.stop() == 0
