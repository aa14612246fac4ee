"""Test support: free ports, config files, and real orderd processes."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from protocol.client import NoAnswer, OrderdClient

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 30.0
KEY, SECRET = "e2e-key", "e2e-secret-value"
T = TypeVar("T")


def wait_until(condition: Callable[[], T | None], what: str, attempts: int = 1500) -> T:
    """The first true value of `condition`, asked every 10 ms at most `attempts` times.

    For states only a poll can see (a daemon's answers, a file, a venue's book)."""
    pause = threading.Event()
    for _ in range(attempts):
        value = condition()
        if value:
            return value
        pause.wait(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def ephemeral_low(path: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> int:
    """The lowest port the kernel gives an outgoing connection (Linux's default 32768)."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


PORTS_FROM = 20000
_ports = random.Random(os.getpid())


def free_ports(count: int) -> list[int]:
    """Distinct ports free now, below the kernel's ephemeral range. A port picked from
    within it (binding port 0) can be taken by any outgoing connection, the daemon's or
    the venue's, before the test's process binds it: seen as a daemon failing to start
    with "Address already in use"."""
    low = ephemeral_low()
    if low - PORTS_FROM < 1000:  # an unusual range: the kernel's pick, as before
        return _kernel_ports(count)
    sockets: list[socket.socket] = []
    try:
        while len(sockets) < count:
            sock = socket.socket()
            try:
                sock.bind(("127.0.0.1", _ports.randrange(PORTS_FROM, low)))
            except OSError:  # in use (or held by one picked already): another
                sock.close()
                continue
            sockets.append(sock)
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _kernel_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    return free_ports(1)[0]


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def write_config(path: Path, *, control: str, events: str, extra: str = "",
                 exchanges: str | None = None, orders: str = "", tracking: str = "") -> Path:
    """extra: top-level keys and tables; orders, tracking: more lines of [orders] and of
    [tracking] (whose intervals are short here unless `tracking` sets them)."""
    exchanges = exchanges if exchanges is not None else (
        '[[exchanges]]\nname = "paper"\ndriver = "paper"\n')
    intervals = "" if "interval_s" in tracking.replace("safety_interval_s", "") else (
        "interval_s = 0.2\nyoung_interval_s = 0.2\n")
    path.write_text(
        f'state_dir = "state"\n{extra}\n'
        f'[control]\nendpoint = "{control}"\n'
        f'[events]\nendpoint = "{events}"\n'
        f'[orders]\naccept_timeout_s = 5.0\n{orders}'
        f'[tracking]\n{intervals}{tracking}'
        f'{exchanges}'
    )
    return path


STARTED: list[subprocess.Popen[bytes]] = []
"""Every daemon process a test started; the suite kills those a failing test left."""


def kill_leftovers() -> None:
    while STARTED:
        process = STARTED.pop()
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


@dataclass
class DaemonProcess:
    """A real orderd process on free ports."""

    workdir: Path
    extra: str = ""
    exchanges: str | None = None
    tracking: str = ""
    """More lines of [tracking] (e.g. `stream = false`)."""
    orders: str = ""
    """More lines of [orders] (e.g. `max_backlog = 3`)."""
    control: str = ""
    events: str = ""
    process: subprocess.Popen[bytes] | None = None
    clients: list[OrderdClient] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment variables of the daemon process."""
    curve_keys: tuple[Path, Path] | None = None
    """(client secret certificate, server public certificate) when CURVE is on."""

    def __post_init__(self) -> None:
        control_port, events_port = free_ports(2)
        self.control = self.control or f"tcp://127.0.0.1:{control_port}"
        self.events = self.events or f"tcp://127.0.0.1:{events_port}"
        self.config = write_config(self.workdir / "orderd.toml", control=self.control,
                                   events=self.events, extra=self.extra,
                                   exchanges=self.exchanges, tracking=self.tracking,
                                   orders=self.orders)
        self.log = self.workdir / "orderd.log"

    @property
    def state_dir(self) -> Path:
        return self.workdir / "state"

    def start(self, states: tuple[str, ...] = ("ready",)) -> DaemonProcess:
        """Start it and wait until `ping` answers one of `states`."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "daemon.cli", "--config", str(self.config)],
                cwd=ROOT, stdout=log, stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env})
        STARTED.append(self.process)
        self.wait_ready(states)
        return self

    def wait_ready(self, states: tuple[str, ...] = ("ready",)) -> None:
        """Ping until the daemon answers `ready` (or another of `states`); it may first
        answer `starting` while it resolves orders left over by the last run."""
        deadline = time.monotonic() + START_TIMEOUT_S
        pause = threading.Event()
        with self.client_of(timeout_s=0.5) as client:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise AssertionError(f"orderd exited: {self.log.read_text()}")
                try:
                    if client.ping()["state"] in states:
                        return
                except NoAnswer:
                    continue
                pause.wait(0.05)  # answered, but still starting
        raise AssertionError(f"orderd did not become ready: {self.log.read_text()[-5000:]}")

    def wait_for_log(self, text: str) -> str:
        """The log once it contains `text` (the daemon's log is a file: poll it)."""

        def logged() -> str | None:
            content = self.log.read_text(errors="replace")
            return content if text in content else None

        return wait_until(logged, f"{text!r} in the daemon's log")

    def client_of(self, timeout_s: float) -> OrderdClient:
        keys = self.curve_keys or (None, None)
        return OrderdClient(self.control, timeout_s=timeout_s, client_key_file=keys[0],
                            server_key_file=keys[1])

    def client(self, timeout_s: float = 10.0) -> OrderdClient:
        client = self.client_of(timeout_s)
        self.clients.append(client)
        return client

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=30)
        for client in self.clients:
            client.close()
        self.clients.clear()
        return code


