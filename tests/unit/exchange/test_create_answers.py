"""Which create answers settle an order without a lookup, read as real ccxt reads them.

binance answers a create in the shape `newOrderRespType` asks for: FULL (status,
executed quantity and the fills of what matched at once), RESULT (no fills) or ACK
(the ids only). Each is parsed by ccxt's binance class from the body the paper venue's
binance dialect gave (trimmed to the shape), then judged by `settles`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from actors.exchange.client import settles, view_of
from actors.exchange.drivers.ccxt_driver import DriverSettings, build_binance
from venue.binance.server import PaperVenueServer
from venue.book import PaperVenue

KEY, SECRET = "test-key", "test-secret"
ACK_FIELDS = ("symbol", "orderId", "orderListId", "clientOrderId", "transactTime")


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    server = PaperVenueServer(PaperVenue(None), api_key=KEY, secret=SECRET).start()
    exchange = build_binance(DriverSettings(KEY, SECRET, server.url))
    exchange.load_markets()
    yield exchange
    server.stop()


def created(client: Any, kind: str, amount: float, price: float | None,
            symbol: str = "BTC/USD") -> dict[str, Any]:
    """The venue's raw (FULL) answer to a create through ccxt."""
    order = client.create_order(symbol, kind, "buy", amount, price,
                                {"newClientOrderId": f"ca-{uuid.uuid4().hex[:16]}"})
    body: dict[str, Any] = order["info"]
    return body


def judged(client: Any, body: dict[str, Any]) -> bool:
    raw = client.parse_order(body, client.market("BTC/USD"))
    return settles(raw, view_of(raw, client.market("BTC/USD")))


Shape = Callable[[dict[str, Any]], dict[str, Any]]


def full(body: dict[str, Any]) -> dict[str, Any]:
    return body


def result(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "fills"}


def ack(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k in ACK_FIELDS}


def fills_short(body: dict[str, Any]) -> dict[str, Any]:
    """A FULL answer whose fills do not add up to its executed quantity."""
    return {**body, "executedQty": "0.02", "origQty": "0.02"}


def partial_resting(body: dict[str, Any]) -> dict[str, Any]:
    """A limit order that filled in part at once and rests for the rest."""
    fill = {"price": body["price"], "qty": "0.005", "commission": "0.005",
            "commissionAsset": "USD", "tradeId": 999001}
    return {**body, "status": "PARTIALLY_FILLED", "executedQty": "0.005", "fills": [fill]}


@pytest.mark.parametrize(("kind", "shape", "settled"), [
    ("market", full, True),
    ("limit", full, True),  # resting, nothing filled: tracking follows it
    ("limit", partial_resting, True),
    ("market", result, False),  # filled, but not by which trades
    ("market", ack, False),  # no status
    ("limit", ack, False),
    ("market", fills_short, False),
])
def test_which_create_answers_settle_the_order(client: Any, kind: str, shape: Shape,
                                               settled: bool) -> None:
    price = None if kind == "market" else 1000.0
    body = created(client, kind, 0.01, price)
    assert judged(client, shape(body)) is settled
