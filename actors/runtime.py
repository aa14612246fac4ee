"""What the actors share with the process around them: state, clock, event sink."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from protocol.errors import ProtocolError
from protocol.text import printable

STATES = ("starting", "ready", "halted", "stopping")
REASON_LIMIT = 256
"""Characters of a halt reason kept (a wire reason is at most as long)."""
OPERATOR, AUTOMATIC = "operator", "automatic"
HALTED_BY = (OPERATOR, AUTOMATIC)
"""Who halted submits: a person's `halt` command, or the daemon itself (an account the
exchange refused, a restart storm, a ledger it cannot write). Alerts page only for the
second."""


class DaemonState:
    """The daemon's state as `ping` and `health` report it; thread-safe.

    Three things make it. The phase: `starting` until the orders left unresolved by
    the last run are resolved, then running, then `stopping` (final). A halt, by an
    operator or automatic: OrderActor records it in the ledger, so it lasts across
    restarts until `resume`. Conditions (the ledger cannot be written, its file was
    replaced): they refuse submits while they last and end by themselves; `resume`
    does not end them. Running with neither a halt nor a condition is `ready`.
    Conditions are the daemon's own; a halt says who made it (`halted_by`)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._phase = "starting"
        self._halt: str | None = None
        self._halt_by = AUTOMATIC
        self._conditions: dict[str, str] = {}
        self.halt_loaded = False
        """Set by OrderActor once it has read the halt recorded in the ledger."""
        self.unresolved: dict[str, Any] = {"count": 0, "oldest_age_s": 0.0}
        """OrderActor's summary of orders being resolved, replaced on every tick."""
        self.started = clock()
        self._clock = clock
        self.on_change: Callable[[str, str | None], None] | None = None
        """Called with (state, reason) after each change of state."""
        self.on_halt: Callable[[str], None] | None = None
        """Called with the reason when submits become halted (a halt or a condition
        begins where none held), in any phase: a halt found at start too."""

    @property
    def value(self) -> str:
        return self._value()

    def _value(self) -> str:
        if self._phase != "running":
            return self._phase
        return "halted" if self._halted() else "ready"

    def _halted(self) -> bool:
        return self._halt is not None or bool(self._conditions)

    @property
    def reason(self) -> str | None:
        """Why submits are refused: the first condition, else the halt's reason."""
        with self._lock:
            return next(iter(self._conditions.values()), None) or self._halt

    @property
    def halt_reason(self) -> str | None:
        """The halt's reason (None: not halted); conditions aside."""
        return self._halt

    @property
    def halt_by(self) -> str | None:
        """Who made the halt (None: not halted); conditions aside."""
        return None if self._halt is None else self._halt_by

    @property
    def halted_by(self) -> str | None:
        """OPERATOR or AUTOMATIC while submits are halted, else None; a condition is
        always the daemon's own."""
        with self._lock:
            if self._conditions:
                return AUTOMATIC
            return None if self._halt is None else self._halt_by

    @property
    def conditions(self) -> dict[str, str]:
        """name -> what is wrong, for each condition holding now."""
        with self._lock:
            return dict(self._conditions)

    def set(self, state: str, reason: str | None = None, by: str = AUTOMATIC) -> None:
        """One of STATES: `halted` halts, `ready` ends the start phase (while starting)
        or the halt, `stopping` stops, `starting` starts again."""
        assert state in STATES
        if state == "halted":
            self.halt(reason or "halted", by)
        elif state == "ready" and self._phase == "starting":
            self.running()
        elif state == "ready":
            self.resume()
        else:
            self._change(lambda: setattr(self, "_phase", state))

    def running(self) -> None:
        """Start-up recovery is done: `ready`, or `halted` when a halt or condition holds."""
        self._change(lambda: setattr(self, "_phase", "running"))

    def halt(self, reason: str, by: str = AUTOMATIC) -> None:
        """Halt submits. `by`: the `halt` command passes OPERATOR; every other halt is the
        daemon's own (so a new one that forgets to say pages as critical). An automatic
        halt is not downgraded by a later `halt` command: only `resume` clears it."""
        assert by in HALTED_BY
        # shown in STATUS=, logs, alerts and `halted` answers: one printable line
        text = printable(reason, REASON_LIMIT)

        def change() -> None:
            if self._halt is None or self._halt_by != AUTOMATIC:
                self._halt_by = by
            self._halt = text

        self._change(change)

    def resume(self) -> None:
        """End the halt (conditions hold on until they end)."""
        self._change(lambda: setattr(self, "_halt", None))

    def condition(self, name: str, problem: str | None) -> None:
        """Set (a problem) or end (None) condition `name`."""
        if problem is None:
            self._change(lambda: self._conditions.pop(name, None))
        else:
            text = printable(problem, REASON_LIMIT)
            self._change(lambda: self._conditions.__setitem__(name, text))

    def _change(self, change: Callable[[], object]) -> None:
        with self._lock:
            if self._phase == "stopping":
                return
            before, was_halted = self._value(), self._halted()
            change()
            after, halted = self._value(), self._halted()
        reason = self.reason
        if after != before and self.on_change is not None:
            self.on_change(after, reason)
        if halted and not was_halted and self.on_halt is not None:
            self.on_halt(reason or "no reason given")

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


Reply = Callable[[dict[str, Any] | ProtocolError], None]
"""Where a command's outcome goes: a result object, or the error to send."""
