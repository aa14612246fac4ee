"""The paper venue's public market data: binance's 24hr tickers, read by real ccxt and
by a real orderd's price refresh."""

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
from ccxt.base.errors import BadRequest, BadSymbol

from actors.exchange.drivers.ccxt_driver import DriverSettings, build_binance
from protocol.errors import ProtocolError
from tests.helpers import KEY, SECRET, VenueProcess, market_buy, running_daemon
from tests.stream_support import operator
from venue.binance.server import PaperVenueServer
from venue.book import PaperVenue

TICKER = ("GET", "/api/v3/ticker/24hr")


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
