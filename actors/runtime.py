"""What the actors share with the process around them: state, clock, event sink."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from protocol.text import printable

STATES = ("starting", "ready", "halted", "stopping")
REASON_LIMIT = 256
"""Characters of a halt reason kept (a wire reason is at most as long)."""
OPERATOR, AUTOMATIC = "operator", "automatic"
HALTED_BY = (OPERATOR, AUTOMATIC)
"""Who halted submits: a person's `halt` command, or the daemon itself (an account the
exchange refused, a restart storm). Alerts page only for the second."""


class DaemonState:
    """The daemon's state as `ping` and `health` report it; thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._state = "starting"
        self.reason: str | None = None
        self.halted_by: str | None = None
        """OPERATOR or AUTOMATIC while halted, else None."""
        self.unresolved: dict[str, Any] = {"count": 0, "oldest_age_s": 0.0}
        """OrderActor's summary of orders being resolved, replaced on every tick."""
        self.started = clock()
        self._clock = clock
        self.on_change: Callable[[str, str | None], None] | None = None
        """Called with (state, reason) after each change of state."""

    @property
    def value(self) -> str:
        return self._state

    def set(self, state: str, reason: str | None = None, by: str = AUTOMATIC) -> None:
        """`by` says who halts: the `halt` command passes OPERATOR; every other halt is
        the daemon's own (so a new one that forgets to say pages as critical). An
        automatic halt is not downgraded by a later `halt` command: only `resume`
        clears it."""
        assert state in STATES and by in HALTED_BY
        with self._lock:
            if self._state == "stopping":
                return
            changed = state != self._state
            if state != "halted":
                self.halted_by = None
            elif self.halted_by != AUTOMATIC:
                self.halted_by = by
            self._state = state
            # shown in STATUS=, logs, alerts and `halted` answers: one printable line
            self.reason = None if reason is None else printable(reason, REASON_LIMIT)
            reason = self.reason
        if changed and self.on_change is not None:
            self.on_change(state, reason)

    def uptime(self) -> float:
        return self._clock() - self.started


class EventSink(Protocol):
    """Where order events go (the PUB socket in the daemon)."""

    def publish(self, frames: list[bytes]) -> None: ...


class NoEvents:
    """An event sink that drops everything (library use without a PUB socket)."""

    def publish(self, frames: list[bytes]) -> None:
        return None


@dataclass
class Clock:
    """Injected time: `now` is wall time for records, `monotonic` for deadlines."""

    now: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
