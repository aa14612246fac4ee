"""Real ccxt exchange clients, and where each exchange wants our client order id.

ccxt's unified `clientOrderId` param is not honoured everywhere (coinbase drops
it), so every order carries the id in the param its exchange understands, and
lookups by client id use the exchange's own lookup param.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import ccxt
from ccxt.base.errors import DuplicateOrderId

from actors.exchange.drivers.binance_answers import full_answer, is_full_spot_answer
from actors.exchange.drivers.http_session import KeptAliveSession

# The create param that carries our client order id, per ccxt exchange id.
CLIENT_ID_PARAM: dict[str, str] = {
    "binance": "newClientOrderId",
    "okx": "clOrdId",
    "bybit": "orderLinkId",
    "kraken": "cl_ord_id",
    "coinbase": "client_order_id",
}
DEFAULT_CLIENT_ID_PARAM = "clientOrderId"

# The fetch_order/cancel_order param that finds an order by our client id.
LOOKUP_PARAM: dict[str, str] = {
    "binance": "origClientOrderId",
    "okx": "clOrdId",
    "bybit": "orderLinkId",
    "kraken": "cl_ord_id",
}
DEFAULT_LOOKUP_PARAM = "clientOrderId"

# The fetch_my_trades param that pages by trade id, per ccxt exchange id (binance's
# myTrades `fromId`: trades with that id and after; paging by time can stall on a
# millisecond holding a whole page). The paper venue takes it too.
TRADES_FROM_ID_PARAM: dict[str, str] = {"binance": "fromId", "paper": "fromId"}

# The param that sets the timestamp a request is signed with, per ccxt exchange id: the
# daemon signs a create with the time it recorded in the ledger before sending it.
SIGNED_TIMESTAMP_PARAM: dict[str, str] = {"binance": "timestamp"}
DEFAULT_RECV_WINDOW_MS = 5000
"""How long binance accepts a signed request after its timestamp (ccxt's own default
is 10000 ms; the longer the window, the longer an unknown create stays unknown)."""

# binance answers a reused live client id with -2010 "Duplicate order sent.",
# which ccxt maps to plain InvalidOrder (a rejection). It means an earlier
# attempt of ours landed, so it gets the class that says so.
BINANCE_EXTRA_EXACT = {"Duplicate order sent.": DuplicateOrderId}


def client_id_params(exchange_id: str, client_order_id: str) -> dict[str, str]:
    """The create_order params that carry `client_order_id` to `exchange_id`."""
    return {CLIENT_ID_PARAM.get(exchange_id, DEFAULT_CLIENT_ID_PARAM): client_order_id}


def lookup_params(exchange_id: str, client_order_id: str) -> dict[str, str]:
    """The fetch_order/cancel_order params that find an order by our client id."""
    return {LOOKUP_PARAM.get(exchange_id, DEFAULT_LOOKUP_PARAM): client_order_id}


def signing_params(exchange_id: str, signed_at: float) -> dict[str, int]:
    """The create_order params that sign the request with `signed_at` (epoch seconds);
    none where the exchange has no such param (the client then signs with its clock)."""
    param = SIGNED_TIMESTAMP_PARAM.get(exchange_id)
    return {} if param is None else {param: int(signed_at * 1000)}


def order_count_reader(client: Any) -> Callable[[], Any] | None:
    """The request that reads the account's unfilled order counts, where the driver has
    one: binance's `GET /api/v3/rateLimit/order` (weight 40), through ccxt's implicit
    method, so it is signed, metered and its weight header read as every request is.
    None for other drivers (the in-process paper venue has no such route)."""
    if getattr(client, "id", None) != "binance":
        return None
    request = getattr(client, "private_get_ratelimit_order", None)
    return request if callable(request) else None


@dataclass(frozen=True)
class DriverSettings:
    """What building a ccxt client needs (from an `[[exchanges]]` entry)."""

    api_key: str
    secret: str
    api_url: str | None = None
    """Base URL replacing every API host, e.g. http://127.0.0.1:8080 (None: the real one)."""
    timeout_ms: int = 10000
    recv_window_ms: int = DEFAULT_RECV_WINDOW_MS
    """binance's recvWindow of every signed request, set explicitly."""

    def __repr__(self) -> str:
        return (f"DriverSettings(api_url={self.api_url!r}, timeout_ms={self.timeout_ms}, "
                f"recv_window_ms={self.recv_window_ms})")


class ReadsFullAnswers:
    """For a ccxt binance class: a spot create's FULL answer read by binance_answers,
    every other answer by ccxt."""

    def parse_order(self, order: Any, market: Any = None) -> Any:
        if is_full_spot_answer(order, market):
            return full_answer(self, order, market)
        return super().parse_order(order, market)  # type: ignore[misc]


class Binance(ReadsFullAnswers, ccxt.binance):  # type: ignore[misc]
    """ccxt's binance, reading a spot create's FULL answer itself (binance_answers)."""


class LocalBinance(Binance):
    """ccxt's binance with every API host moved to one base URL.

    binance picks its per-market error table by URL prefix; requests to the
    moved hosts are matched as if they went to the real ones, so error
    classes stay what they are against binance.
    """

    def __init__(self, config: dict[str, Any], api_url: str) -> None:
        super().__init__(config)
        base = api_url.rstrip("/")
        self._real_bases: list[tuple[str, str]] = []
        api = self.urls["api"]
        for key, real in list(api.items()):
            if not isinstance(real, str):
                continue
            parts = urlsplit(real)
            local = base + parts.path
            api[key] = local
            self._real_bases.append((local, real))
        # longest first, so /api/v3 wins over a shorter prefix
        self._real_bases.sort(key=lambda pair: len(pair[0]), reverse=True)

    def get_exceptions_by_url(self, url: str | None, exactOrBroad: str) -> Any:
        if url is not None:
            for local, real in self._real_bases:
                if url.startswith(local):
                    url = real + url[len(local):]
                    break
        return super().get_exceptions_by_url(url, exactOrBroad)


def build_binance(settings: DriverSettings) -> Any:
    """A sync ccxt binance spot client; use one per thread (ccxt is not thread-safe)."""
    config: dict[str, Any] = {
        "apiKey": settings.api_key,
        "secret": settings.secret,
        # the pace is kept by one request budget shared by every worker of the account;
        # ccxt's own throttle is per instance and would not add up across workers (a
        # worker's Meter turns it on to learn each request's cost, and throttles itself)
        "enableRateLimit": False,
        "timeout": settings.timeout_ms,
        # verbose prints every request, API key header included, to stdout
        "verbose": False,
        "options": {
            "defaultType": "spot",
            # only spot markets; no sapi calls (currencies, margin pairs) at start-up
            "fetchMarkets": {"types": ["spot"]},
            "fetchCurrencies": False,
            "fetchMargins": False,
            "warnOnFetchOpenOrdersWithoutSymbol": False,
            # how long a signed request stays valid: an unknown create is proven absent
            # only after that (see actors/order/resolution.py), so it is ours, not ccxt's
            "recvWindow": settings.recv_window_ms,
        },
    }
    client = (Binance(config) if settings.api_url is None
              else LocalBinance(config, settings.api_url))
    client.session = KeptAliveSession()
    # retries happen in one place, ours
    client.options["maxRetriesOnFailure"] = 0
    client.exceptions["exact"].update(BINANCE_EXTRA_EXACT)
    return client
