"""The monitoring decorators on plain and async functions."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Iterator
from typing import Any, cast

import pytest

from actors.circuit.breakers import CircuitBoard, CircuitOpen, CircuitView
from actors.metrics.alerts import Alert
from actors.metrics.monitoring import (
    Defaults,
    alert_on_failure,
    circuit_breaker_aware,
    defaults,
    drop_defaults,
    log_execution_time,
    track_metrics,
    use_defaults,
)
from actors.metrics.series import Metrics


class Kept:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def alert(self, alert: Alert) -> None:
        self.alerts.append(alert)


def add(a: int, b: int = 2, *, scale: int = 1) -> int:
    """Adds."""
    return (a + b) * scale


async def add_async(a: int, b: int = 2, *, scale: int = 1) -> int:
    """Adds later."""
    await asyncio.sleep(0)
    return (a + b) * scale


def boom(_x: int) -> None:
    raise ValueError("boom")


async def boom_async(_x: int) -> None:
    raise ValueError("boom")


def run(func: Any, *args: Any, **kwargs: Any) -> Any:
    result = func(*args, **kwargs)
    return asyncio.run(result) if inspect.iscoroutine(result) else result


def decorators(metrics: Metrics, board: CircuitBoard, kept: Kept) -> list[Any]:
    """Each decorator bare and with arguments."""
    return [log_execution_time, log_execution_time(level=logging.DEBUG),
            track_metrics, track_metrics(metrics, "add"), track_metrics(name="add"),
            circuit_breaker_aware, circuit_breaker_aware(board, "paper"),
            circuit_breaker_aware(exchange="paper"),
            alert_on_failure, alert_on_failure(kept, "add_failed"), alert_on_failure(threshold=1)]


@pytest.fixture
def installed() -> Iterator[tuple[Defaults, list[float]]]:
    """Process defaults as an actor system installs them: a registry, a board with the
    paper exchange's circuit (on a clock the test moves) and an alert route."""
    now = [100.0]
    own = Defaults(Metrics(), CircuitBoard(["paper"], lambda: now[0]), "paper", Kept())
    use_defaults(own)
    yield own, now
    drop_defaults(own)
    assert defaults() is not own


@pytest.mark.parametrize("func", [add, add_async])
def test_each_decorator_keeps_signature_and_result(func: Any) -> None:
    metrics, kept = Metrics(), Kept()
    board = CircuitBoard(["paper"], lambda: 0.0)
    for decorate in decorators(metrics, board, kept):
        wrapped = decorate(func)
        assert inspect.signature(wrapped) == inspect.signature(func)
        assert wrapped.__name__ == func.__name__ and wrapped.__doc__ == func.__doc__
        assert inspect.iscoroutinefunction(wrapped) == inspect.iscoroutinefunction(func)
        assert run(wrapped, 1, b=3, scale=2) == 8
    assert kept.alerts == []


@pytest.mark.parametrize("func", [add, add_async])
def test_track_metrics_counts_calls_errors_and_time(func: Any) -> None:
    metrics = Metrics()
    tracked = track_metrics(metrics, "work")(func)
    failing = track_metrics(metrics, "work")(boom_async if func is add_async else boom)
    run(tracked, 1)
    run(tracked, 2)
    with pytest.raises(ValueError):
        run(failing, 1)
    value = metrics.registry.get_sample_value
    assert value("orderd_function_calls_total", {"function": "work"}) == 3
    assert value("orderd_function_errors_total", {"function": "work"}) == 1
    assert value("orderd_function_duration_seconds_count", {"function": "work"}) == 3


def flaky(fail: list[bool]) -> tuple[Any, Any]:
    """A plain and an async function that raise while `fail[0]` is set."""

    def work(_x: int) -> int:
        if fail[0]:
            raise ValueError("boom")
        return 1

    async def work_async(_x: int) -> int:
        return work(_x)

    return work, work_async


def calls(wrapped: Any, outcomes: str, fail: list[bool]) -> None:
    """Call `wrapped` once per letter: f fails, s succeeds (each failure re-raised)."""
    for outcome in outcomes:
        fail[0] = outcome == "f"
        if fail[0]:
            with pytest.raises(ValueError, match="boom"):
                run(wrapped, 1)
        else:
            assert run(wrapped, 1) == 1


