"""The params allowlist: which exchange options an order may carry, per driver, and
what the create request then holds."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from actors.exchange.config import DRIVERS
from actors.exchange.errors import REJECT, classify
from actors.exchange.messages import OrderTicket
from actors.exchange.order_params import ALLOWED, ParamRefused, check_params, create_params
from protocol.errors import ProtocolError
from protocol.validation import parse_order_spec
from tests.unit.exchange.test_ccxt_driver import CID, Captured, offline, sent_params

# keys that would set what orderd owns (binance's request names and ccxt's unified
# ones), and keys nobody listed
HOSTILE = [
    "quantity", "amount", "quoteOrderQty", "cost", "side", "symbol", "type", "price",
    "stopPrice", "triggerPrice", "stopLossPrice", "takeProfitPrice", "timeInForce",
    "clientOrderId", "newClientOrderId", "clientAlgoId", "origClientOrderId",
    "listClientOrderId", "newClientStrategyId", "post_only", "icebergAmount",
    "newOrderRespType", "note",
]
LIMIT = {"symbol": "BTC/USD", "side": "buy", "type": "limit", "amount": "0.01",
         "price": "1000"}
MARKET = {"symbol": "BTC/USD", "side": "buy", "type": "market", "amount": "0.01"}


def refused_field(driver: str, order: dict[str, Any]) -> str | None:
    try:
        check_params(driver, parse_order_spec(order))
    except ProtocolError as error:
        assert error.code == "invalid_order" and not error.retryable
        field: str = error.details["field"]
        assert field in error.message
        return field
    return None


def ticket(order: dict[str, Any], time_in_force: str | None = "GTC") -> OrderTicket:
    return OrderTicket(CID, None, order["symbol"], order["side"], order["type"],
                       Decimal(order["amount"]), Decimal(order["price"]) if "price" in order
                       else None, time_in_force, dict(order.get("params", {})))


@pytest.mark.parametrize("driver", ["binance", "paper"])
@pytest.mark.parametrize("key", HOSTILE)
def test_a_key_outside_the_allowlist_is_invalid_order_naming_it(driver: str, key: str) -> None:
    value: Any = "5" if key != "post_only" else True
    assert refused_field(driver, {**LIMIT, "params": {key: value}}) == f"params.{key}"
    # the first refused key is named, whatever else the params hold
    both = {**LIMIT, "params": {"postOnly": True, key: value}}
    assert refused_field(driver, both) == f"params.{key}"


@pytest.mark.parametrize("params,field", [
    ({"postOnly": "true"}, "params.postOnly"),
    ({"postOnly": 1}, "params.postOnly"),
    ({"postOnly": None}, "params.postOnly"),
    ({"postOnly": True, "time_in_force": "IOC"}, "params.postOnly"),
    ({"postOnly": True, "time_in_force": "FOK"}, "params.postOnly"),
    ({"postOnly": True}, None),
    ({"postOnly": False}, None),
    ({"postOnly": True, "time_in_force": "GTC"}, None),
    ({}, None),
])
def test_post_only_must_be_a_bool_on_a_resting_limit(params: dict[str, Any],
                                                     field: str | None) -> None:
    order = {**LIMIT, **{k: v for k, v in params.items() if k == "time_in_force"},
             "params": {k: v for k, v in params.items() if k != "time_in_force"}}
    assert refused_field("binance", order) == field
    assert refused_field("paper", order) == field


def test_post_only_is_for_limit_orders() -> None:
    assert refused_field("binance", {**MARKET, "params": {"postOnly": True}}) == "params.postOnly"
    assert refused_field("binance", {**MARKET, "params": {"postOnly": False}}) is None


def test_every_driver_has_its_list() -> None:
    assert set(ALLOWED) == set(DRIVERS)


def test_a_driver_without_a_list_takes_no_params() -> None:
    assert refused_field("kraken", {**LIMIT, "params": {"postOnly": True}}) == "params.postOnly"
    assert refused_field("kraken", LIMIT) is None


@pytest.mark.parametrize("key", HOSTILE)
def test_a_recorded_order_with_a_refused_param_is_never_sent(key: str) -> None:
    """An order recorded before the allowlist: its create is refused, as a rejection."""
    with pytest.raises(ParamRefused) as refused:
        create_params("binance", CID, ticket({**LIMIT, "params": {key: "5"}}))
    assert refused.value.field == f"params.{key}"
    assert classify(refused.value).action == REJECT


def test_binance_gets_the_order_as_recorded_with_post_only_as_limit_maker() -> None:
    exchange, seen = offline("binance")
    order = ticket({**LIMIT, "params": {"postOnly": True}})
    with pytest.raises(Captured):
        exchange.create_order("BTC/USD", "limit", "buy", 0.01, 1000,
                              create_params("binance", CID, order))
    sent = sent_params(seen)
    assert {k: sent[k] for k in ("symbol", "side", "type", "quantity", "price",
                                 "newClientOrderId")} == {
        "symbol": "BTCUSD", "side": "BUY", "type": "LIMIT_MAKER", "quantity": "0.01",
        "price": "1000", "newClientOrderId": CID}
    # binance refuses a timeInForce with LIMIT_MAKER; the option itself is not sent
    assert "timeInForce" not in sent and "postOnly" not in sent


def test_without_options_the_request_carries_only_orderds_own_params() -> None:
    assert create_params("binance", CID, ticket(LIMIT)) == {
        "newClientOrderId": CID, "timeInForce": "GTC"}
    assert create_params("paper", CID, ticket(MARKET, None)) == {"clientOrderId": CID}
    off = ticket({**LIMIT, "params": {"postOnly": False}})
    assert create_params("binance", CID, off) == {
        "postOnly": False, "newClientOrderId": CID, "timeInForce": "GTC"}
