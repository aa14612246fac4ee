"""Backoff, the error table, the retry loop and the retry budget."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import ccxt
import pytest

from actors.circuit.breakers import CircuitBoard
from actors.exchange.drivers.paper import PaperExchange, PaperFaults, PaperVenue
from actors.exchange.errors import HALT, REJECT, RESOLVE, RETRY, classify
from actors.exchange.failure import CallFailed
from actors.exchange.link import Attempts, Caller, ExchangeLink, header_retry_after
from actors.exchange.retry import RateLimiter, RetryBudget, RetryPolicy
from actors.runtime import Clock
from actors.supervisor import Registry


class FakeTime:
    """An injected clock whose sleep only advances time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> Clock:
        return Clock(now=self.monotonic, monotonic=self.monotonic, sleep=self.sleep)


@pytest.mark.parametrize("retry", range(1, 9))
def test_full_jitter_stays_within_its_cap(retry: int) -> None:
    policy = RetryPolicy(initial_delay=0.5, backoff_base=2.0, max_delay=8.0)
    rng = random.Random(retry)
    cap = min(8.0, 0.5 * 2.0 ** (retry - 1))
    delays = [policy.delay(retry, rng) for _ in range(2000)]
    assert all(0.0 <= d <= cap for d in delays)
    # full jitter spreads over the whole range, not around the cap
    assert min(delays) < cap * 0.05 and max(delays) > cap * 0.95


def test_retry_after_is_a_floor() -> None:
    policy = RetryPolicy(initial_delay=0.1, max_delay=0.2)
    rng = random.Random(1)
    assert all(policy.delay(1, rng, retry_after=3.0) >= 3.0 for _ in range(100))


@pytest.mark.parametrize("error,action,transient", [
    (ccxt.RequestTimeout("t"), RESOLVE, True),
    (ccxt.NetworkError("n"), RESOLVE, True),
    (ccxt.ExchangeNotAvailable("503"), RESOLVE, True),
    (ccxt.OnMaintenance("m"), RETRY, True),
    (ccxt.RateLimitExceeded("429"), RETRY, True),
    (ccxt.DDoSProtection("d"), RETRY, True),
    (ccxt.InvalidNonce("n"), RETRY, True),
    (ccxt.BadResponse("b"), RESOLVE, True),
    (ccxt.InsufficientFunds("f"), REJECT, False),
    (ccxt.InvalidOrder("i"), REJECT, False),
    (ccxt.DuplicateOrderId("dup"), RESOLVE, False),
    (ccxt.OrderNotFound("o"), REJECT, False),
    (ccxt.BadSymbol("s"), REJECT, False),
    (ccxt.AuthenticationError("a"), HALT, False),
    (ccxt.PermissionDenied("p"), HALT, False),
    (ccxt.ExchangeError("e"), REJECT, False),
    (ValueError("not ccxt"), RESOLVE, True),
])
def test_each_error_class_goes_to_its_row(error: Exception, action: str,
                                          transient: bool) -> None:
    rule = classify(error)
    assert (rule.action, rule.transient) == (action, transient)


def caller(time: FakeTime, client: PaperExchange, *, budget: float = 100.0,
           max_retries: int = 3) -> Caller:
    link = ExchangeLink(
        exchange="paper", policy=RetryPolicy(max_retries=max_retries),
        budget=RetryBudget(budget, 0.0, time.monotonic),
        limiter=RateLimiter(None, time.monotonic, time.sleep),
        board=CircuitBoard(["paper"], time.monotonic), clock=time.clock())
    return Caller(link, Registry(), seed=1, retry_after=header_retry_after(client))


@pytest.fixture()
def venue(tmp_path: Path) -> PaperVenue:
    return PaperVenue(tmp_path / "venue.sqlite")


def test_reads_are_retried_then_given_up(venue: PaperVenue) -> None:
    time = FakeTime()
    client = PaperExchange(venue, faults=PaperFaults(error_rate=1.0), sleep=time.sleep)
    attempts = Attempts()
    with pytest.raises(CallFailed) as caught:
        caller(time, client).call("fetch", lambda: client.fetch_balance(), attempts)
    assert (attempts.sends, attempts.retries) == (4, 3)
    assert caught.value.rule.transient
    assert len(time.sleeps) == 3  # slept through the injected clock only


def test_ambiguous_create_is_never_sent_again(venue: PaperVenue) -> None:
    time = FakeTime()
    client = PaperExchange(venue, faults=PaperFaults(ambiguous_rate=1.0), sleep=time.sleep)
    attempts = Attempts()
    with pytest.raises(CallFailed) as caught:
        caller(time, client).call("create", lambda: client.create_order(
            "SOL/USD", "market", "buy", 1, None, {"clientOrderId": "amb-1"}), attempts)
    assert caught.value.rule.action == RESOLVE
    assert attempts.sends == 1
    assert [o["clientOrderId"] for o in venue.all_orders()] == ["amb-1"]


def test_budget_stops_a_retry_storm(venue: PaperVenue) -> None:
    time = FakeTime()
    client = PaperExchange(venue, faults=PaperFaults(error_rate=1.0), sleep=time.sleep)
    shared = caller(time, client, budget=5)
    sends = []
    for _ in range(10):
        attempts = Attempts()
        with pytest.raises(CallFailed):
            shared.call("fetch", lambda: client.fetch_balance(), attempts)
        sends.append(attempts.sends)
    assert sum(sends) == 10 + 5, "only the budget's five retries were spent"
    assert sends[-1] == 1


def test_rate_limiter_spaces_workers_of_one_exchange() -> None:
    time = FakeTime()
    limiter = RateLimiter(10.0, time.monotonic, time.sleep)
    for _ in range(5):
        limiter.acquire()
    assert time.now - 1000.0 == pytest.approx(0.4)


def test_rate_limiter_is_shared_by_threads() -> None:
    lock = threading.Lock()
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        with lock:
            waits.append(seconds)

    limiter = RateLimiter(100.0, lambda: 0.0, sleep)  # time stands still
    threads = [threading.Thread(target=limiter.acquire) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # each caller reserved its own slot: waits are 0.01, 0.02, ... 0.07
    assert sorted(round(w, 6) for w in waits) == [round(0.01 * i, 6) for i in range(1, 8)]
