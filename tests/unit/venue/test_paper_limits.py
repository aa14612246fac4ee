"""binance's request limits as the paper venue keeps them: weights, windows, 429, 418."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ccxt.base.errors import DDoSProtection

from actors.exchange.drivers.paper import PaperExchange
from actors.exchange.link import header_retry_after
from actors.runtime import Clock
from daemon.config import load_config
from daemon.wiring import client_factory
from tests.venue_support import FakeClock
from venue.book import PaperVenue
from venue.limits import VenueLimiter, VenueLimits, Verdict
from venue.weights import (
    ACCOUNT,
    ALL_ORDERS,
    EXCHANGE_INFO,
    MY_TRADES,
    OPEN_ORDERS,
    ORDER_CANCEL,
    ORDER_GET,
    ORDER_NEW,
    TICKER_24HR,
    Endpoint,
    weight_of,
)

MINUTE = 1_700_000_040.0
"""A calendar minute's first second (and a 10 s window's, but not a day's)."""
IP, OTHER_IP = "10.0.0.1", "10.0.0.2"


def limiter(clock: FakeClock, **limits: int) -> VenueLimiter:
    return VenueLimiter(VenueLimits(**limits), clock)


def send(venue: VenueLimiter, endpoint: Endpoint, address: str = IP, account: str = "a",
         **params: str) -> Verdict:
    return venue.admit(address, account, endpoint, params)


def used(verdict: Verdict) -> int:
    return int(verdict.headers["X-MBX-USED-WEIGHT-1M"])


@pytest.mark.parametrize("endpoint,params,weight", [
    (ORDER_NEW, {}, 1), (ORDER_CANCEL, {}, 1), (ORDER_GET, {}, 4),
    (OPEN_ORDERS, {"symbol": "BTCUSD"}, 6), (OPEN_ORDERS, {}, 80),
    (MY_TRADES, {"symbol": "BTCUSD"}, 20), (MY_TRADES, {"orderId": "7"}, 5),
    (ALL_ORDERS, {}, 20), (ACCOUNT, {}, 20), (EXCHANGE_INFO, {}, 20),
    (("GET", "/api/v3/ticker/price"), {"symbol": "BTCUSD"}, 2),
    (("GET", "/api/v3/ticker/price"), {}, 4),
    (TICKER_24HR, {"symbol": "BTCUSD"}, 2), (TICKER_24HR, {}, 80),
    (TICKER_24HR, {"symbols": '["A","B"]'}, 2),
    (("GET", "/api/v3/depth"), {}, 5), (("GET", "/api/v3/depth"), {"limit": "5000"}, 250),
    (("GET", "/api/v3/ping"), {}, 1), (("GET", "/api/v3/nowhere"), {}, 1),
])
def test_each_endpoint_costs_binances_weight(endpoint: Endpoint, params: dict[str, str],
                                             weight: int) -> None:
    assert weight_of(*endpoint, params) == weight


def test_used_weight_adds_up_and_resets_at_each_calendar_minute() -> None:
    clock = FakeClock(MINUTE + 50)
    venue = limiter(clock)
    assert used(send(venue, EXCHANGE_INFO)) == 20
    assert used(send(venue, ORDER_GET)) == 24
    assert used(send(venue, OPEN_ORDERS, symbol="BTCUSD")) == 30
    clock.advance(9.5)  # still the same minute
    assert used(send(venue, ORDER_NEW)) == 31
    clock.advance(0.5)  # the next minute: a fresh count, not a sliding one
    assert used(send(venue, ORDER_GET)) == 4


def test_weight_is_counted_per_client_address() -> None:
    venue = limiter(FakeClock(MINUTE), weight_per_minute=30)
    for _ in range(7):  # 28 of 30
        send(venue, ORDER_GET)
    assert send(venue, ORDER_GET).refusal is not None
    other = send(venue, ORDER_GET, address=OTHER_IP)
    assert other.refusal is None and used(other) == 4


