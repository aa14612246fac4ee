"""binance's -2015 ("Invalid API-key, IP, or permissions for action.", HTTP 401) after
the key once worked, as a worker's guarded call meets it."""

from __future__ import annotations

from typing import Any

import pytest

from actors.circuit.breakers import CircuitBoard
from actors.exchange.budget import RequestBudget
from actors.exchange.drivers.ccxt_driver import DriverSettings, build_binance
from actors.exchange.errors import HALT
from actors.exchange.failure import CallFailed
from actors.exchange.limits import BINANCE_LIMITS, BudgetConfig
from actors.exchange.link import Attempts, Caller, ExchangeLink, header_retry_after
from actors.exchange.metering import Meter, attach
from actors.exchange.retry import RateLimiter, RetryBudget, RetryPolicy
from actors.runtime import Clock
from actors.supervisor import Registry
from venue.binance.server import PaperVenueServer
from venue.book import PaperVenue


class Quiet(Registry):
    """Outcomes told to the circuit actor go nowhere."""

    def tell(self, *args: Any, **kwargs: Any) -> bool:
        return True


def test_a_key_refused_after_it_worked_halts_and_is_not_resent() -> None:
    """The key is revoked, or this address leaves its whitelist, while the daemon runs.
    ccxt raises DDoSProtection for it once the key has worked (its guess: a temporary
    ban), which the error table would retry at once. The account cannot trade: the
    create is sent once and the rule halts, as for -2015 before the key worked."""
    server = PaperVenueServer(PaperVenue(None), api_key="k", secret="s").start()
    try:
        clock = Clock()
        budget = RequestBudget("bx", BudgetConfig(), BINANCE_LIMITS)
        link = ExchangeLink("bx", RetryPolicy(), RetryBudget(20, 2, clock.monotonic),
                            RateLimiter(None, clock.monotonic, clock.sleep),
                            CircuitBoard(["bx"], clock.monotonic), clock, requests=budget)
        client = build_binance(DriverSettings("k", "s", server.url))
        meter = Meter(budget)
        assert attach(client, meter)
        caller = Caller(link, Quiet(), 0, header_retry_after(client), meter)
        caller.call("read", client.fetch_balance, Attempts())
        server.api_key = "revoked"
        with pytest.raises(CallFailed) as failed:
            caller.call("create", lambda: client.create_order(
                "BTC/USD", "limit", "buy", 0.01, 1000, {"newClientOrderId": "t-2015"}),
                Attempts())
    finally:
        server.stop()
    failure = failed.value
    assert (failure.rule.action, failure.rule.code) == (HALT, "authentication_failed")
    assert (failure.sends, failure.retries) == (1, 0)
