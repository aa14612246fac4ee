"""The soak's chaos: one fault at a time, at random moments, from a shuffled deck.

A deck holds each kind of fault as many times as its weight, so even a short run
meets every kind; it is reshuffled when used up. Between faults the daemon and the
venue are watched: one that stopped by itself is counted and started again, as a
service manager would.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter, deque
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from bench.soak_procs import Daemon, SmallDisk, Start, Venue
from protocol.client import NoAnswer, OrderdClient
from protocol.errors import ProtocolError

WEIGHTS = {"crash": 3, "venue_faults": 4, "kill_daemon": 2, "kill_venue": 1,
           "disk_full": 1, "sighup": 1, "cross": 1}
ACTORS = ("order", "exchange.bx.0", "exchange.bx.1", "exchange.bx.side", "circuit",
          "metrics", "reconciler")
CRASHES_PER_PERIOD = 3
"""Crashes within the supervisor's period, below its intensity: a storm (exit 70) is a
fault of its own, not the one this soak makes."""
DISK_FULL_MAX_S = 10.0
"""How long the disk stays full at most when no commit fails."""
CREATE = {"path": "/api/v3/order", "method": "POST"}
LOOKUP = {"path": "/api/v3/order", "method": "GET"}
CANCEL = {"path": "/api/v3/order", "method": "DELETE"}
TRADES = {"path": "/api/v3/myTrades", "method": "GET"}


@dataclass
class Timing:
    """The daemon's exchange settings the faults are shaped on."""

    recv_window_s: float
    timeout_s: float
    period_s: float


def venue_fault(rng: random.Random, timing: Timing) -> dict[str, Any]:
    """One scripted fault: ambiguous and late creates, unreadable answers, trades listed
    twice, transient errors, a lagging lookup."""
    window, timeout = timing.recv_window_s, timing.timeout_s
    menu: list[dict[str, Any]] = [
        # the client gives up, then the create lands late, within its window (or not)
        {**CREATE, "fault": "late_booking",
         "delay_s": rng.uniform(timeout + 0.02, max(timeout + 0.03, window - 0.02))},
        {**CREATE, "fault": "late_booking", "delay_s": window + rng.uniform(0.1, 1.0)},
        {**CREATE, "fault": "code_1007"},
        {**CREATE, "fault": "drop_after_booking"},
        {**CREATE, "fault": "timeout_after_booking", "delay_s": timeout + 0.3},
        {**CREATE, "fault": "timeout_before_booking", "delay_s": timeout + 0.3},
        {**CREATE, "fault": "garbage_after_booking"},
        {**CREATE, "fault": "no_id_after_booking"},
        {**CREATE, "fault": "duplicate_trades"},
        {**CREATE, "fault": "reject"},
        {**TRADES, "fault": "duplicate_trades"},
        {**CANCEL, "fault": "drop_after_booking"},
        {**CANCEL, "fault": "code_1007"},
        {**LOOKUP, "fault": "lagging_not_found"},
        {"fault": rng.choice(("http_503", "code_1001", "drop_before_booking", "http_429"))},
    ]
    return rng.choice(menu)


@dataclass
class Chaos:
    """Faults on the daemon, the venue and the disk until `until` (monotonic)."""

    daemon: Daemon
    venue: Venue
    disk: SmallDisk | None
    timing: Timing
    rng: random.Random
    done: Counter[str] = field(default_factory=Counter)
    """Faults made, by kind; `*_failed` where the fault could not be made."""
    venue_exits: list[int] = field(default_factory=list)
    disk_recovery_s: list[float] = field(default_factory=list)
    """From freeing the disk to `ready` again."""
    _crashes: deque[float] = field(default_factory=deque)
    _pause: threading.Event = field(default_factory=threading.Event)

    def run(self, until: float) -> None:
        deck: list[str] = []
        while time.monotonic() < until:
            self.wait(self.rng.uniform(0.5, 2.0))
            if time.monotonic() >= until:
                break
            if not deck:
                deck = [kind for kind, weight in WEIGHTS.items() for _ in range(weight)
                        if kind != "disk_full" or self.disk is not None]
                self.rng.shuffle(deck)
            kind = deck.pop()
            getattr(self, kind)()
            self.done[kind] += 1

    def wait(self, seconds: float) -> None:
        """Pause, restarting whatever stopped by itself meanwhile."""
        end = time.monotonic() + seconds
        while True:
            self.watch()
            left = end - time.monotonic()
            if left <= 0:
                return
            self._pause.wait(min(0.05, left))

    def watch(self) -> None:
        if self.daemon.exited():
            self.daemon.start()
        process = self.venue.process
        if process is not None and process.poll() is not None:
            self.venue_exits.append(process.returncode)
            self.venue.process = None
            self.restart_venue()

    def crash(self) -> None:
        now = time.monotonic()
        while self._crashes and now - self._crashes[0] > self.timing.period_s:
            self._crashes.popleft()
        if len(self._crashes) >= CRASHES_PER_PERIOD:
            self.venue_faults()  # instead: no storm
            return
        self._crashes.append(now)
        try:
            with OrderdClient(self.daemon.control, timeout_s=2.0) as client:
                client.call("crash", {"actor": self.rng.choice(ACTORS)})
        except (NoAnswer, ProtocolError):
            self.done["crash_failed"] += 1

    def venue_faults(self) -> None:
        script = [venue_fault(self.rng, self.timing) for _ in range(self.rng.randint(1, 6))]
        try:
            self.venue.script(script)
        except OSError:
            self.done["venue_faults_failed"] += 1

    def kill_daemon(self) -> Start:
        self.daemon.kill()
        self.wait(self.rng.uniform(0.0, 0.5))
        return self.daemon.start()

    def kill_venue(self) -> None:
        self.venue.kill()
        self.wait(self.rng.uniform(0.2, 2.0))
        self.restart_venue()

    def restart_venue(self) -> None:
        """With new random fault rates: transient errors and ambiguous creates."""
        self.venue.start(error_rate=self.rng.choice((0.0, 0.01, 0.03)),
                         ambiguous_rate=self.rng.choice((0.0, 0.02, 0.05, 0.1)))

    def disk_full(self) -> None:
        """Full until a commit fails (the daemon halts; WAL pages already written are
        reused, so that may take a while) and a little longer, then freed."""
        assert self.disk is not None
        self.disk.fill()
        try:
            halted = self.until_halted(DISK_FULL_MAX_S)
            self.wait(self.rng.uniform(0.5, 2.0))
        finally:
            self.disk.free()
        if halted:
            ready = self.daemon.wait_ready(time.monotonic())
            if ready is not None:
                self.disk_recovery_s.append(ready)

    def until_halted(self, seconds: float) -> bool:
        end = time.monotonic() + seconds
        with OrderdClient(self.daemon.control, timeout_s=1.0) as client:
            while time.monotonic() < end:
                with suppress(NoAnswer, ProtocolError):
                    if client.ping()["state"] == "halted":
                        return True
                self.wait(0.1)
        return False

    def sighup(self) -> None:
        self.daemon.signal(signal.SIGHUP)

    def cross(self) -> None:
        """The price falls through the resting buys (tracking sees them fill), then back."""
        try:
            self.venue.set_price("BTC/USD", "999")
            self.wait(0.3)
            self.venue.set_price("BTC/USD", "90000")
        except OSError:
            self.done["cross_failed"] += 1
