"""The soak's processes: a restartable daemon and venue on fixed ports, and a small disk.

Each can be killed with SIGKILL and started again on the same ports and state, as a
service manager would; the daemon keeps a record of when it could not have answered
(its down intervals) and how long each start took to reach `ready`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol.client import NoAnswer, OrderdClient
from protocol.errors import ProtocolError
from tests.helpers import KEY, NO_VENUE_LIMITS, ROOT, SECRET

READY_TIMEOUT_S = 120.0
"""A start that has not reached `ready` by then is counted as stuck."""


class Venue:
    """`orderd paper-venue` on a fixed port, its book kept in `state` across kills."""

    def __init__(self, state: Path, port: int, log: Path, seed: int) -> None:
        self.state, self.port, self.log, self.seed = state, port, log, seed
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, error_rate: float = 0.0, ambiguous_rate: float = 0.0) -> None:
        """Start it with these random fault rates (a new fault seed each start)."""
        self.starts += 1
        flags = ["--error-rate", str(error_rate), "--ambiguous-rate", str(ambiguous_rate),
                 "--seed", str(self.seed * 1000 + self.starts)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "daemon.cli", "paper-venue", "--listen",
                 f"127.0.0.1:{self.port}", "--state", str(self.state), "--api-key", KEY,
                 "--secret", SECRET, *NO_VENUE_LIMITS, *flags],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=log)
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()  # ends when it exits, too
        if "listening on" not in line:
            raise RuntimeError(f"the venue did not start: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        self._end(signal.SIGTERM)

    def _end(self, sig: int) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
        self.process.wait(timeout=30)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    def _post(self, path: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                         method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()

    def script(self, faults: list[dict[str, Any]]) -> None:
        """Faults for the next matching requests (`POST /_venue/faults`)."""
        self._post("/_venue/faults", {"script": faults})

    def set_price(self, symbol: str, price: str) -> None:
        self._post("/_venue/price", {"symbol": symbol, "price": price})

    def orders(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(self.url + "/_venue/orders", timeout=30) as answer:
            orders: list[dict[str, Any]] = json.loads(answer.read())["orders"]
        return orders


@dataclass
class Start:
    """One start of the daemon: how long until `ready`, and what it had to recover."""

    ready_s: float | None
    """From spawning the process to the first `ready` answer (None: never, in time)."""
    recovering: int
    """Orders it said it was recovering (its log's "recovering N unresolved orders")."""


@dataclass
class Daemon:
    """A real orderd on fixed ports; restarted by its owner after a kill or an exit."""

    workdir: Path
    config: Path
    control: str
    process: subprocess.Popen[bytes] | None = None
    downs: list[tuple[float, float]] = field(default_factory=list)
    """(from, to), monotonic: while no daemon process could answer (kill to respawn)."""
    starts: list[Start] = field(default_factory=list)
    exits: list[int] = field(default_factory=list)
    """Exit statuses of the daemon stopping by itself (not killed by us)."""
    starting_answers: int = 0
    """`starting` answers to the pings waiting for `ready`."""
    _down_since: float | None = None
    _alive_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def log(self) -> Path:
        return self.workdir / "orderd.log"

    def spawn(self) -> None:
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("the daemon is running already")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "daemon.cli", "--config", str(self.config)],
                cwd=ROOT, stdout=log, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        with self._lock:
            if self._down_since is not None:
                self.downs.append((self._down_since, time.monotonic()))
                self._down_since = None

    def start(self) -> Start:
        """Spawn it and wait until it answers `ready`."""
        offset = self.log.stat().st_size if self.log.exists() else 0
        began = time.monotonic()
        self.spawn()
        ready = self.wait_ready(began)
        start = Start(ready, self._recovering(offset))
        self.starts.append(start)
        return start

    def wait_ready(self, began: float) -> float | None:
        """Seconds from `began` to the first `ready` (None: it exited or took too long)."""
        pause = threading.Event()
        with OrderdClient(self.control, timeout_s=0.5) as client:
            while time.monotonic() - began < READY_TIMEOUT_S:
                if self.process is None or self.process.poll() is not None:
                    return None
                try:
                    state = client.ping()["state"]
                except (NoAnswer, ProtocolError):
                    continue
                if state == "ready":
                    return time.monotonic() - began
                self.starting_answers += state == "starting"
                pause.wait(0.02)
        return None

    def _recovering(self, offset: int) -> int:
        with self.log.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
        marker = "recovering "
        for line in text.splitlines():
            if marker in line and "unresolved orders" in line:
                words = line.split(marker, 1)[1].split()
                if words and words[0].isdigit():
                    return int(words[0])
        return 0

    def kill(self) -> None:
        """SIGKILL; down from now until the next spawn."""
        self._went_down(time.monotonic())
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(timeout=30)
            self.process = None

    def exited(self) -> bool:
        """True (once) when it stopped by itself; its exit status is recorded."""
        if self.process is None:
            return False
        code = self.process.poll()
        if code is None:
            self._alive_at = time.monotonic()
            return False
        self._went_down(self._alive_at)
        self.exits.append(code)
        self.process = None
        return True

    def _went_down(self, at: float) -> None:
        with self._lock:
            if self._down_since is None:
                self._down_since = at

    def signal(self, sig: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)

    def stop(self) -> int | None:
        """SIGTERM and its exit status (None when it was not running)."""
        if self.process is None:
            return None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
            return None
        finally:
            self.process = None

    def was_down(self, begin: float, end: float) -> bool:
        """Whether a kill or exit fell within [begin, end] (or it was down meanwhile)."""
        with self._lock:
            intervals = list(self.downs)
            if self._down_since is not None:
                intervals.append((self._down_since, float("inf")))
        return any(down <= end and up >= begin for down, up in intervals)


class SmallDisk:
    """A tmpfs of its own under the daemon's state_dir, to fill for real (root only)."""

    def __init__(self, path: Path, size_mb: int) -> None:
        self.path, self.size_mb = path, size_mb
        self.mounted = False
        self.filler = path / "filler"

    def mount(self) -> str | None:
        """Mount it; why not, when it cannot be (the disk fault is then skipped)."""
        self.path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            return "not root: cannot mount a small tmpfs to fill"
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size_mb}m", "tmpfs",
                               str(self.path)], capture_output=True, text=True)
        if done.returncode != 0:
            return f"cannot mount a tmpfs: {done.stderr.strip()}"
        self.mounted = True
        return None

    def fill(self) -> None:
        """Take every free block."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for chunk in (1 << 20, 65536, 512):
                with suppress(OSError):
                    while True:
                        os.write(fd, b"\0" * chunk)
        finally:
            os.close(fd)

    def free(self) -> None:
        with suppress(FileNotFoundError):
            self.filler.unlink()

    def used_mb(self) -> float:
        stat = os.statvfs(self.path)
        return (stat.f_blocks - stat.f_bfree) * stat.f_frsize / (1 << 20)

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], check=False)
            self.mounted = False
