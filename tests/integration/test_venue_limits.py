"""binance's request limits on the HTTP paper venue, seen through real ccxt.binance."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from ccxt.base.errors import DDoSProtection, ExchangeError, NetworkError

from actors.exchange.drivers.ccxt_driver import DriverSettings, build_binance
from actors.exchange.errors import RETRY, classify
from actors.exchange.link import header_retry_after
from tests.helpers import KEY, ROOT, SECRET, VenueProcess, wait_until
from tests.venue_support import FakeClock
from venue.binance.server import PaperVenueServer
from venue.book import PaperVenue
from venue.limits import VenueLimiter, VenueLimits

MINUTE = 1_700_000_040.0
"""The first second of a calendar minute (and of a 10 s window)."""
BTC = "BTC/USD"


def serve(clock: FakeClock, **limits: int) -> PaperVenueServer:
    """A venue whose limits run on `clock` (signatures are checked against real time)."""
    limiter = VenueLimiter(VenueLimits(**limits), clock)
    return PaperVenueServer(PaperVenue(None), api_key=KEY, secret=SECRET,
                            limiter=limiter).start()


def venue_call(url: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url + path, data=data),
                                    timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def client_of(url: str) -> Any:
    return build_binance(DriverSettings(KEY, SECRET, url))


def rate_limits(client: Any) -> list[tuple[str, str, int, int]]:
    """exchangeInfo's rateLimits, as (type, interval, intervalNum, limit)."""
    return [(x["rateLimitType"], x["interval"], int(x["intervalNum"]), int(x["limit"]))
            for x in client.publicGetExchangeInfo()["rateLimits"]]


def header(client: Any, name: str) -> str | None:
    value: str | None = (client.last_response_headers or {}).get(name)
    return value


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(MINUTE + 1)


@pytest.fixture
def server(clock: FakeClock) -> Iterator[PaperVenueServer]:
    running = serve(clock, weight_per_minute=200, orders_per_10s=2)
    yield running
    running.stop()


def test_every_answer_carries_the_used_weight_order_answers_the_counts(
        server: PaperVenueServer) -> None:
    client = client_of(server.url)
    steps: list[tuple[str, Any]] = [
        ("load_markets", client.load_markets),
        ("resting limit", lambda: client.create_order(BTC, "limit", "buy", 0.01, 1000)),
        ("market buy", lambda: client.create_order(BTC, "market", "buy", 0.01)),
    ]
    seen = []
    for name, step in steps:
        step()
        seen.append((name, header(client, "X-MBX-USED-WEIGHT-1M"),
                     header(client, "X-MBX-ORDER-COUNT-10S"),
                     header(client, "X-MBX-ORDER-COUNT-1D")))
    # the market buy's own answer counts it: its fill takes it off afterwards
    assert seen == [("load_markets", "20", None, None), ("resting limit", "21", "1", "1"),
                    ("market buy", "22", "2", "2")]
    resting = client.fetch_open_orders(BTC)[0]
    lookups: list[tuple[Any, int]] = [
        (lambda: client.fetch_order(resting["id"], BTC), 4),
        (lambda: client.fetch_open_orders(), 80),
        (lambda: client.fetch_my_trades(BTC), 20),
        (lambda: client.fetch_order_trades(resting["id"], BTC), 5),
        (client.fetch_balance, 20),
        (lambda: client.cancel_order(resting["id"], BTC), 1),
    ]
    used = 22 + 6  # and the openOrders above, for one symbol
    for lookup, weight in lookups:
        lookup()
        used += weight
        assert header(client, "X-MBX-USED-WEIGHT-1M") == str(used)
        assert header(client, "X-MBX-ORDER-COUNT-10S") is None
    assert venue_call(server.url, "/_venue/usage")[1]["addresses"]["127.0.0.1"]["weight_1m"] \
        == used


def test_exchange_info_publishes_the_limits(server: PaperVenueServer) -> None:
    assert rate_limits(client_of(server.url)) == [
        ("REQUEST_WEIGHT", "MINUTE", 1, 200), ("ORDERS", "SECOND", 10, 2),
        ("ORDERS", "DAY", 1, 200000), ("RAW_REQUESTS", "MINUTE", 5, 61000)]


def test_a_request_with_no_answer_takes_no_earlier_answers_retry_after(
        clock: FakeClock) -> None:
    """ccxt keeps the last answer's headers when a request gets none (a refused
    connection, a timeout): the Retry-After of a 429 answered before must not make the
    unanswered request's retry wait it out again."""
    running = serve(clock, weight_per_minute=200)
    client = client_of(running.url)
    try:
        client.load_markets()
        for _ in range(9):
            client.fetch_balance()  # 20 each: 200 of 200 weight
        with pytest.raises(DDoSProtection):
            client.fetch_balance()
    finally:
        running.stop()
    client.session.close()  # no kept-alive connection to a handler still running
    with pytest.raises(NetworkError) as unanswered:
        client.fetch_balance()  # nobody listens any more
    assert not isinstance(unanswered.value, DDoSProtection)
    assert header(client, "Retry-After") == "59"  # the 429's, still there
    assert header_retry_after(client)(unanswered.value) is None


