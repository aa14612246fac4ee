"""Where alerts go besides the log: an executable and an HTTP webhook.

Each sink runs in a thread of its own behind a bounded queue, so a slow or
failing sink never holds up the MetricsActor, let alone order flow: when the
queue is full the alert is dropped (and counted), never waited for.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from actors.exchange.errors import describe
from actors.metrics.alerts import Alert
from actors.metrics.monitoring import track_metrics
from actors.metrics.series import Metrics
from protocol.text import printable

log = logging.getLogger(__name__)

QUEUE_SIZE = 100
CLOSE_WITHIN_S = 5.0
"""How long closing waits for the sinks to deliver what they queued, all together: at
exit, well within the service's TimeoutStopSec (30 s) and MetricsActor's stop timeout."""
VOLATILE_LABELS = frozenset({"run_id"})
"""Labels that differ on every repeat of the same condition: not part of its identity."""
FORGET_AFTER = 1000
"""Alert identities the repeat limiter keeps before it forgets the quiet ones."""


@dataclass(frozen=True)
class AlertSettings:
    """[alerts] of the configuration; reloaded on SIGHUP."""

    file: Path | None = None
    """A file each alert is appended to as one JSON line."""
    exec: Path | None = None
    """An executable that receives each alert as JSON on stdin."""
    webhook_url: str | None = None
    """An HTTP(S) URL each alert is POSTed to as JSON."""
    repeat_interval_s: float = 300.0
    """A repeat of the same alert (name and labels) within this long is held back."""
    timeout_s: float = 5.0
    """Per run of the executable and per webhook request."""
    retries: int = 2
    """Webhook requests sent again after a failure (with backoff)."""

    def check(self) -> None:
        if self.repeat_interval_s < 0:
            raise ValueError("repeat_interval_s: must not be negative")
        if not 0 < self.timeout_s <= 300:
            raise ValueError("timeout_s: must be greater than 0 and at most 300")
        if not 0 <= self.retries <= 10:
            raise ValueError("retries: must be from 0 to 10")
        if self.webhook_url is not None and not self.webhook_url.startswith(
                ("http://", "https://")):
            raise ValueError("webhook_url: expected an http:// or https:// URL")
        if self.exec is not None and not self.exec.is_file():
            raise ValueError(f"exec: {self.exec} is not a file")


def payload(alert: Alert, at: str, suppressed: int) -> bytes:
    """The JSON every sink receives."""
    return json.dumps({**asdict(alert), "at": at, "suppressed_repeats": suppressed},
                      sort_keys=True).encode()


class RepeatLimiter:
    """Lets the first of a run of equal alerts through, then one per interval."""

    def __init__(self, interval_s: float, clock: Callable[[], float]) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._last: OrderedDict[tuple[Any, ...], float] = OrderedDict()
        """When each identity was last let through, the oldest first."""
        self._held: dict[tuple[Any, ...], int] = {}

    def admit(self, alert: Alert) -> int | None:
        """None when held back; else how many repeats were held back since the last one."""
        key = (alert.name, tuple(sorted((k, v) for k, v in alert.labels.items()
                                        if k not in VOLATILE_LABELS)))
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        if len(self._last) >= FORGET_AFTER:
            self._forget(now)
        self._last[key] = now
        self._last.move_to_end(key)
        return self._held.pop(key, 0)

    def _forget(self, now: float) -> None:
        """Drop the alerts that would be let through anyway: an order's alerts are each
        an identity of their own, and a daemon runs for months. From the oldest end, so
        a storm of alerts within their interval costs one look per alert, not a pass.
        A count held back stays in `_held`, for the identity's next alert."""
        while self._last:
            key, last = next(iter(self._last.items()))
            if now - last < self.interval_s:
                return
            del self._last[key]


class SinkError(Exception):
    """A sink could not deliver an alert."""


CHILD_ENV = frozenset({"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR"})
"""The daemon's environment variables a program it starts sees (with every LC_*)."""


def child_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """A minimal environment for a program the daemon starts: what it needs to find
    programs, speak the locale and tell the time; never a credential (the daemon's
    `ORDERD_<NAME>_API_KEY`, `_SECRET`) nor anything else it happens to hold."""
    env = os.environ if environ is None else environ
    return {name: value for name, value in env.items()
            if name in CHILD_ENV or name.startswith("LC_")}


STDERR_SHOWN = 500
"""Bytes of a failing program's stderr quoted in the error (its last ones)."""


def run_executable(path: Path, timeout_s: float) -> Callable[[bytes], None]:
    def deliver(body: bytes) -> None:
        # stderr goes to a file read after the program ends, not to a pipe: a job the
        # program leaves in the background (`curl ... &`, mail) inherits the pipe, and
        # waiting for its end would wait for that job, not for the program
        stderr = _stderr_file()
        try:
            status = _run(path, body, stderr, timeout_s)
            if status != 0:
                raise SinkError(f"exit status {status}{_tail(stderr)}")
        finally:
            if stderr is not None:
                stderr.close()

    return deliver


