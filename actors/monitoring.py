"""Monitoring decorators: timing, metrics, circuit awareness and alerts.

Each works on plain and on async functions, keeps the wrapped function's
signature (functools.wraps) and returns what it returns; exceptions go on
unchanged after being recorded.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast, overload

from actors.alerts import Alert, Alerter
from actors.circuit import CircuitBoard, CircuitOpen
from actors.exchanges.errors import describe
from actors.metrics import Metrics

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger(__name__)


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


@overload
def log_execution_time(func: Callable[P, R]) -> Callable[P, R]: ...


@overload
def log_execution_time(*, level: int = logging.DEBUG, logger: logging.Logger | None = None,
                       ) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def log_execution_time(func: Callable[P, R] | None = None, *, level: int = logging.DEBUG,
                       logger: logging.Logger | None = None) -> Any:
    """Log how long each call took (`@log_execution_time` or `@log_execution_time(level=...)`)."""

    def decorate(target: Callable[P, R]) -> Callable[P, R]:
        out = logger or logging.getLogger(target.__module__)
        name = target.__qualname__

        def after(started: Any, error: BaseException | None) -> None:
            took_ms = (time.perf_counter() - started) * 1000
            outcome = "" if error is None else f" (raised {type(error).__name__})"
            out.log(level, "%s took %.3f ms%s", name, took_ms, outcome)

        return _around(time.perf_counter, after)(target)

    return decorate if func is None else decorate(func)


def track_metrics(metrics: Metrics, name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Count calls and errors and time each call, under the fixed label `function=name`."""
    calls = metrics.calls.labels(name)
    errors = metrics.call_errors.labels(name)
    duration = metrics.call_duration.labels(name)

    def after(started: Any, error: BaseException | None) -> None:
        duration.observe(time.perf_counter() - started)
        calls.inc()
        if error is not None:
            errors.inc()

    return _around(time.perf_counter, after)


def circuit_breaker_aware(board: CircuitBoard, exchange: str,
                          ) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Fail fast with CircuitOpen, without calling, while the exchange's circuit is open."""

    def before() -> None:
        wait = board.open_for(exchange)
        if wait is not None:
            raise CircuitOpen(exchange, wait)

    return _around(before, lambda _token, _error: None)


def alert_on_failure(alerter: Alerter, name: str, severity: str = "critical",
                     labels: dict[str, str] | None = None,
                     ) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Raise an Alert when the call raises (the exception then goes on)."""

    def after(_token: Any, error: BaseException | None) -> None:
        if isinstance(error, Exception):
            alerter.alert(Alert(name, severity, f"{name}: {describe(error)}",
                                dict(labels or {})))

    return _around(lambda: None, after)
