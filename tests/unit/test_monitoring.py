"""The monitoring decorators on plain and async functions."""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

import pytest

from actors.alerts import Alert
from actors.circuit import CircuitBoard, CircuitOpen, CircuitView
from actors.metrics import Metrics
from actors.monitoring import (
    alert_on_failure,
    circuit_breaker_aware,
    log_execution_time,
    track_metrics,
)


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
    return [log_execution_time, log_execution_time(level=logging.INFO),
            track_metrics(metrics, "add"), circuit_breaker_aware(board, "paper"),
            alert_on_failure(kept, "add_failed")]


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


@pytest.mark.parametrize("func", [boom, boom_async])
def test_alert_on_failure_alerts_and_reraises(func: Any) -> None:
    kept = Kept()
    wrapped = alert_on_failure(kept, "job_failed", labels={"job": "x"})(func)
    with pytest.raises(ValueError, match="boom"):
        run(wrapped, 1)
    assert [(a.name, a.severity, a.labels) for a in kept.alerts] == [
        ("job_failed", "critical", {"job": "x"})]
    assert "ValueError: boom" in kept.alerts[0].message


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
def test_log_execution_time_logs_each_call(func: Any, caplog: pytest.LogCaptureFixture) -> None:
    wrapped = log_execution_time(level=logging.INFO)(func)
    with caplog.at_level(logging.INFO):
        assert run(wrapped, 1) == 3
    assert any(f"{func.__qualname__} took" in r.getMessage() for r in caplog.records)
