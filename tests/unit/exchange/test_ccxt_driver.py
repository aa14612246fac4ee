"""Where real ccxt classes put our client order id, and the binance driver's client."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import ccxt
import pytest
from ccxt.base.errors import DuplicateOrderId, InvalidOrder

from actors.exchange.drivers.ccxt_driver import (
    DriverSettings,
    build_binance,
    client_id_params,
    lookup_params,
    signing_params,
)
from actors.exchange.errors import RESOLVE, classify

CID = "od-7f3a9c"


class Captured(Exception):
    """Raised instead of sending: the request ccxt built is in `seen`."""


def offline(exchange_id: str) -> tuple[Any, dict[str, Any]]:
    """A real ccxt class with one BTC/USD spot market whose requests are captured, not sent."""
    exchange = getattr(ccxt, exchange_id)({"apiKey": "key", "secret": "c2VjcmV0",
                                           "password": "pass", "uid": "uid"})
    exchange.set_markets([{
        "id": "BTC-USD" if exchange_id in ("okx", "coinbase") else "BTCUSD",
        "symbol": "BTC/USD", "base": "BTC", "quote": "USD", "baseId": "BTC", "quoteId": "USD",
        "type": "spot", "spot": True, "margin": False, "swap": False, "future": False,
        "option": False, "contract": False, "active": True,
        "precision": {"amount": 0.00001, "price": 0.01},
        "limits": {"amount": {"min": 0.00001}, "price": {}, "cost": {}},
        "info": {"orderTypes": ["LIMIT", "MARKET"]},
    }])
    # bybit would first ask whether the account is unified
    exchange.options.update(enableUnifiedMargin=False, enableUnifiedAccount=True)
    seen: dict[str, Any] = {}

    def fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        seen.update(url=url, method=method, body=body or "")
        raise Captured()

    exchange.fetch = fetch
    return exchange, seen


def sent_params(seen: dict[str, Any]) -> dict[str, Any]:
    """The request's parameters, from its query string and its form or JSON body."""
    params = {k: v[0] for k, v in parse_qs(urlsplit(seen["url"]).query).items()}
    body = seen["body"]
    if body.startswith("["):
        body = body[1:-1]
    if body.startswith("{"):
        params.update(json.loads(body))
    else:
        params.update({k: v[0] for k, v in parse_qs(body).items()})
    return params


@pytest.mark.parametrize("exchange_id,param", [
    ("binance", "newClientOrderId"),
    ("okx", "clOrdId"),
    ("bybit", "orderLinkId"),
    ("kraken", "cl_ord_id"),
    ("coinbase", "client_order_id"),
])
def test_create_carries_our_client_id_in_the_exchange_param(exchange_id: str, param: str) -> None:
    assert client_id_params(exchange_id, CID) == {param: CID}
    exchange, seen = offline(exchange_id)
    with pytest.raises(Captured):
        exchange.create_order("BTC/USD", "limit", "buy", 0.01, 1000,
                              client_id_params(exchange_id, CID))
    assert sent_params(seen)[param] == CID


def test_unknown_exchange_gets_ccxt_unified_param() -> None:
    assert client_id_params("kucoin", CID) == {"clientOrderId": CID}
    assert lookup_params("kucoin", CID) == {"clientOrderId": CID}


@pytest.mark.parametrize("exchange_id,method,param", [
    ("binance", "fetch_order", "origClientOrderId"),
    ("binance", "cancel_order", "origClientOrderId"),
    ("okx", "fetch_order", "clOrdId"),
    ("okx", "cancel_order", "clOrdId"),
    ("bybit", "cancel_order", "orderLinkId"),
    ("kraken", "cancel_order", "cl_ord_id"),
])
def test_lookup_by_client_id_reaches_the_exchange(exchange_id: str, method: str,
                                                  param: str) -> None:
    exchange, seen = offline(exchange_id)
    with pytest.raises(Captured):
        getattr(exchange, method)(None, "BTC/USD", lookup_params(exchange_id, CID))
    assert sent_params(seen)[param] == CID


def test_binance_accepts_ccxt_unified_lookup_param_too() -> None:
    exchange, seen = offline("binance")
    with pytest.raises(Captured):
        exchange.fetch_order(None, "BTC/USD", {"clientOrderId": CID})
    assert sent_params(seen)["origClientOrderId"] == CID


def local_client(**kwargs: Any) -> Any:
    return build_binance(DriverSettings("key", "secret", "http://127.0.0.1:9", **kwargs))


def test_local_binance_keeps_the_spot_error_table() -> None:
    real, local = ccxt.binance(), local_client()
    spot = real.get_exceptions_by_url("https://api.binance.com/api/v3/order", "exact")
    assert spot  # binance has a spot table; a local URL must find the same one
    assert local.get_exceptions_by_url("http://127.0.0.1:9/api/v3/order", "exact") == spot
    assert local.urls["api"]["private"] == "http://127.0.0.1:9/api/v3"
    assert local.urls["api"]["sapi"] == "http://127.0.0.1:9/sapi/v1"


def test_binance_duplicate_order_means_it_landed() -> None:
    client = local_client()
    with pytest.raises(DuplicateOrderId) as caught:
        client.handle_errors(400, "Bad Request", "http://127.0.0.1:9/api/v3/order", "POST", {},
                             '{"code":-2010,"msg":"Duplicate order sent."}',
                             {"code": -2010, "msg": "Duplicate order sent."}, {}, "")
    assert classify(caught.value).action == RESOLVE
    # other binance clients keep ccxt's own table
    with pytest.raises(InvalidOrder) as plain:
        ccxt.binance().handle_errors(
            400, "Bad Request", "https://api.binance.com/api/v3/order", "POST", {},
            '{"code":-2010,"msg":"Duplicate order sent."}',
            {"code": -2010, "msg": "Duplicate order sent."}, {}, "")
    assert type(plain.value) is InvalidOrder


def test_client_settings() -> None:
    client = local_client(timeout_ms=1234)
    assert client.timeout == 1234
    assert client.enableRateLimit is False, "the shared limiter keeps the pace"
    assert client.options["maxRetriesOnFailure"] == 0
    assert "secret" not in repr(DriverSettings("key", "s3cr3t-value"))
    assert "s3cr3t-value" not in repr(DriverSettings("key", "s3cr3t-value"))


def test_binance_signs_a_create_with_the_recorded_time_and_our_recv_window() -> None:
    client = local_client(recv_window_ms=2500)
    client.set_markets(offline("binance")[0].markets.values())
    seen: dict[str, Any] = {}

    def fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        seen.update(url=url, method=method, body=body or "")
        raise Captured()

    client.fetch = fetch
    params = {**client_id_params("binance", CID), **signing_params("binance", 1_700_000_000.5)}
    with pytest.raises(Captured):
        client.create_order("BTC/USD", "limit", "buy", 0.01, 50000, params)
    sent = sent_params(seen)
    assert sent["timestamp"] == "1700000000500" and sent["recvWindow"] == "2500"
    assert signing_params("paper", 1.0) == {}, "a client without the param signs itself"