def test_passing_the_weight_limit_answers_429_until_the_minute_ends() -> None:
    clock = FakeClock(MINUTE + 15.5)
    venue = limiter(clock, weight_per_minute=10)
    assert send(venue, ORDER_GET).refusal is None
    assert send(venue, ORDER_GET).refusal is None  # 8 of 10
    refused = send(venue, ORDER_GET)
    assert refused.refusal is not None
    assert (refused.refusal.status, refused.refusal.code) == (429, -1003)
    assert refused.refusal.msg.startswith("Too much request weight used; current limit is "
                                          "10 request weight per 1 MINUTE.")
    # 44.5 s are left of the minute: Retry-After is whole seconds, rounded up
    assert refused.headers["Retry-After"] == "45"
    assert used(refused) == 12  # a refused request's weight is counted too
    clock.advance(44.5)  # waited as told: no ban, and a new minute
    after = send(venue, ORDER_GET)
    assert after.refusal is None and used(after) == 4


def test_sending_before_retry_after_is_up_earns_a_418_ban_of_two_minutes() -> None:
    clock = FakeClock(MINUTE + 50)
    venue = limiter(clock, weight_per_minute=4)
    send(venue, ORDER_GET)
    assert send(venue, ORDER_NEW).headers["Retry-After"] == "10"
    clock.advance(9)  # a second too early
    banned = send(venue, ORDER_GET)
    assert banned.refusal is not None
    assert (banned.refusal.status, banned.refusal.code) == (418, -1003)
    assert banned.headers["Retry-After"] == "120"
    assert f"IP banned until {int((MINUTE + 59 + 120) * 1000)}" in banned.refusal.msg
    clock.advance(100)  # still banned: every request is refused, the ban is not longer
    again = send(venue, ORDER_GET)
    assert again.refusal is not None and again.refusal.status == 418
    assert again.headers["Retry-After"] == "20"
    assert send(venue, ORDER_GET, address=OTHER_IP).refusal is None  # only that address
    clock.advance(20)
    assert send(venue, ORDER_GET).refusal is None
    usage = venue.usage()
    assert usage["addresses"][IP]["http_429"] == 1
    assert usage["addresses"][IP]["http_418"] == 2
    assert (usage["http_429"], usage["http_418"]) == (1, 2)


def ban_after_early_resend(venue: VenueLimiter, clock: FakeClock) -> int:
    """Pass the limit, resend at once; the ban's Retry-After. Leaves the ban over."""
    while send(venue, ORDER_GET).refusal is None:
        pass
    banned = send(venue, ORDER_GET)
    assert banned.refusal is not None and banned.refusal.status == 418
    ban = int(banned.headers["Retry-After"])
    clock.advance(ban)
    return ban


def test_each_further_ban_lasts_twice_as_long_up_to_three_days() -> None:
    clock = FakeClock(MINUTE)
    venue = limiter(clock, weight_per_minute=8)
    bans = [ban_after_early_resend(venue, clock) for _ in range(14)]
    assert bans[:4] == [120, 240, 480, 960]
    assert bans[-1] == 3 * 24 * 3600
    assert venue.usage()["addresses"][IP]["bans"] == 14


def test_new_orders_are_counted_per_account_in_10_s_and_day_windows() -> None:
    clock = FakeClock(MINUTE + 3)
    venue = limiter(clock, orders_per_10s=2)
    counts = [(v.headers["X-MBX-ORDER-COUNT-10S"], v.headers["X-MBX-ORDER-COUNT-1D"])
              for v in (send(venue, ORDER_NEW), send(venue, ORDER_NEW))]
    assert counts == [("1", "1"), ("2", "2")]
    refused = send(venue, ORDER_NEW)
    assert refused.refusal is not None
    assert (refused.refusal.status, refused.refusal.code) == (429, -1015)
    assert refused.refusal.msg == "Too many new orders; current limit is 2 orders per 10 SECOND."
    assert refused.headers["Retry-After"] == "7"
    assert refused.headers["X-MBX-ORDER-COUNT-10S"] == "2"  # the refused order is not counted
    # only new orders are held: a lookup or a cancel meanwhile is answered, no ban
    assert send(venue, ORDER_GET).refusal is None
    assert send(venue, ORDER_CANCEL).refusal is None
    # another account has its own count
    assert send(venue, ORDER_NEW, account="b").refusal is None
    assert send(venue, ORDER_NEW).refusal is not None  # this one's window is still full
    clock.advance(7)
    placed = send(venue, ORDER_NEW)
    assert placed.refusal is None
    assert (placed.headers["X-MBX-ORDER-COUNT-10S"], placed.headers["X-MBX-ORDER-COUNT-1D"]) \
        == ("1", "3")
    assert "X-MBX-ORDER-COUNT-10S" not in send(venue, ORDER_GET).headers  # order answers only
    assert venue.usage()["accounts"] == {"a": {"orders_10s": 1, "orders_1d": 3},
                                         "b": {"orders_10s": 0, "orders_1d": 1}}
    assert venue.usage()["addresses"][IP]["bans"] == 0


