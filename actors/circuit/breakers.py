"""Per-exchange circuit breakers (pybreaker) counting errors per minute.

pybreaker counts consecutive failures and holds a lock for the whole guarded
call. So the breaker here never wraps the network call: workers read the state
from a `CircuitBoard` snapshot (no message, no lock held while calling), and tell
the `CircuitActor` each outcome afterwards; the actor replays it through
`breaker.call` with a function that only returns or raises. Failures are kept in
a sliding window by `WindowStorage`, a public pybreaker storage hook.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pybreaker

from actors.circuit.messages import Outcome, Permit
from actors.metrics.alerts import Alert, Alerter
from actors.metrics.series import Metrics

log = logging.getLogger(__name__)

NAME = "circuit"
CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
_WIRE = {pybreaker.STATE_CLOSED: CLOSED, pybreaker.STATE_OPEN: OPEN,
         pybreaker.STATE_HALF_OPEN: HALF_OPEN}


MAX_ERRORS_PER_MINUTE = 1_000_000
MAX_WINDOW_MINUTES = 1_440


@dataclass(frozen=True)
class BreakerSettings:
    """[circuit_breaker] of the configuration."""

    error_threshold: float = 10.0
    """Errors per minute over the window that open the circuit."""
    warning_threshold: float = 5.0
    """Errors per minute that raise a warning."""
    window_size_minutes: float = 1.0
    """Length of the sliding window."""
    cool_down_seconds: float = 30.0
    """Time the circuit stays open before trial calls."""
    half_open_max_calls: int = 1
    """Trial calls let through while half-open."""

    def check(self) -> None:
        if self.error_threshold <= 0 or self.warning_threshold <= 0:
            raise ValueError("error_threshold: thresholds must be greater than 0")
        if self.warning_threshold > self.error_threshold:
            raise ValueError("warning_threshold: must not exceed error_threshold")
        if self.window_size_minutes <= 0 or self.cool_down_seconds <= 0:
            raise ValueError("window_size_minutes: window and cool-down must be > 0")
        if self.half_open_max_calls < 1:
            raise ValueError("half_open_max_calls: must be at least 1")
        # bounded so that threshold x window, the failures that trip, is a count
        if self.error_threshold > MAX_ERRORS_PER_MINUTE:
            raise ValueError(f"error_threshold: must be at most {MAX_ERRORS_PER_MINUTE:,}")
        if self.window_size_minutes > MAX_WINDOW_MINUTES:
            raise ValueError(f"window_size_minutes: must be at most {MAX_WINDOW_MINUTES:,}"
                             " (a day)")

    @property
    def fail_max(self) -> int:
        """Failures in the window that trip: more than threshold x window."""
        return math.floor(self.error_threshold * self.window_size_minutes) + 1


class WindowStorage(pybreaker.CircuitBreakerStorage):
    """pybreaker storage whose failure counter is the failures in the last window."""

    def __init__(self, name: str, window_s: float, clock: Callable[[], float]) -> None:
        super().__init__(name)
        self._state = pybreaker.STATE_CLOSED
        self._window_s = window_s
        self._clock = clock
        self._failures: deque[float] = deque()
        self._successes = 0
        self._opened_at: datetime | None = None

    @property
    def state(self) -> str:
        return self._state

    @state.setter
    def state(self, state: str) -> None:
        if state == pybreaker.STATE_CLOSED:
            self._failures.clear()  # a closed circuit starts a fresh window
        self._state = state

    def increment_counter(self) -> None:
        self._failures.append(self._clock())

    def reset_counter(self) -> None:
        """Ignored: a success does not forgive the failures in the window."""

    def increment_success_counter(self) -> None:
        self._successes += 1

    def reset_success_counter(self) -> None:
        self._successes = 0

    @property
    def counter(self) -> int:
        horizon = self._clock() - self._window_s
        while self._failures and self._failures[0] <= horizon:
            self._failures.popleft()
        return len(self._failures)

    @property
    def success_counter(self) -> int:
        return self._successes

    @property
    def opened_at(self) -> datetime | None:
        return self._opened_at

    @opened_at.setter
    def opened_at(self, value: datetime) -> None:
        self._opened_at = value


@dataclass(frozen=True)
class CircuitView:
    """One exchange's circuit as every thread may read it."""

    state: str = CLOSED
    opened_at: float = 0.0
    cool_down_s: float = 0.0

    def retry_after(self, now: float) -> float:
        return max(0.0, self.opened_at + self.cool_down_s - now)


class CircuitBoard:
    """The current circuit of each exchange, readable from any thread without a message."""

    def __init__(self, exchanges: list[str], clock: Callable[[], float]) -> None:
        self._views = {name: CircuitView() for name in exchanges}
        self._clock = clock
        self._lock = threading.Lock()

    def view(self, exchange: str) -> CircuitView:
        return self._views[exchange]

    def publish(self, exchange: str, view: CircuitView) -> None:
        with self._lock:
            self._views = {**self._views, exchange: view}

    def open_for(self, exchange: str) -> float | None:
        """Seconds until trial calls when the circuit is open and cooling down, else None."""
        view = self._views[exchange]
        if view.state != OPEN:
            return None
        wait = view.retry_after(self._clock())
        return wait if wait > 0 else None


