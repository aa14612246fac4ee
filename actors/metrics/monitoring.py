"""Monitoring decorators: timing, metrics, circuit awareness and alerts.

Each works on plain and on async functions, bare (`@track_metrics`) or with
arguments (`@track_metrics(metrics, "name")`), keeps the wrapped function's
signature (functools.wraps) and returns what it returns; exceptions go on
unchanged after being recorded.

The bare forms use the process's defaults, looked up at each call: the metrics
registry, circuit board and alert route of the actor system started last in this
process (the daemon, a ReliableOrderExecutor or a ReconciliationJob; see
`use_defaults`), else a private registry, no circuit and alerts logged as
warnings.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar, cast, overload

from actors.circuit.breakers import CircuitBoard, CircuitOpen
from actors.exchange.errors import describe
from actors.metrics.alerts import Alert, Alerter, LogAlerter
from actors.metrics.series import Metrics

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger(__name__)

ALERT_THRESHOLD = 3
"""Consecutive failures before `@alert_on_failure` alerts."""


@dataclass(frozen=True)
class Defaults:
    """What the bare decorators use."""

    metrics: Metrics
    board: CircuitBoard
    exchange: str | None
    """The exchange whose circuit a bare `@circuit_breaker_aware` checks."""
    alerter: Alerter


_FALLBACK = Defaults(Metrics(), CircuitBoard([], time.monotonic), None, LogAlerter())
_current = _FALLBACK


def defaults() -> Defaults:
    """The defaults in use now."""
    return _current


def use_defaults(installed: Defaults) -> None:
    """Make `installed` the process's defaults (an actor system does so when it starts)."""
    global _current
    _current = installed


def drop_defaults(installed: Defaults) -> None:
    """Back to the fallback, unless someone else's defaults were installed since."""
    global _current
    if _current is installed:
        _current = _FALLBACK


def _around(before: Callable[[], Any], after: Callable[[Any, BaseException | None], None],
            ) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A decorator calling `before()` then, once the call is over, `after(token, error)`."""

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                token = before()
                try:
                    result = await func(*args, **kwargs)
                except BaseException as exc:
                    after(token, exc)
                    raise
                after(token, None)
                return result

            return cast(Callable[P, R], async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            token = before()
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                after(token, exc)
                raise
            after(token, None)
            return result

        return wrapper

    return decorate


def _bare_or_not(first: Any, decorate: Callable[[Callable[P, R]], Callable[P, R]]) -> Any:
    """`decorate(first)` when the decorator was used bare, else `decorate` itself."""
    return decorate(first) if first is not None else decorate


@overload
def log_execution_time(func: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def log_execution_time(*, level: int = logging.INFO, logger: logging.Logger | None = None,
                       ) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def log_execution_time(func: Callable[P, R] | None = None, /, *, level: int = logging.INFO,
                       logger: logging.Logger | None = None) -> Any:
    """Log how long each call took, at INFO unless `level` says otherwise, in the
    wrapped function's module logger unless `logger` is given."""

    def decorate(target: Callable[P, R]) -> Callable[P, R]:
        out = logger or logging.getLogger(target.__module__)
        name = target.__qualname__

        def after(started: Any, error: BaseException | None) -> None:
            took_ms = (time.perf_counter() - started) * 1000
            outcome = "" if error is None else f" (raised {type(error).__name__})"
            out.log(level, "%s took %.3f ms%s", name, took_ms, outcome)

        return _around(time.perf_counter, after)(target)

    return _bare_or_not(func, decorate)


@overload
def track_metrics(func: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def track_metrics(metrics: Metrics | None = None, name: str | None = None,
                  ) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def track_metrics(metrics: Any = None, name: str | None = None) -> Any:
    """Count calls and errors and time each call (`orderd_function_*`), under the label
    `function=name` (default: the function's qualified name), in `metrics` (default:
    the process's registry at the time of each call)."""
    func, metrics = (metrics, None) if callable(metrics) else (None, metrics)

    def decorate(target: Callable[P, R]) -> Callable[P, R]:
        label = name or target.__qualname__

        def after(started: Any, error: BaseException | None) -> None:
            into: Metrics = metrics or _current.metrics
            into.call_duration.labels(label).observe(time.perf_counter() - started)
            into.calls.labels(label).inc()
            if error is not None:
                into.call_errors.labels(label).inc()

        return _around(time.perf_counter, after)(target)

    return _bare_or_not(func, decorate)


@overload
def circuit_breaker_aware(func: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def circuit_breaker_aware(board: CircuitBoard | None = None, exchange: str | None = None,
                          ) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def circuit_breaker_aware(board: Any = None, exchange: str | None = None) -> Any:
    """Fail fast with CircuitOpen, without calling, while the exchange's circuit is open.
    Without `board` the process's board is read at each call; without `exchange`, its
    default exchange (none before an actor system starts: every call goes through)."""
    func, board = (board, None) if callable(board) else (None, board)
    if board is not None and exchange is None:
        raise TypeError("circuit_breaker_aware(board, exchange): name the exchange")

    def before() -> None:
        if board is not None:
            name = cast(str, exchange)
            wait = board.open_for(name)
        else:
            current = _current
            name = exchange or current.exchange or ""
            try:
                wait = current.board.open_for(name) if name else None
            except KeyError:  # the process's board has no such circuit (yet)
                return
        if wait is not None:
            raise CircuitOpen(name, wait)

    return _bare_or_not(func, _around(before, lambda _token, _error: None))


@overload
def alert_on_failure(func: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def alert_on_failure(alerter: Alerter | None = None, name: str | None = None,
                     severity: str = "critical", labels: dict[str, str] | None = None,
                     threshold: int = ALERT_THRESHOLD,
                     ) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def alert_on_failure(alerter: Any = None, name: str | None = None, severity: str = "critical",
                     labels: dict[str, str] | None = None,
                     threshold: int = ALERT_THRESHOLD) -> Any:
    """Raise an Alert when `threshold` calls in a row have raised (the exception goes on
    either way); the next alert needs a success first. The alert is named `name`
    (default: the function's name + `_failed`) and goes to `alerter` (default: the
    process's alert route at the time)."""
    func, alerter = (alerter, None) if callable(alerter) else (None, alerter)
    if threshold < 1:
        raise ValueError("threshold: must be at least 1")

    def decorate(target: Callable[P, R]) -> Callable[P, R]:
        alert_name = name or f"{target.__name__}_failed"
        lock = threading.Lock()
        failures = [0]  # consecutive, shared by every call of the function

        def after(_token: Any, error: BaseException | None) -> None:
            if error is None:
                with lock:
                    failures[0] = 0
                return
            if not isinstance(error, Exception):  # cancelled or interrupted: no verdict
                return
            with lock:
                failures[0] += 1
                due = failures[0] == threshold
            if due:
                many = "" if threshold == 1 else f" ({threshold} failures in a row)"
                (alerter or _current.alerter).alert(Alert(
                    alert_name, severity, f"{alert_name}{many}: {describe(error)}",
                    dict(labels or {})))

        return _around(lambda: None, after)(target)

    return _bare_or_not(func, decorate)