def test_the_daily_order_limit_lasts_until_utc_midnight() -> None:
    midnight = 19_700 * 86400.0
    clock = FakeClock(midnight - 3600)
    venue = limiter(clock, orders_per_day=1)
    assert send(venue, ORDER_NEW).refusal is None
    refused = send(venue, ORDER_NEW)
    assert refused.refusal is not None and refused.refusal.code == -1015
    assert refused.refusal.msg.endswith("1 orders per 1 DAY.")
    assert refused.headers["Retry-After"] == "3600"
    clock.advance(3600)
    assert send(venue, ORDER_NEW).headers["X-MBX-ORDER-COUNT-1D"] == "1"


def test_raw_requests_are_limited_per_5_minutes() -> None:
    clock = FakeClock(MINUTE)
    venue = limiter(clock, raw_requests_per_5m=3)
    for _ in range(3):
        assert send(venue, ("GET", "/api/v3/ping")).refusal is None
    refused = send(venue, ("GET", "/api/v3/ping"))
    assert refused.refusal is not None and refused.refusal.code == -1003
    assert "3 requests per 5 MINUTE" in refused.refusal.msg


def test_a_limit_of_0_refuses_nothing_but_still_counts() -> None:
    venue = limiter(FakeClock(MINUTE), weight_per_minute=0, orders_per_10s=0,
                    orders_per_day=0, raw_requests_per_5m=0)
    for _ in range(500):
        verdict = send(venue, ORDER_NEW)
        assert verdict.refusal is None
        send(venue, OPEN_ORDERS)
    assert used(verdict) == 500 + 499 * 80
    assert verdict.headers["X-MBX-ORDER-COUNT-10S"] == "500"
    assert venue.rate_limits() == []


def test_rate_limits_are_published_as_binance_lists_them() -> None:
    assert VenueLimits().rate_limits() == [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
         "limit": 6000},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
        {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5,
         "limit": 61000},
    ]


def test_limits_change_at_run_time_and_reset_forgets_counts_and_bans() -> None:
    clock = FakeClock(MINUTE)
    venue = limiter(clock, weight_per_minute=4)
    ban_after_early_resend(venue, clock)
    send(venue, ORDER_GET)
    send(venue, ORDER_GET)  # 429 again
    assert venue.configure({"weight_per_minute": 300, "orders_per_10s": 10})["orders_per_10s"] \
        == 10
    assert venue.usage()["addresses"][IP]["http_429"] == 2  # counts stay without reset
    assert send(venue, ORDER_GET).refusal is not None  # sent too early: banned, 240 s
    assert venue.configure({"reset": True})["weight_per_minute"] == 300
    assert venue.usage()["addresses"] == {}
    assert send(venue, ORDER_GET).refusal is None


