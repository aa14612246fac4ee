"""The paper venue's public market data and its answer to a route it does not serve:
binance's 24hr tickers, read by real ccxt and by a real orderd's price refresh, and
binance's bare 404 for an unknown endpoint, which pauses nothing."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from ccxt.base.errors import BadRequest, BadSymbol, ExchangeNotAvailable

from actors.circuit.breakers import CircuitBoard
from actors.exchange.budget import RequestBudget
from actors.exchange.drivers.ccxt_driver import DriverSettings, build_binance
from actors.exchange.errors import RESOLVE
from actors.exchange.failure import CallFailed
from actors.exchange.limits import BINANCE_LIMITS, BudgetConfig
from actors.exchange.link import Attempts, Caller, ExchangeLink, header_retry_after
from actors.exchange.metering import Meter, attach
from actors.exchange.retry import RateLimiter, RetryBudget, RetryPolicy
from actors.runtime import Clock
from actors.supervisor import Registry
from protocol.errors import ProtocolError
from tests.helpers import KEY, SECRET, VenueProcess, market_buy, running_daemon
from tests.stream_support import operator
from venue.binance.server import PaperVenueServer
from venue.book import PaperVenue

TICKER = ("GET", "/api/v3/ticker/24hr")
NOT_FOUND_HTML = "<html><body><h2>404 Not found</h2></body></html>"


@pytest.fixture(scope="module")
def server() -> Iterator[PaperVenueServer]:
    running = PaperVenueServer(PaperVenue(None), api_key=KEY, secret=SECRET).start()
    yield running
    running.stop()


@pytest.fixture
def client(server: PaperVenueServer) -> Any:
    exchange = build_binance(DriverSettings(KEY, SECRET, server.url))
    exchange.load_markets()
    return exchange


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    """Status, body and headers of a GET, whatever the status."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode(), dict(answer.headers)
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode(), dict(refused.headers)


def test_ccxt_reads_the_venues_prices_from_public_24hr_tickers(
        server: PaperVenueServer, client: Any) -> None:
    operator(server.url, "/_venue/price", {"symbol": "SOL/USD", "price": "123.45"})
    operator(server.url, "/_venue/price", {"symbol": "BTC/USD", "price": "65000"})
    server.weighed.clear()
    tickers = client.fetch_tickers(["SOL/USD", "BTC/USD"])  # what the price refresh asks
    assert set(tickers) == {"SOL/USD", "BTC/USD"}
    assert tickers["SOL/USD"]["last"] == 123.45 and tickers["BTC/USD"]["last"] == 65000
    sol = tickers["SOL/USD"]
    assert sol["bid"] == sol["ask"] == sol["close"] == 123.45 and sol["timestamp"] > 0
    assert client.fetch_ticker("SOL/USD")["last"] == 123.45
    # binance's weights: 2 for up to 20 symbols or one symbol
    assert [(m, p, w) for m, p, w in server.weighed] == [(*TICKER, 2), (*TICKER, 2)]


def test_tickers_need_no_key_and_have_binances_fields(server: PaperVenueServer) -> None:
    operator(server.url, "/_venue/price", {"symbol": "ETH/USD", "price": "3000.5"})
    server.weighed.clear()
    status, body, headers = get(server.url + "/api/v3/ticker/24hr?symbol=ETHUSD")
    assert status == 200 and headers["X-MBX-USED-WEIGHT-1M"]
    eth = json.loads(body)
    assert eth["symbol"] == "ETHUSD" and eth["lastPrice"] == "3000.5"
    assert eth["bidPrice"] == eth["askPrice"] == eth["openPrice"] == "3000.5"
    assert eth["closeTime"] - eth["openTime"] == 24 * 3600 * 1000
    status, body, _ = get(server.url + "/api/v3/ticker/24hr?type=MINI")
    every = json.loads(body)
    assert status == 200 and {t["symbol"] for t in every} == {"BTCUSD", "ETHUSD", "SOLUSD"}
    assert "bidPrice" not in every[0] and "lastPrice" in every[0]
    assert [w for _, _, w in server.weighed] == [2, 80]  # all symbols: 80


