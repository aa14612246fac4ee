"""What every worker of one exchange account shares: retry policy and budget,
the request budget (weight and order counts), the pace, and the circuit board.
Also the retry loop itself, where an exchange's error enters the daemon: it is
classified there, once, and travels on with its rule (see `failure`)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import ccxt
import requests

from actors.circuit.breakers import NAME as CIRCUIT_ACTOR
from actors.circuit.breakers import CircuitBoard, CircuitOpen
from actors.circuit.messages import MayCall, Outcome, Permit
from actors.exchange.budget import NotSent, RequestBudget
from actors.exchange.client import ExchangeClient
from actors.exchange.errors import RETRY, Rule, classify
from actors.exchange.failure import CallFailed
from actors.exchange.metering import ORDER_OPS, Meter
from actors.exchange.retry import RateLimiter, RetryBudget, RetryPolicy
from actors.metrics.series import Metrics
from actors.runtime import Clock
from actors.supervisor import ASK_TIMEOUT_S, Registry

log = logging.getLogger(__name__)
T = TypeVar("T")
EXPIRED = Rule(RETRY, "send_deadline_passed", False)
"""A request not sent because its deadline passed: known not done."""
NOT_SENT = Rule(RETRY, "rate_limited", False)
"""A request the request budget kept back: known not done, and no exchange failure."""


@dataclass
class ExchangeLink:
    """Shared by the workers of one exchange account; thread-safe parts only, and the
    client whose markets they all use, which nothing changes once loaded."""

    exchange: str
    policy: RetryPolicy
    budget: RetryBudget
    limiter: RateLimiter
    board: CircuitBoard
    clock: Clock
    metrics: Metrics = field(default_factory=Metrics)
    requests: RequestBudget | None = None
    """The exchange's request weight and order counts (one for the whole entry); None
    for a link made without one (tests): nothing is counted."""
    markets_loaded_by: ExchangeClient | None = None
    """The first client of the exchange found with its markets loaded. The other
    workers' clients share its market and currency tables by reference (ccxt's
    `set_markets_from_exchange`, which only reads them): on a real exchange loading is
    a download per client (binance's exchangeInfo weighs 20 of its 6,000 a minute),
    and each worker's first order waited for it. Those tables are read-only from then
    on: no worker reloads markets. The client stays referenced after its worker is
    restarted; only its tables are used."""


@dataclass
class Attempts:
    """How many requests a call took."""

    sends: int = 0
    retries: int = 0


class Caller:
    """Runs exchange requests for one worker: breaker, budget, pace, retries."""

    def __init__(self, link: ExchangeLink, registry: Registry, seed: int,
                 retry_after: Callable[[BaseException], float | None],
                 meter: Meter | None = None) -> None:
        """`meter`: the one its client's requests go through (see metering)."""
        self.link = link
        self.registry = registry
        self.rng = random.Random(seed)
        self._retry_after = retry_after
        self._meter = meter

    def call(self, op: str, request: Callable[[], T], attempts: Attempts,
             not_after: float = float("inf")) -> T:
        """The request's result; CircuitOpen or CallFailed when it cannot be had."""
        while True:
            if self.link.clock.monotonic() > not_after:
                raise CallFailed(TimeoutError("not sent: the send deadline passed"),
                                 EXPIRED, attempts.sends, attempts.retries, None)
            self._permit()
            self.link.limiter.acquire(waits=op not in ORDER_OPS)  # orders never queue
            attempts.sends += 1
            started = time.perf_counter()
            meter = self._meter
            if meter is not None:
                meter.start(op)
            try:
                result = request()
            except NotSent as exc:
                attempts.sends -= 1
                raise CallFailed(exc, NOT_SENT, attempts.sends, attempts.retries,
                                 exc.retry_after_s) from exc
            except Exception as exc:
                rule = classify(exc)
                self._measure(op, started, rule.code)
                self._tell_outcome(rule.transient, type(exc).__name__)
                retry_after, paused = wait_after(self._retry_after(exc), self.link.requests, op)
                if paused or not self._may_retry(op, exc, rule, attempts.retries):
                    raise CallFailed(exc, rule, attempts.sends, attempts.retries,
                                     retry_after) from exc
                attempts.retries += 1
                self.link.metrics.retries.labels(self.link.exchange).inc()
                self.link.clock.sleep(self.link.policy.delay(
                    attempts.retries, self.rng, retry_after))
                continue
            finally:
                if meter is not None:
                    meter.finish()
            self._measure(op, started, None)
            self._tell_outcome(False, "")
            return result

    def _measure(self, op: str, started: float, error: str | None) -> None:
        metrics, exchange = self.link.metrics, self.link.exchange
        metrics.child(metrics.request_duration, exchange, op).observe(
            time.perf_counter() - started)
        if error is not None:
            metrics.child(metrics.request_errors, exchange, error).inc()

    def _may_retry(self, op: str, error: BaseException, rule: Rule, retries: int) -> bool:
        if not self.link.policy.allows(op, error, rule, retries):
            return False
        if not self.link.budget.try_take():
            log.warning("retry budget of %s is empty: %s not retried", self.link.exchange, op)
            self.link.metrics.retry_budget_exhausted.labels(self.link.exchange).inc()
            return False
        return True

    def _permit(self) -> None:
        board = self.link.board
        wait = board.open_for(self.link.exchange)
        if wait is not None:
            raise CircuitOpen(self.link.exchange, wait)
        if board.view(self.link.exchange).state == "closed":
            return
        permit: Permit = self.registry.ask(CIRCUIT_ACTOR, MayCall(self.link.exchange),
                                           timeout=ASK_TIMEOUT_S)
        if not permit.granted:
            raise CircuitOpen(self.link.exchange, permit.retry_after_s)

    def _tell_outcome(self, failed: bool, error: str) -> None:
        if not failed and self.link.board.view(self.link.exchange).state == "closed":
            return  # nothing to learn: successes do not forgive failures in the window
        self.registry.tell(CIRCUIT_ACTOR, Outcome(self.link.exchange, failed, error))


def wait_after(retry_after: float | None, budget: RequestBudget | None,
               op: str) -> tuple[float | None, bool]:
    """How long to wait before `op` is sent again, and whether the exchange's 429 or 418
    holds it (nothing is sent before its end, or the address is banned): the error's
    Retry-After, at least the budget's pause (a create's also an order count's)."""
    paused = None if budget is None else budget.paused_for(new_orders=op == "create")
    if paused is None:
        return retry_after, False
    return max(retry_after or 0.0, paused), True


def header_retry_after(client: Any) -> Callable[[BaseException], float | None]:
    """Retry-After from the exception or, when the exchange answered, the client's last
    response headers."""

    def retry_after(error: BaseException) -> float | None:
        value = getattr(error, "retry_after_s", None)
        if value is None and _answered(error):
            headers = getattr(client, "last_response_headers", None) or {}
            value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
        try:
            return None if value is None else max(0.0, float(value))
        except (TypeError, ValueError):
            return None

    return retry_after


def _answered(error: BaseException) -> bool:
    """Whether `error` came with an answer of the exchange. ccxt keeps the last answer's
    headers when a request gets none: an earlier 429's Retry-After would be waited out
    again. ccxt raises a failure of the request itself from the `requests` exception it
    caught, and only an HTTPError (a status of 400 or more) came with an answer it read:
    a timeout or a dropped connection becomes RequestTimeout or a bare NetworkError, but
    a redirect loop, a URL or proxy refused before sending or an answer `requests` could
    not decode a plain ExchangeError, as an error answer does. An exception ccxt did not
    make (raised in the HTTP session, say) came with no answer it read either."""
    if not isinstance(error, ccxt.BaseError):
        return False
    cause = error.__cause__
    if isinstance(cause, requests.RequestException):
        return isinstance(cause, requests.HTTPError)
    return not isinstance(error, ccxt.RequestTimeout) and type(error) is not ccxt.NetworkError
