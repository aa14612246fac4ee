"""The per-exchange circuit breaker: windowed errors, warning, open, half-open."""

from __future__ import annotations

import threading

import pytest

from actors.circuit.breakers import CLOSED, HALF_OPEN, OPEN, BreakerSettings, CircuitBoard, Circuits
from actors.circuit.messages import Outcome
from actors.exchange.link import Attempts, Caller, ExchangeLink
from actors.exchange.retry import RateLimiter, RetryBudget, RetryPolicy
from actors.metrics.alerts import Alert
from actors.runtime import Clock
from actors.supervisor import Registry


class Alerts:
    def __init__(self) -> None:
        self.raised: list[Alert] = []

    def alert(self, alert: Alert) -> None:
        self.raised.append(alert)


class Setup:
    def __init__(self, **settings: float) -> None:
        self.now = 0.0
        self.alerts = Alerts()
        self.board = CircuitBoard(["x"], lambda: self.now)
        defaults = {"error_threshold": 5.0, "warning_threshold": 3.0,
                    "window_size_minutes": 1.0, "cool_down_seconds": 10.0}
        self.circuits = Circuits(["x"], BreakerSettings(**{**defaults, **settings}),  # type: ignore[arg-type]
                                 self.board, lambda: self.now, self.alerts)

    def fail(self, count: int = 1) -> None:
        for _ in range(count):
            self.circuits.record(Outcome("x", failed=True, error="RequestTimeout"))

    def succeed(self) -> None:
        self.circuits.record(Outcome("x", failed=False))

    @property
    def state(self) -> str:
        return self.circuits.state("x")


def test_trips_when_the_window_holds_more_than_threshold_times_window() -> None:
    setup = Setup()
    for _ in range(5):
        setup.fail()
        setup.succeed()  # successes between failures do not reset the count
    assert setup.state == CLOSED
    setup.fail()
    assert setup.state == OPEN
    assert setup.board.view("x").state == OPEN


def test_failures_older_than_the_window_do_not_count() -> None:
    setup = Setup()
    setup.fail(5)
    setup.now += 61
    setup.fail(5)
    assert setup.state == CLOSED
    assert setup.circuits.errors_per_minute("x") == 5


def test_a_longer_window_scales_the_threshold() -> None:
    setup = Setup(window_size_minutes=2.0)
    setup.fail(10)
    assert setup.state == CLOSED
    setup.fail()
    assert setup.state == OPEN


def test_warning_threshold_warns_once_per_crossing() -> None:
    setup = Setup()
    setup.fail(2)
    assert not setup.alerts.raised
    setup.fail(2)
    assert [a.name for a in setup.alerts.raised] == ["exchange_error_rate"]
    setup.now += 61
    setup.fail(3)
    assert [a.name for a in setup.alerts.raised] == ["exchange_error_rate"] * 2


def test_open_fails_fast_then_half_opens_after_cool_down() -> None:
    setup = Setup(half_open_max_calls=1)
    setup.fail(6)
    assert "circuit_open" in [a.name for a in setup.alerts.raised]
    assert setup.board.open_for("x") == pytest.approx(10.0)
    permit = setup.circuits.may_call("x")
    assert not permit.granted and permit.retry_after_s == pytest.approx(10.0)
    setup.now += 10
    assert setup.board.open_for("x") is None
    assert setup.circuits.may_call("x").granted
    assert setup.state == HALF_OPEN
    assert not setup.circuits.may_call("x").granted, "one trial call at a time"


def test_half_open_success_closes() -> None:
    setup = Setup()
    setup.fail(6)
    setup.now += 10
    assert setup.circuits.may_call("x").granted
    setup.succeed()
    assert setup.state == CLOSED
    setup.fail(5)
    assert setup.state == CLOSED, "a closed circuit starts a fresh window"


def test_half_open_failure_reopens_for_another_cool_down() -> None:
    setup = Setup()
    setup.fail(6)
    setup.now += 10
    assert setup.circuits.may_call("x").granted
    setup.fail()
    assert setup.state == OPEN
    assert setup.board.open_for("x") == pytest.approx(10.0)


def test_late_answers_while_open_change_nothing() -> None:
    setup = Setup()
    setup.fail(6)
    setup.succeed()
    setup.fail(3)
    assert setup.state == OPEN


def test_two_slow_calls_through_one_breaker_overlap() -> None:
    """Both requests must be inside the call at once: a serializing breaker deadlocks."""
    link = ExchangeLink(
        exchange="x", policy=RetryPolicy(), budget=RetryBudget(1, 0, lambda: 0.0),
        limiter=RateLimiter(None, lambda: 0.0, lambda s: None),
        board=CircuitBoard(["x"], lambda: 0.0), clock=Clock())
    both_inside = threading.Barrier(2, timeout=10)
    results: list[str] = []

    def slow_request() -> str:
        both_inside.wait()  # raises BrokenBarrierError if the calls were serialized
        return "ok"

    def worker(seed: int) -> None:
        results.append(Caller(link, Registry(), seed, lambda e: None).call(
            "fetch", slow_request, Attempts()))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["ok", "ok"]


def test_a_trial_whose_outcome_never_came_is_granted_again() -> None:
    setup = Setup()
    setup.fail(6)
    setup.now += 10
    assert setup.circuits.may_call("x").granted  # its caller never reports back
    assert not setup.circuits.may_call("x").granted
    setup.now += 10
    assert setup.circuits.may_call("x").granted, "the circuit is not stuck half-open"
