"""binance's -2015 ("Invalid API-key, IP, or permissions for action.", HTTP 401) after
the key once worked, as a worker's guarded call meets it: binance also answers it while
the key is disabled for a temporary ban, and ccxt raises DDoSProtection for it then."""

from __future__ import annotations

from typing import Any

import pytest

from actors.circuit.breakers import CircuitBoard
from actors.exchange.budget import FIRST_BAN_S, RequestBudget
from actors.exchange.drivers.ccxt_driver import DriverSettings, build_binance
from actors.exchange.errors import RETRY
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


def test_a_key_refused_after_it_worked_pauses_as_a_ban_and_is_not_resent() -> None:
    """The error table would retry DDoSProtection at once; every retry of a disabled
    key lengthens a ban. The create is sent once, and every request waits as for a 418
    without Retry-After, the ban's alert told; a key revoked for good is tried once a
    pause (no halt: a temporary ban ends by itself)."""
    server = PaperVenueServer(PaperVenue(None), api_key="k", secret="s").start()
    try:
        clock = Clock()
        budget = RequestBudget("bx", BudgetConfig(), BINANCE_LIMITS)
        bans: list[float] = []
        budget.on_ban = bans.append
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
    assert (failure.rule.action, failure.rule.code) == (RETRY, "rate_limited")
    assert (failure.sends, failure.retries) == (1, 0)
    paused = budget.paused_for()
    assert paused is not None and FIRST_BAN_S - 5 < paused <= FIRST_BAN_S
    assert budget.banned and bans == [pytest.approx(FIRST_BAN_S, abs=5)]
    assert failure.retry_after_s is not None and failure.retry_after_s > FIRST_BAN_S - 5
