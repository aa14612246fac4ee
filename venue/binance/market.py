"""binance's public market data on the paper venue: the 24hr tickers.

ccxt's binance asks `GET /api/v3/ticker/24hr` for `fetch_ticker` and `fetch_tickers`
(the daemon's price refresh), so it is served in binance's shape, without a key. The
venue keeps one price per market and no history: the 24 hours' statistics are that
price, with no change, no volume and no trades (binance's -1 ids for none).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from protocol.codec import format_decimal
from venue.binance.rest import BY_ID, BinanceError, illegal, missing
from venue.book import PaperVenue
from venue.weights import TICKER_24HR

DAY_MS = 24 * 3600 * 1000
TICKER_TYPES = ("FULL", "MINI")


def _market_ids(params: dict[str, str]) -> list[str] | None:
    """The market ids asked for (`symbol`, or `symbols` as a JSON array); None: all."""
    one, many = params.get("symbol"), params.get("symbols")
    if one is not None and many is not None:
        raise BinanceError(400, -1128, "Combination of optional parameters invalid.")
    if one is not None:
        return [one]
    if many is None:
        return None
    try:
        ids = json.loads(many)
    except ValueError:
        raise illegal("symbols") from None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise illegal("symbols")
    if not ids:
        raise missing("symbols")
    if len(set(ids)) < len(ids):
        raise BinanceError(400, -1151, "Symbol is present multiple times in the list.")
    return ids


def ticker_24hr(venue: PaperVenue, params: dict[str, str]) -> Any:
    """GET /api/v3/ticker/24hr: one ticker for `symbol`, else a list (`symbols`, or all)."""
    kind = params.get("type", "FULL")
    if kind not in TICKER_TYPES:
        raise illegal("type")
    ids = _market_ids(params)
    if any(market_id not in BY_ID for market_id in ids or ()):
        raise BinanceError(400, -1121, "Invalid symbol.")
    tickers = [_ticker(venue, market_id, kind == "FULL") for market_id in ids or BY_ID]
    return tickers[0] if "symbol" in params else tickers


def _ticker(venue: PaperVenue, market_id: str, full: bool) -> dict[str, Any]:
    quote = venue.ticker(BY_ID[market_id].symbol)
    price, now_ms = format_decimal(Decimal(quote["info"]["price"])), quote["timestamp"]
    body: dict[str, Any] = {"symbol": market_id}
    if full:
        body.update(priceChange="0", priceChangePercent="0.000", weightedAvgPrice=price,
                    prevClosePrice=price, lastPrice=price, lastQty="0", bidPrice=price,
                    bidQty="0", askPrice=price, askQty="0")
    body.update(openPrice=price, highPrice=price, lowPrice=price, lastPrice=price,
                volume="0", quoteVolume="0", openTime=now_ms - DAY_MS, closeTime=now_ms,
                firstId=-1, lastId=-1, count=0)
    return body


def market_routes(venue: PaperVenue) -> dict[tuple[str, str], Callable[[dict[str, str]], Any]]:
    """The public market-data routes, for the dialect's table (`MARKET_DATA` their keys)."""
    return {TICKER_24HR: lambda params: ticker_24hr(venue, params)}


MARKET_DATA = frozenset({TICKER_24HR})