def _stderr_file() -> IO[bytes] | None:
    """An unnamed file for the program's stderr, or None (not kept) when none can be
    made: a full disk must not cost the alert that may be about it."""
    try:
        return tempfile.TemporaryFile()
    except OSError:
        return None


def _run(path: Path, body: bytes, stderr: IO[bytes] | None, timeout_s: float) -> int:
    """The program's exit status; it runs in a session of its own, so that a timeout
    kills whatever it started too."""
    try:
        child = subprocess.Popen([str(path)], stdin=subprocess.PIPE,
                                 stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL if stderr is None else stderr,
                                 env=child_environment(), start_new_session=True)
    except OSError as exc:
        raise SinkError(describe(exc)) from None
    try:
        child.communicate(body, timeout=timeout_s)  # writes stdin, waits for the program
    except subprocess.TimeoutExpired as exc:
        os.killpg(child.pid, signal.SIGKILL)  # the group outlives its leader until reaped
        child.wait()
        raise SinkError(describe(exc)) from None
    return child.returncode


def _tail(stderr: IO[bytes] | None) -> str:
    """': ' and the end of what the program wrote to stderr, if anything."""
    if stderr is None:
        return ""
    size = stderr.seek(0, os.SEEK_END)
    stderr.seek(max(0, size - STDERR_SHOWN))
    text = stderr.read(STDERR_SHOWN).decode(errors="replace").strip()
    return f": {printable(text)}" if text else ""


def append_to_file(path: Path) -> Callable[[bytes], None]:
    def deliver(body: bytes) -> None:
        try:
            with path.open("ab") as handle:
                handle.write(body + b"\n")
        except OSError as exc:
            raise SinkError(describe(exc)) from None

    return deliver


def post_webhook(url: str, timeout_s: float, retries: int,
                 sleep: Callable[[float], None]) -> Callable[[bytes], None]:
    def deliver(body: bytes) -> None:
        for attempt in range(retries + 1):
            request = urllib.request.Request(url, data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=timeout_s) as answer:
                    answer.read()
                return
            except OSError as exc:  # URLError, HTTPError and timeouts are all OSError
                if attempt == retries:
                    raise SinkError(describe(exc)) from None
                sleep(min(5.0, 0.2 * 2 ** attempt))

    return deliver


class SinkWorker:
    """One sink's thread and bounded queue."""

    def __init__(self, name: str, deliver: Callable[[bytes], None], metrics: Metrics) -> None:
        self.name = name
        self._deliver = track_metrics(metrics, f"alert_sink_{name}")(deliver)
        self._failures = metrics.sink_failures.labels(name)
        # bounded by `put`, not by the queue: the end mark must always fit behind a full one
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"alert-sink-{name}",
                                        daemon=True)
        self._thread.start()

    def put(self, body: bytes) -> None:
        """Queue an alert; called by one thread (MetricsActor's), so the bound holds."""
        if self._queue.qsize() >= QUEUE_SIZE:
            self._failures.inc()
            log.error("alert sink %s is behind; alert dropped", self.name)
            return
        self._queue.put(body)

    def _run(self) -> None:
        while (body := self._queue.get()) is not None:
            try:
                self._deliver(body)
            except Exception as exc:  # noqa: BLE001 - a sink failure is counted, never fatal
                self._failures.inc()
                log.error("alert sink %s failed: %s", self.name, exc)

    def close(self) -> None:
        """Stop after what is queued; returns at once (`join` waits)."""
        self._queue.put(None)

    def join(self, deadline: float) -> bool:
        """Wait for the thread until `deadline` (monotonic); True when it ended."""
        self._thread.join(max(0.0, deadline - time.monotonic()))
        return not self._thread.is_alive()


def close_sinks(sinks: list[SinkWorker], within_s: float = CLOSE_WITHIN_S) -> None:
    """Let every sink deliver what it has queued, all at once and within `within_s` in
    all: at exit the last alerts (daemon_halted, restart_storm) matter most, and the
    sink threads die with the process."""
    for sink in sinks:
        sink.close()
    deadline = time.monotonic() + within_s
    for sink in sinks:
        if not sink.join(deadline):
            log.error("alert sink %s did not deliver everything within %.0f s",
                      sink.name, within_s)


def build_sinks(settings: AlertSettings, metrics: Metrics,
                sleep: Callable[[float], None]) -> list[SinkWorker]:
    sinks = []
    if settings.file is not None:
        sinks.append(SinkWorker("file", append_to_file(settings.file), metrics))
    if settings.exec is not None:
        sinks.append(SinkWorker("exec", run_executable(settings.exec, settings.timeout_s),
                                metrics))
    if settings.webhook_url is not None:
        sinks.append(SinkWorker("webhook", post_webhook(
            settings.webhook_url, settings.timeout_s, settings.retries, sleep), metrics))
    return sinks