@contextmanager
def running_daemon(workdir: Path, **kwargs: Any) -> Iterator[DaemonProcess]:
    daemon = DaemonProcess(workdir, **kwargs).start()
    try:
        yield daemon
    finally:
        if daemon.process is not None and daemon.process.poll() is None:
            daemon.stop(signal.SIGKILL)


def market_buy(amount: str = "0.01", symbol: str = "BTC/USD", **extra: Any) -> dict[str, Any]:
    return {"symbol": symbol, "side": "buy", "type": "market", "amount": amount, **extra}


def resting_limit_buy(amount: str = "0.01", price: str = "1000", symbol: str = "BTC/USD",
                      **extra: Any) -> dict[str, Any]:
    """A buy limit far below the market: it rests."""
    return {"symbol": symbol, "side": "buy", "type": "limit", "amount": amount,
            "price": price, **extra}


NO_VENUE_LIMITS = ("--weight-limit", "0", "--orders-per-10s", "0", "--orders-per-day", "0",
                   "--raw-requests-per-5m", "0")
"""binance's request limits off: a test about other things is not refused for pace."""


class VenueProcess:
    """A real `orderd paper-venue` on a port it picks itself.

    binance's request limits are off unless `flags` set them (a later flag wins)."""

    def __init__(self, state: Path, *flags: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daemon.cli", "paper-venue", "--listen", "127.0.0.1:0",
             "--state", str(state), "--api-key", KEY, "--secret", SECRET,
             *NO_VENUE_LIMITS, *flags],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert "listening on " in line, self.process.stderr.read() if self.process.stderr else ""
        self.url = line.split("listening on ", 1)[1].strip()

    def script(self, *faults: dict[str, Any]) -> None:
        """Faults for the next matching requests (`POST /_venue/faults`)."""
        body = json.dumps({"script": list(faults)}).encode()
        request = urllib.request.Request(self.url + "/_venue/faults", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()

    def held(self) -> int:
        """How many answers a `hold_answer` fault holds back now (`GET /_venue/faults`)."""
        with urllib.request.urlopen(self.url + "/_venue/faults", timeout=10) as answer:
            return int(json.loads(answer.read())["held"])

    def release(self) -> int:
        """Let every held answer go (`POST /_venue/release`); how many there were."""
        request = urllib.request.Request(self.url + "/_venue/release", data=b"{}",
                                         method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(json.loads(answer.read())["released"])

    def orders(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(self.url + "/_venue/orders", timeout=10) as answer:
            orders: list[dict[str, Any]] = json.loads(answer.read())["orders"]
        return orders

    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of the API requests the venue received, oldest first."""
        with urllib.request.urlopen(self.url + "/_venue/requests", timeout=10) as answer:
            return [(m, p) for m, p in json.loads(answer.read())["requests"]]

    def usage(self) -> dict[str, Any]:
        """What the venue's limits counted (`GET /_venue/usage`)."""
        with urllib.request.urlopen(self.url + "/_venue/usage", timeout=10) as answer:
            usage: dict[str, Any] = json.loads(answer.read())
        return usage

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return code