class RefuseThenRedirect(BaseHTTPRequestHandler):
    """429 with Retry-After to the first request, then a redirect to itself to every
    other: ccxt's own session (requests) follows it until it gives up."""

    answered = 0

    def do_GET(self) -> None:
        first = RefuseThenRedirect.answered == 0
        RefuseThenRedirect.answered += 1
        body = b'{"code":-1003,"msg":"Too much request weight used."}' if first else b""
        self.send_response(429 if first else 302)
        if first:
            self.send_header("Retry-After", "59")
        else:
            self.send_header("Location", self.path)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def refusing() -> Iterator[str]:
    RefuseThenRedirect.answered = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), RefuseThenRedirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def follow_redirects(client: Any) -> None:
    client.session = requests.Session()  # ccxt's own, as an embedder's client has it


def through_a_proxy(client: Any) -> None:
    client.httpProxy = "http://127.0.0.1:9"  # the driver's session sends nothing then


@pytest.mark.parametrize("change", [follow_redirects, through_a_proxy])
def test_a_plain_exchange_error_without_an_answer_takes_no_earlier_retry_after(
        refusing: str, change: Callable[[Any], None]) -> None:
    """ccxt makes a failure of the request that `requests` does not call a connection
    error (a redirect loop, a URL or proxy refused before sending) a plain ExchangeError,
    as it makes an error answer: it got no answer, so the Retry-After of the 429
    answered before is not its own."""
    client = client_of(refusing)
    with pytest.raises(DDoSProtection):
        client.fetch_time()
    change(client)
    with pytest.raises(ExchangeError) as unanswered:
        client.fetch_time()
    assert type(unanswered.value) is ExchangeError
    assert header(client, "Retry-After") == "59"  # the 429's, still there
    assert header_retry_after(client)(unanswered.value) is None


def test_over_the_weight_limit_429_then_418_for_sending_too_soon(
        server: PaperVenueServer, clock: FakeClock) -> None:
    client = client_of(server.url)
    client.load_markets()
    for _ in range(9):
        client.fetch_balance()  # 20 each: 200 of 200 weight
    assert header(client, "X-MBX-USED-WEIGHT-1M") == "200"
    with pytest.raises(DDoSProtection) as limited:
        client.fetch_balance()
    assert " 429 " in str(limited.value) and '"code": -1003' in str(limited.value)
    assert classify(limited.value).action == RETRY
    assert header(client, "Retry-After") == "59"  # the minute ends in 59 s
    assert header(client, "X-MBX-USED-WEIGHT-1M") == "220"
    assert header_retry_after(client)(limited.value) == 59.0  # as the daemon reads it
    clock.advance(58)
    with pytest.raises(DDoSProtection) as banned:
        client.fetch_order("1", BTC)
    assert " 418 " in str(banned.value) and "IP banned until" in str(banned.value)
    assert header(client, "Retry-After") == "120"
    usage = venue_call(server.url, "/_venue/usage")[1]
    assert usage["addresses"]["127.0.0.1"] == {
        "weight_1m": 220, "weight_total": 220, "raw_requests_5m": 11, "http_429": 1,
        "http_418": 1, "bans": 1, "banned_for_s": 120}
    assert (usage["http_429"], usage["http_418"]) == (1, 1)
    clock.advance(120)  # the ban is over, and so is that minute
    client.fetch_balance()
    assert header(client, "X-MBX-USED-WEIGHT-1M") == "20"


def test_too_many_new_orders_is_429_minus_1015_and_books_nothing(
        server: PaperVenueServer, clock: FakeClock) -> None:
    client = client_of(server.url)
    client.load_markets()
    client.create_order(BTC, "limit", "buy", 0.01, 1000)  # resting: unfilled, they count
    client.create_order(BTC, "limit", "buy", 0.01, 1000)
    with pytest.raises(DDoSProtection) as limited:
        client.create_order(BTC, "market", "buy", 0.01, params={"newClientOrderId": "third"})
    assert "Too many new orders; current limit is 2 orders per 10 SECOND." in str(limited.value)
    assert header(client, "Retry-After") == "9"
    orders = venue_call(server.url, "/_venue/orders")[1]["orders"]
    assert len(orders) == 2 and "third" not in [o["clientOrderId"] for o in orders]
    clock.advance(9)  # waited as told: the next window takes orders again
    client.create_order(BTC, "market", "buy", 0.01)
    assert header(client, "X-MBX-ORDER-COUNT-10S") == "1"
    assert header(client, "X-MBX-ORDER-COUNT-1D") == "3"
    assert venue_call(server.url, "/_venue/usage")[1]["addresses"]["127.0.0.1"]["bans"] == 0