class CircuitOpen(Exception):
    """The exchange's circuit is open: fail fast, do not call."""

    def __init__(self, exchange: str, retry_after_s: float) -> None:
        super().__init__(f"circuit of {exchange} is open; retry in {retry_after_s:.1f} s")
        self.exchange = exchange
        self.retry_after_s = retry_after_s


class _Replayed(Exception):
    """Stands for a real failure when it is replayed through the breaker."""


class _Listener(pybreaker.CircuitBreakerListener):
    def __init__(self, on_change: Callable[[str, str], None]) -> None:
        self._on_change = on_change

    def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
        try:  # pybreaker lets listener exceptions propagate into the call
            self._on_change(str(cb.name), str(new_state.name))
        except Exception:
            log.exception("circuit listener failed")


def _noop() -> None:
    return None


def _fail() -> None:
    raise _Replayed()


class Circuits:
    """The breakers of every exchange; used by one thread (CircuitActor's)."""

    def __init__(self, exchanges: list[str], settings: BreakerSettings, board: CircuitBoard,
                 clock: Callable[[], float], alerter: Alerter,
                 metrics: Metrics | None = None) -> None:
        self.settings = settings
        self._metrics = metrics or Metrics()
        self.board = board
        self._clock = clock
        self._alerter = alerter
        self._storage = {name: WindowStorage(name, settings.window_size_minutes * 60, clock)
                         for name in exchanges}
        self._trials = dict.fromkeys(exchanges, 0)
        self._trial_at = dict.fromkeys(exchanges, 0.0)
        self._warned = dict.fromkeys(exchanges, False)
        listener = _Listener(self._changed)
        self._breakers = {name: pybreaker.CircuitBreaker(
            fail_max=settings.fail_max, reset_timeout=settings.cool_down_seconds,
            state_storage=self._storage[name], listeners=[listener], name=name)
            for name in exchanges}
        for name in exchanges:
            self._metrics.set_circuit(name, CLOSED, 0.0)

    def state(self, exchange: str) -> str:
        return _WIRE[self._breakers[exchange].current_state]

    def errors_per_minute(self, exchange: str) -> float:
        return self._storage[exchange].counter / self.settings.window_size_minutes

    def may_call(self, exchange: str) -> Permit:
        breaker = self._breakers[exchange]
        if self.state(exchange) == OPEN:
            wait = self.board.view(exchange).retry_after(self._clock())
            if wait > 0:
                return Permit(False, wait)
            breaker.half_open()
        if self.state(exchange) == HALF_OPEN:
            now = self._clock()
            if self._trials[exchange] >= self.settings.half_open_max_calls:
                if now - self._trial_at[exchange] < self.settings.cool_down_seconds:
                    return Permit(False, 1.0)
                # a trial whose outcome never came (its caller timed out): try again
                self._trials[exchange] = 0
            self._trials[exchange] += 1
            self._trial_at[exchange] = now
        return Permit(True)

    def record(self, outcome: Outcome) -> None:
        breaker = self._breakers[outcome.exchange]
        state = self.state(outcome.exchange)
        if state == OPEN:
            return  # a late answer from before the trip changes nothing
        if not outcome.failed and state == CLOSED:
            return  # successes do not forgive failures in the window
        with contextlib.suppress(_Replayed, pybreaker.CircuitBreakerError):
            breaker.call(_fail if outcome.failed else _noop)
        if outcome.failed:
            self._check_warning(outcome.exchange, outcome.error)

    def describe(self) -> dict[str, Any]:
        return {name: {"state": self.state(name),
                       "errors_per_minute": round(self.errors_per_minute(name), 3)}
                for name in self._breakers}

    def _check_warning(self, exchange: str, error: str) -> None:
        rate = self.errors_per_minute(exchange)
        above = rate >= self.settings.warning_threshold
        if above and not self._warned[exchange]:
            log.warning("exchange %s: %.1f errors per minute (warning threshold %.1f); last %s",
                        exchange, rate, self.settings.warning_threshold, error)
            self._alerter.alert(Alert(
                "exchange_error_rate", "warning",
                f"{exchange}: {rate:.1f} errors per minute", {"exchange": exchange}))
        self._warned[exchange] = above

    def _changed(self, exchange: str, pybreaker_state: str) -> None:
        state = _WIRE[pybreaker_state]
        self._trials[exchange] = 0
        now = self._clock()
        opened = now if state == OPEN else self.board.view(exchange).opened_at
        self.board.publish(exchange, CircuitView(state, opened, self.settings.cool_down_seconds))
        log.warning("circuit of %s is now %s", exchange, state)
        self._metrics.circuit_transitions.labels(exchange, state).inc()
        self._metrics.set_circuit(exchange, state, self.errors_per_minute(exchange))
        if state == OPEN:
            self._alerter.alert(Alert(
                "circuit_open", "critical", f"circuit of {exchange} opened",
                {"exchange": exchange}))
