"""binance's REST endpoints as the paper venue knows them, their request weights
(rest-api.md, web-socket-api.md), and the names binance gives its windows."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl

DAY_S = 86400
UNITS = (("DAY", "D", DAY_S), ("HOUR", "H", 3600), ("MINUTE", "M", 60), ("SECOND", "S", 1))

EXCHANGE_INFO = ("GET", "/api/v3/exchangeInfo")
ORDER_NEW = ("POST", "/api/v3/order")
ORDER_GET = ("GET", "/api/v3/order")
ORDER_CANCEL = ("DELETE", "/api/v3/order")
OPEN_ORDERS = ("GET", "/api/v3/openOrders")
ALL_ORDERS = ("GET", "/api/v3/allOrders")
MY_TRADES = ("GET", "/api/v3/myTrades")
ACCOUNT = ("GET", "/api/v3/account")
TICKER_24HR = ("GET", "/api/v3/ticker/24hr")
UNFILLED_ORDER_COUNT = ("GET", "/api/v3/rateLimit/order")
Endpoint = tuple[str, str]

# binance's documented weights (rest-api.md); ccxt carries most as cost x 5.
WEIGHTS: dict[Endpoint, int] = {
    ("GET", "/api/v3/ping"): 1, ("GET", "/api/v3/time"): 1, EXCHANGE_INFO: 20,
    ORDER_NEW: 1, ("POST", "/api/v3/order/test"): 1, ORDER_CANCEL: 1, ORDER_GET: 4,
    ("DELETE", "/api/v3/openOrders"): 1, ("POST", "/api/v3/order/cancelReplace"): 1,
    ALL_ORDERS: 20, ACCOUNT: 20, UNFILLED_ORDER_COUNT: 40,
    ("GET", "/api/v3/trades"): 25, ("GET", "/api/v3/historicalTrades"): 25,
    ("GET", "/api/v3/aggTrades"): 4, ("GET", "/api/v3/klines"): 2,
    ("GET", "/api/v3/uiKlines"): 2, ("GET", "/api/v3/avgPrice"): 2,
}
# (with `symbol`, without it) for endpoints that can cover every market at once
BY_SYMBOL: dict[Endpoint, tuple[int, int]] = {
    OPEN_ORDERS: (6, 80), ("GET", "/api/v3/ticker/price"): (2, 4),
    ("GET", "/api/v3/ticker/bookTicker"): (2, 4), TICKER_24HR: (2, 80),
}
# The WebSocket API shares the address's weight (web-socket-api.md): connecting costs 2,
# each request its own weight; requests are ("WS", method).
WS_CONNECT = ("GET", "/ws-api/v3")
WEIGHTS.update({WS_CONNECT: 2, ("WS", "userDataStream.subscribe.signature"): 2,
                ("WS", "userDataStream.unsubscribe"): 2, ("WS", "ping"): 1, ("WS", "time"): 1})
DEPTH_WEIGHTS = ((100, 5), (500, 25), (1000, 50))
"""GET /api/v3/depth by its `limit` (default 100); above 1000: 250."""
UNKNOWN_WEIGHT = 1


def interval(seconds: int) -> tuple[str, int]:
    """A window as `exchangeInfo.rateLimits` lists it: ("MINUTE", 1) for 60 s."""
    name, _, size = next(unit for unit in UNITS if seconds % unit[2] == 0)
    return name, seconds // size


def span(seconds: int) -> str:
    """A window as binance's headers name it: 1M for 60 s, 10S, 1D."""
    _, letter, size = next(unit for unit in UNITS if seconds % unit[2] == 0)
    return f"{seconds // size}{letter}"


def weight_of(method: str, path: str, params: Mapping[str, str]) -> int:
    """The request weight binance charges for one request."""
    endpoint = (method, path)
    if endpoint == MY_TRADES:
        return 5 if params.get("orderId") else 20
    if endpoint == ("GET", "/api/v3/depth"):
        limit = int(params["limit"]) if params.get("limit", "").isdigit() else 100
        return next((w for most, w in DEPTH_WEIGHTS if limit <= most), 250)
    if endpoint == TICKER_24HR and params.get("symbols"):
        count = params["symbols"].count(",") + 1
        return 2 if count <= 20 else 40 if count <= 100 else 80
    if endpoint in BY_SYMBOL:
        one, every = BY_SYMBOL[endpoint]
        return one if params.get("symbol") else every
    return WEIGHTS.get(endpoint, UNKNOWN_WEIGHT)


def request_params(query: str, body: str) -> dict[str, str]:
    """The parameters of an API request that its weight depends on."""
    params = dict(parse_qsl(query, keep_blank_values=True))
    params.update(parse_qsl(body, keep_blank_values=True))
    return params