@pytest.mark.parametrize("query,error", [
    ("symbol=DOGEUSD", BadSymbol),
    ('symbols=["SOLUSD","DOGEUSD"]', BadSymbol),
    ('symbols=["SOLUSD","SOLUSD"]', BadSymbol),
    ('symbol=SOLUSD&symbols=["SOLUSD"]', BadRequest),
    ("symbols=SOLUSD", BadRequest),
    ("type=HUGE", BadRequest),
])
def test_bad_ticker_requests_get_binances_errors(server: PaperVenueServer, client: Any,
                                                 query: str, error: type[Exception]) -> None:
    params = dict(item.split("=", 1) for item in query.split("&"))
    with pytest.raises(error):
        client.publicGetTicker24hr(params)


class Quiet(Registry):
    """Outcomes told to the circuit actor go nowhere."""

    def tell(self, *args: Any, **kwargs: Any) -> bool:
        return True


@pytest.mark.parametrize("api", ["public", "private"])
def test_an_unknown_route_is_binances_404_and_pauses_nothing(server: PaperVenueServer,
                                                             api: str) -> None:
    """binance answers an endpoint it does not have 404 with an empty body (an HTML
    page only to a client that accepts text/html), with or without a key; ccxt makes
    it ExchangeNotAvailable, neither a ban nor a refused key, after the key worked."""
    clock = Clock()
    budget = RequestBudget("bx", BudgetConfig(), BINANCE_LIMITS)
    bans: list[float] = []
    budget.on_ban = bans.append
    link = ExchangeLink("bx", RetryPolicy(max_retries=0), RetryBudget(20, 2, clock.monotonic),
                        RateLimiter(None, clock.monotonic, clock.sleep),
                        CircuitBoard(["bx"], clock.monotonic), clock, requests=budget)
    client = build_binance(DriverSettings(KEY, SECRET, server.url))
    meter = Meter(budget)
    assert attach(client, meter)
    caller = Caller(link, Quiet(), 0, header_retry_after(client), meter)
    caller.call("read", client.fetch_balance, Attempts())  # the key has worked
    with pytest.raises(CallFailed) as failed:
        caller.call("read", lambda: client.request("nosuchThing", [api], "GET", {}), Attempts())
    assert isinstance(failed.value.error, ExchangeNotAvailable)
    assert (failed.value.rule.action, failed.value.rule.code) == (RESOLVE, "exchange_unavailable")
    assert budget.paused_for() is None and not budget.banned and bans == []
    assert client.last_http_response == ""


def test_an_unknown_route_answers_html_only_to_a_client_that_asks_for_it(
        server: PaperVenueServer) -> None:
    signed = {"X-MBX-APIKEY": KEY}
    assert get(server.url + "/api/v3/exchangie", signed)[:2] == (404, "")
    assert get(server.url + "/api/v3/ticker/tradingDay?symbol=SOLUSD")[:2] == (404, "")
    status, body, headers = get(server.url + "/api/v3/exchangie",
                                {"Accept": "text/html,application/xhtml+xml"})
    assert (status, body) == (404, NOT_FOUND_HTML)
    assert headers["Content-Type"].startswith("text/html")


def test_orderd_refreshes_its_prices_from_the_venue(venue: VenueProcess,
                                                    tmp_path: Path) -> None:
    """A notional limit needs a reference price for a market order: the daemon's binance
    driver gets it from the venue's tickers at start, without a warning."""
    operator(venue.url, "/_venue/price", {"symbol": "SOL/USD", "price": "100"})
    exchanges = (f'[[exchanges]]\nname = "bx"\ndriver = "binance"\napi_url = "{venue.url}"\n'
                 f'api_key = "{KEY}"\nsecret = "{SECRET}"\n'
                 '[exchanges.risk]\nmax_order_notional = 100.0\nsymbols = ["SOL/USD"]\n')
    with running_daemon(tmp_path, exchanges=exchanges) as daemon:
        client = daemon.client()
        filled = client.submit(market_buy("0.5", "SOL/USD",
                                          client_order_id=f"p-{uuid.uuid4().hex[:12]}"))
        assert filled["status"] == "filled" and Decimal(filled["filled"]) == Decimal("0.5")
        with pytest.raises(ProtocolError) as over:  # about 200 at the venue's price
            client.submit(market_buy("2", "SOL/USD"))
        assert "exceeds the limit" in str(over.value)
        assert daemon.stop() == 0
    assert TICKER in venue.requests()
    log = (tmp_path / "orderd.log").read_text()
    assert "not refreshed" not in log and "prices of bx not loaded" not in log