@pytest.mark.parametrize("body,error", [
    ({"weight_per_minute": -1}, "weight_per_minute: must be a whole number"),
    ({"orders_per_10s": 1.5}, "orders_per_10s: must be a whole number"),
    ({"orders_per_day": True}, "orders_per_day: must be a whole number"),
    ({"weight_per_minute": "6000"}, "weight_per_minute: must be a whole number"),
    ({"weight_window_s": 0}, "weight_window_s: must be a whole number from 1 to 86400"),
    ({"weight_window_s": -1}, "weight_window_s: must be a whole number from 1 to 86400"),
    ({"weight_window_s": 10**9}, "weight_window_s: must be a whole number from 1 to 86400"),
    ({"weight_window_s": True}, "weight_window_s: must be a whole number from 1 to 86400"),
    ({"orders_window_s": 0}, "orders_window_s: must be a whole number from 1 to 86399"),
    ({"orders_window_s": 86400}, "orders_window_s: must be a whole number from 1 to 86399"),
    ({"orders_window_s": True}, "orders_window_s: must be a whole number from 1 to 86399"),
    ({"weight": 5}, "unknown limits: weight"),
    ({"reset": "yes"}, "reset must be true or false"),
])
def test_bad_limits_are_refused_and_change_nothing(body: dict[str, Any], error: str) -> None:
    venue = limiter(FakeClock(MINUTE), weight_per_minute=50)
    with pytest.raises(ValueError, match=error):
        venue.configure({"orders_per_10s": 3, **body})
    assert venue.limits == VenueLimits(weight_per_minute=50)


# -- the in-process paper venue ----------------------------------------------------------


def paper_clients(tmp_path: Path, clock: FakeClock, limits: str,
                  count: int = 2) -> tuple[list[PaperExchange], PaperVenue]:
    """Clients of a paper exchange entry, made as the daemon makes them."""
    path = tmp_path / "orderd.toml"
    path.write_text(f'[[exchanges]]\nname = "paper"\ndriver = "paper"\n{limits}')
    venues: dict[str, PaperVenue] = {}
    factory = client_factory(load_config(path).exchanges[0], tmp_path,
                             Clock(now=clock, sleep=clock.advance), venues)
    clients = [client for client in (factory() for _ in range(count))
               if isinstance(client, PaperExchange)]
    assert len(clients) == count
    return clients, venues["paper"]


def test_in_process_venue_keeps_no_limits_by_default(tmp_path: Path) -> None:
    clients, venue = paper_clients(tmp_path, FakeClock(MINUTE), "", count=1)
    try:
        client = clients[0]
        client.load_markets()
        for _ in range(150):
            client.create_order("BTC/USD", "market", "buy", "0.001")
            client.fetch_open_orders()
        assert client.last_response_headers == {}
    finally:
        venue.close()


def test_in_process_venue_with_limits_raises_what_ccxt_raises(tmp_path: Path) -> None:
    clock = FakeClock(MINUTE + 2)
    (first, second), venue = paper_clients(
        tmp_path, clock, "[exchanges.limits]\norders_per_10s = 2\nweight_per_minute = 100\n")
    try:
        first.load_markets()
        assert first.last_response_headers["X-MBX-USED-WEIGHT-1M"] == "20"
        # resting (unfilled) orders: binance's count is of unfilled orders
        first.create_order("BTC/USD", "limit", "buy", "0.01", "1000")
        second.create_order("BTC/USD", "limit", "buy", "0.01", "1000")  # one count for both
        assert second.last_response_headers["X-MBX-ORDER-COUNT-10S"] == "2"
        assert second.last_response_headers["X-MBX-USED-WEIGHT-1M"] == "22"
        with pytest.raises(DDoSProtection, match=r"^paper 429 Too Many Requests .*-1015") as hit:
            first.create_order("BTC/USD", "market", "buy", "0.001")
        assert header_retry_after(first)(hit.value) == 8.0  # the daemon reads Retry-After
        second.fetch_open_orders("BTC/USD")  # only new orders are held: no ban for it
        assert second.last_response_headers["X-MBX-USED-WEIGHT-1M"] == "29"
        second.fetch_balance()
        second.fetch_balance()
        second.fetch_balance()  # 89 of 100
        with pytest.raises(DDoSProtection, match=r"^paper 429 Too Many Requests .*-1003"):
            second.fetch_balance()
        with pytest.raises(DDoSProtection, match=r"^paper 418 I'm a Teapot .*-1003") as ban:
            second.fetch_open_orders("BTC/USD")
        assert header_retry_after(second)(ban.value) == 120.0
        clock.advance(120)
        second.fetch_open_orders("BTC/USD")
        assert second.last_response_headers["X-MBX-USED-WEIGHT-1M"] == "6"
        # the two resting ones: the refused create was never booked
        assert len(first.fetch_open_orders()) == 2
        assert len(venue.orders("default")) == 2
    finally:
        venue.close()