@pytest.mark.parametrize("is_async", [False, True])
def test_alert_on_failure_alerts_after_three_failures_in_a_row(is_async: bool) -> None:
    kept, fail = Kept(), [False]
    func = flaky(fail)[is_async]
    wrapped = alert_on_failure(kept, "job_failed", labels={"job": "x"})(func)
    calls(wrapped, "ffsff", fail)  # a success in between: no three in a row
    assert kept.alerts == []
    calls(wrapped, "f", fail)
    assert [(a.name, a.severity, a.labels) for a in kept.alerts] == [
        ("job_failed", "critical", {"job": "x"})]
    assert "3 failures in a row" in kept.alerts[0].message
    assert "ValueError: boom" in kept.alerts[0].message
    calls(wrapped, "fff", fail)  # still failing: no new alert until a success
    assert len(kept.alerts) == 1
    calls(wrapped, "sfff", fail)
    assert len(kept.alerts) == 2


def test_alert_on_failure_threshold_one_alerts_on_each_failure_after_a_success() -> None:
    kept, fail = Kept(), [False]
    wrapped = alert_on_failure(kept, "run_failed", threshold=1)(flaky(fail)[0])
    calls(wrapped, "ffsf", fail)
    assert [a.name for a in kept.alerts] == ["run_failed", "run_failed"]
    with pytest.raises(ValueError, match="threshold"):
        alert_on_failure(kept, "never", threshold=0)


@pytest.mark.parametrize("is_async", [False, True])
def test_bare_decorators_use_the_process_defaults(
        is_async: bool, installed: tuple[Defaults, list[float]]) -> None:
    own, now = installed
    fail = [False]
    func = flaky(fail)[is_async]
    tracked = track_metrics(func)
    alerted = alert_on_failure(func)
    guarded = circuit_breaker_aware(func)
    calls(tracked, "ssf", fail)
    value = own.metrics.registry.get_sample_value
    name = func.__qualname__
    assert value("orderd_function_calls_total", {"function": name}) == 3
    assert value("orderd_function_errors_total", {"function": name}) == 1
    calls(alerted, "fff", fail)
    kept = cast(Kept, own.alerter)
    assert [a.name for a in kept.alerts] == [f"{func.__name__}_failed"]
    calls(guarded, "s", fail)
    own.board.publish("paper", CircuitView("open", opened_at=now[0], cool_down_s=30.0))
    with pytest.raises(CircuitOpen):
        run(guarded, 1)


def test_bare_decorators_work_before_any_actor_system(caplog: pytest.LogCaptureFixture) -> None:
    """The fallback: a private registry, no circuit to respect, alerts in the log."""
    fail = [False]
    work = flaky(fail)[0]
    tracked, guarded = track_metrics(work), circuit_breaker_aware(work)
    calls(tracked, "s", fail)
    counted = defaults().metrics.registry.get_sample_value(
        "orderd_function_calls_total", {"function": work.__qualname__})
    assert counted is not None and counted >= 1
    calls(guarded, "s", fail)
    alerted = alert_on_failure(work)
    with caplog.at_level(logging.WARNING):
        calls(alerted, "fff", fail)
    assert any("ALERT work_failed" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("is_async", [False, True])
def test_circuit_breaker_aware_fails_fast_without_calling(is_async: bool) -> None:
    now = [100.0]
    board = CircuitBoard(["paper"], lambda: now[0])
    calls: list[int] = []

    def call(x: int) -> int:
        calls.append(x)
        return x

    async def call_async(x: int) -> int:
        calls.append(x)
        return x

    wrapped = circuit_breaker_aware(board, "paper")(call_async if is_async else call)
    assert run(wrapped, 1) == 1
    board.publish("paper", CircuitView("open", opened_at=now[0], cool_down_s=30.0))
    with pytest.raises(CircuitOpen) as raised:
        run(wrapped, 2)
    assert raised.value.retry_after_s == 30.0
    now[0] += 31.0  # cooled down: trial calls go through
    assert run(wrapped, 3) == 3
    assert calls == [1, 3]


@pytest.mark.parametrize("func", [add, add_async])
def test_log_execution_time_logs_each_call_at_info(
        func: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        assert run(log_execution_time(func), 1) == 3
    timed = [r for r in caplog.records if f"{func.__qualname__} took" in r.getMessage()]
    assert [r.levelno for r in timed] == [logging.INFO]
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert run(log_execution_time(level=logging.DEBUG)(func), 1) == 3
    assert not any("took" in r.getMessage() for r in caplog.records)
