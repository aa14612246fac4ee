"""systemd integration: the notify protocol and a watchdog that vouches for the actors.

`Type=notify` needs only datagrams on `$NOTIFY_SOCKET` (sd_notify(3)), so no
library: READY=1 after start-up recovery, STATUS= lines, RELOADING=1 around a
reload, STOPPING=1, and WATCHDOG=1 at half of `$WATCHDOG_USEC`, sent only while
`Heartbeat` finds no actor hung or dead, so a hung actor makes systemd restart the
service.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import pykka

from actors.supervisor import Registry
from actors.supervisor_messages import Ping
from protocol.text import printable

log = logging.getLogger(__name__)

STATUS_PERIOD_S = 5.0
"""How often STATUS is refreshed when systemd asked for no watchdog."""
PING_TIMEOUT_S = 1.0
STATUS_LIMIT = 400
"""Characters of STATUS= at most: one datagram, one line, whatever a halt reason held."""


class Notifier:
    """Sends sd_notify datagrams; does nothing when not started by systemd."""

    def __init__(self, address: str | None = None) -> None:
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        self.address = address or None
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        if self.address is not None:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def send(self, *fields: str) -> None:
        """One datagram of `KEY=value` lines; each field is made one printable line, so
        no text can add an assignment (a `WATCHDOG=trigger`) or fail to encode."""
        if self._socket is None or self.address is None:
            return
        # a leading @ names a socket in the abstract namespace
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        datagram = "\n".join(printable(field) for field in fields).encode()
        with self._lock:
            try:
                self._socket.sendto(datagram, target)
            except OSError as exc:
                log.warning("systemd notification failed: %s", exc)

    def ready(self) -> None:
        self.send("READY=1")

    def status(self, text: str) -> None:
        self.send(f"STATUS={printable(text, STATUS_LIMIT)}")

    def reloading(self) -> None:
        self.send("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()


def watchdog_interval_s(environ: dict[str, str] | None = None) -> float | None:
    """Half of the watchdog timeout systemd asked for, or None when it asked for none."""
    env = os.environ if environ is None else environ
    usec, pid = env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")
    if not usec or not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None  # meant for another process
    return int(usec) / 2_000_000


class Heartbeat:
    """Names the actors that look hung or dead; the watchdog is withheld while any does.

    The rule: every actor must be alive (not down, its thread running). An actor whose
    messages are short must also answer a Ping within the timeout: OrderActor, which
    every order goes through, the breakers, metrics, the streams and the supervisor.
    An actor answers a Ping only between messages, so one whose single message may
    rightly take minutes (`long_messages`: the exchange workers, waiting out timeouts
    and retries in an outage, and the reconciler, whose run is one message) is not
    pinged: were it, a healthy daemon would be killed for being busy. Each of their
    waits has a timeout of its own (the client's request timeout, bounded retries,
    asks with a timeout), so they end without the watchdog.

    `loops` are threads that are no actors, by name, each with its own test (the
    front end: its loop goes round); one that fails it is named too.

    An actor whose previous Ping is still unanswered is not asked again, so a
    hung actor's inbox does not fill with pings.
    """

    def __init__(self, registry: Registry, timeout_s: float = PING_TIMEOUT_S,
                 loops: Mapping[str, Callable[[], bool]] | None = None) -> None:
        self._registry = registry
        self._timeout_s = timeout_s
        self._loops = dict(loops or {})
        self._pending: dict[str, pykka.Future[Any]] = {}

    def silent(self) -> list[str]:
        for name, ref in self._registry.refs().items():
            if name not in self._pending and _answers_pings(ref):
                try:
                    self._pending[name] = ref.ask(Ping(), block=False)
                except pykka.ActorDeadError:
                    self._pending.pop(name, None)
        deadline = time.monotonic() + self._timeout_s
        silent = []
        for name, future in list(self._pending.items()):
            try:
                future.get(timeout=max(0.0, deadline - time.monotonic()))
            except pykka.Timeout:
                silent.append(name)
                continue
            except Exception:  # noqa: BLE001 - any answer, even an error, proves it is alive
                pass
            del self._pending[name]
        dead = [n for n, h in self._registry.health().items() if not h["alive"]]
        stuck = [name for name, turning in self._loops.items() if not turning()]
        return sorted(set(silent) | set(dead) | set(stuck))


def _answers_pings(ref: pykka.ActorRef[Any]) -> bool:
    """Whether the watchdog expects `ref` to answer a Ping in time (see Heartbeat)."""
    return not getattr(ref.actor_class, "long_messages", False)


class SystemdLoop:
    """A thread that sends WATCHDOG=1 while the actors answer, and STATUS on change."""

    def __init__(self, notifier: Notifier, heartbeat: Heartbeat,
                 summary: Callable[[], str], interval_s: float | None) -> None:
        self._notifier = notifier
        self._heartbeat = heartbeat
        self._summary = summary
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._last_status = ""
        self._thread = threading.Thread(target=self._run, name="systemd", daemon=True)

    def start(self) -> None:
        if self._notifier.enabled:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        period = self._interval_s or STATUS_PERIOD_S
        while True:
            try:
                self.beat()
            except Exception:  # this thread alone keeps systemd's watchdog fed
                log.exception("systemd notification loop: beat failed; going on")
            if self._stop.wait(period):
                return

    def beat(self) -> None:
        silent = self._heartbeat.silent() if self._interval_s is not None else []
        status = self._summary()
        if silent:
            status += f"; not answering: {', '.join(silent)} (watchdog withheld)"
        if status != self._last_status:
            self._last_status = status
            self._notifier.status(status)
            if silent:
                log.error("actors not answering: %s; withholding the watchdog", ", ".join(silent))
        if self._interval_s is not None and not silent:
            self._notifier.watchdog()