def counts(client: Any) -> tuple[str | None, str | None]:
    """The order counts of the last create's answer (10 s, day)."""
    return header(client, "X-MBX-ORDER-COUNT-10S"), header(client, "X-MBX-ORDER-COUNT-1D")


def test_a_first_fill_takes_the_order_off_every_order_count(
        server: PaperVenueServer, clock: FakeClock) -> None:
    """binance's count is of *unfilled* orders: an order's first fill (at once as taker,
    or later as maker) lowers it by one in the window current then, in both windows,
    never below 0; later fills and cancels do not. A create's answer shows the count
    before its own fill (binance: "decremented later")."""
    client = client_of(server.url)
    client.load_markets()
    rest = client.create_order(BTC, "limit", "buy", 0.01, 1000)
    assert counts(client) == ("1", "1")
    client.create_order(BTC, "market", "buy", 0.01)
    assert counts(client) == ("2", "2")  # at the limit (2 per 10 s) until it fills
    later = client.create_order(BTC, "limit", "buy", 0.01, 999)  # the market one filled
    assert counts(client) == ("2", "2")
    # the resting order's first fill (partial) gives it back; its second does not
    trade = {"symbol": BTC, "price": "1000", "amount": "0.004"}
    for _ in range(2):
        assert len(venue_call(server.url, "/_venue/trade", trade)[1]["trades"]) == 1
    assert venue_call(server.url, "/_venue/usage")[1]["accounts"]["default"] == {
        "orders_10s": 1, "orders_1d": 1}
    client.cancel_order(rest["id"], BTC)  # a cancel gives nothing back
    assert venue_call(server.url, "/_venue/usage")[1]["accounts"]["default"] == {
        "orders_10s": 1, "orders_1d": 1}
    clock.advance(9)  # a new 10 s window: the order placed in the last one fills in it
    venue_call(server.url, "/_venue/trade", {"symbol": BTC, "price": "999", "amount": "0.01"})
    assert venue_call(server.url, "/_venue/usage")[1]["accounts"]["default"] == {
        "orders_10s": 0, "orders_1d": 0}
    client.create_order(BTC, "market", "buy", 0.01)
    assert counts(client) == ("1", "1")
    assert client.fetch_order(later["id"], BTC)["status"] == "closed"


def test_limits_change_at_run_time(server: PaperVenueServer) -> None:
    assert venue_call(server.url, "/_venue/limits", {"weight_per_minute": 30, "reset": True}) \
        == (200, {"weight_per_minute": 30, "orders_per_10s": 2, "orders_per_day": 200000,
                  "raw_requests_per_5m": 61000, "weight_window_s": 60,
                  "orders_window_s": 10})
    client = client_of(server.url)
    client.load_markets()
    with pytest.raises(DDoSProtection, match=" 429 "):
        client.fetch_balance()
    status, answer = venue_call(server.url, "/_venue/limits", {"weight_per_minute": -5})
    assert status == 400 and answer["error"].startswith("weight_per_minute:")
    assert venue_call(server.url, "/_venue/limits", {"colour": 1})[0] == 400
    assert venue_call(server.url, "/_venue/limits")[1]["weight_per_minute"] == 30
    venue_call(server.url, "/_venue/limits", {"weight_per_minute": 0, "reset": True})
    for _ in range(20):
        client.fetch_balance()  # 400 weight, no limit
    assert header(client, "X-MBX-USED-WEIGHT-1M") == "400"


def test_a_shorter_weight_window_is_announced_and_kept_as_binance_would(
        server: PaperVenueServer, clock: FakeClock) -> None:
    """A venue told a 5 s weight window lists it in exchangeInfo, names its header by it
    and counts, refuses and resets in it as in binance's minute (tests wait seconds)."""
    assert venue_call(server.url, "/_venue/limits", {"weight_window_s": 5})[0] == 200
    client = client_of(server.url)
    client.load_markets()
    assert header(client, "X-MBX-USED-WEIGHT-5S") == "20"
    assert header(client, "X-MBX-USED-WEIGHT-1M") is None
    assert rate_limits(client)[0] == ("REQUEST_WEIGHT", "SECOND", 5, 200)  # 40
    for _ in range(8):
        client.fetch_balance()  # 20 each: 200 of 200 weight
    with pytest.raises(DDoSProtection) as limited:
        client.fetch_balance()
    assert "current limit is 200 request weight per 5 SECOND." in str(limited.value)
    assert header(client, "Retry-After") == "4"  # the window ends in 4 s
    assert venue_call(server.url, "/_venue/usage")[1]["addresses"]["127.0.0.1"][
        "weight_5s"] == 220
    clock.advance(4)  # that window is over, and with it the 429's wait
    client.fetch_balance()
    assert header(client, "X-MBX-USED-WEIGHT-5S") == "20"
    status, answer = venue_call(server.url, "/_venue/limits", {"weight_window_s": 0})
    assert status == 400 and answer["error"].startswith("weight_window_s:")


def test_a_shorter_orders_window_is_announced_and_kept_as_binance_would(
        server: PaperVenueServer, clock: FakeClock) -> None:
    """A venue told a 4 s orders window lists it in exchangeInfo, names its count header
    and its -1015 by it, shows it in the unfilled order count and counts, refuses and
    resets in it as in binance's 10 s: a client that reads its windows from exchangeInfo
    holds orders for a window that ends when a test needs it to."""
    assert venue_call(server.url, "/_venue/limits", {"orders_window_s": 4})[0] == 200
    client = client_of(server.url)
    client.load_markets()
    assert rate_limits(client)[1] == ("ORDERS", "SECOND", 4, 2)
    for count in ("1", "2"):
        client.create_order(BTC, "limit", "buy", 0.01, 1000)  # resting: unfilled, they count
        assert (header(client, "X-MBX-ORDER-COUNT-4S"), header(client, "X-MBX-ORDER-COUNT-1D")) \
            == (count, count)
    assert header(client, "X-MBX-ORDER-COUNT-10S") is None
    with pytest.raises(DDoSProtection) as limited:
        client.create_order(BTC, "market", "buy", 0.01)
    assert "Too many new orders; current limit is 2 orders per 4 SECOND." in str(limited.value)
    assert header(client, "Retry-After") == "3"  # the window ends in 3 s
    assert venue_call(server.url, "/_venue/usage")[1]["accounts"]["default"] == {
        "orders_4s": 2, "orders_1d": 2}
    assert client.private_get_ratelimit_order()[0] == {
        "rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 4, "limit": 2,
        "count": 2}
    clock.advance(3)  # that window is over, and with it the 429's wait
    client.create_order(BTC, "limit", "buy", 0.01, 1000)
    assert header(client, "X-MBX-ORDER-COUNT-4S") == "1"
    for wrong in (0, 86400):  # the day's window is the other count
        status, answer = venue_call(server.url, "/_venue/limits", {"orders_window_s": wrong})
        assert status == 400 and answer["error"].startswith("orders_window_s:")


# -- the `orderd paper-venue` process --------------------------------------------------


def test_paper_venue_process_keeps_the_limits_of_its_flags(tmp_path: Path) -> None:
    venue = VenueProcess(tmp_path / "venue", "--weight-limit", "45", "--orders-per-10s", "5")
    try:
        client = client_of(venue.url)
        # the venue counts in calendar minutes: start with time to spare in this one
        wait_until(lambda: time.time() % 60 < 45, "a minute with 15 s left", attempts=2000)
        assert rate_limits(client)[:2] == [("REQUEST_WEIGHT", "MINUTE", 1, 45),
                                           ("ORDERS", "SECOND", 10, 5)]  # 20 weight
        client.load_markets()  # 40
        order = client.create_order(BTC, "limit", "buy", 0.01, 1000)  # 41, resting
        assert header(client, "X-MBX-ORDER-COUNT-1D") == "1"
        client.fetch_order(order["id"], BTC)  # 45: at the limit, not over it
        assert header(client, "X-MBX-USED-WEIGHT-1M") == "45"
        with pytest.raises(DDoSProtection, match=r" 429 .*-1003") as limited:
            client.fetch_order(order["id"], BTC)
        retry_after = header_retry_after(client)(limited.value)
        assert retry_after is not None and 1 <= retry_after <= 60
        with pytest.raises(DDoSProtection, match=" 418 "):
            client.fetch_order(order["id"], BTC)
        assert header(client, "Retry-After") == "120"
        usage = venue.usage()["addresses"]["127.0.0.1"]
        assert (usage["weight_1m"], usage["http_429"], usage["http_418"], usage["bans"]) \
            == (49, 1, 1, 1)
        assert venue.usage()["accounts"]["default"]["orders_1d"] == 1
    finally:
        venue.stop()


def test_paper_venue_refuses_a_negative_limit() -> None:
    done = subprocess.run([sys.executable, "-m", "daemon.cli", "paper-venue",
                           "--orders-per-10s", "-1"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 2
    assert "--orders-per-10s: must be a whole number" in done.stderr
