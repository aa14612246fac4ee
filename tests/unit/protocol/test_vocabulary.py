"""The wire's words (statuses, sides, order types, times in force, wait levels) are
checked once as they come in, and go out as the same plain strings."""

from __future__ import annotations

import json
from typing import Any

import pytest

from protocol.codec import dumps
from protocol.errors import ProtocolError
from protocol.messages import OrderStatus, OrderType, Side, TimeInForce, Wait
from protocol.validation import parse_list, parse_submit

ORDER = {"symbol": "BTC/USD", "side": "sell", "type": "limit", "amount": "1", "price": "10",
         "time_in_force": "IOC"}


def test_a_submit_is_decoded_into_the_words_themselves() -> None:
    args = parse_submit({"order": ORDER, "wait": "durable"})
    spec = args.order
    assert (spec.side, spec.type, spec.time_in_force, args.wait) == (
        Side.SELL, OrderType.LIMIT, TimeInForce.IOC, Wait.DURABLE)
    assert parse_submit({"order": ORDER}).wait is Wait.ACCEPTED
    assert parse_list({"status": ["open", "filled"]}).statuses == (
        OrderStatus.OPEN, OrderStatus.FILLED)
    assert parse_list({"status": "unknown"}).statuses == (OrderStatus.UNKNOWN,)


def test_an_optional_field_sent_as_null_is_taken_as_absent() -> None:
    """As serializers that write every optional field send an unset one."""
    args = parse_submit({"order": {**ORDER, "params": None, "price": "10",
                                   "client_order_id": None, "exchange": None},
                         "wait": None})
    assert (args.wait, args.order.params, args.order.client_order_id) == (
        Wait.ACCEPTED, {}, None)
    listed = parse_list({"status": None, "limit": None, "after": None, "symbol": None})
    assert (listed.statuses, listed.limit, listed.after) == (None, 100, None)


@pytest.mark.parametrize("side", ["BUY", "Buy", " buy", "", None, 1, ["buy"], {"buy": 1}])
def test_a_word_outside_the_vocabulary_is_refused_whatever_its_type(side: Any) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_submit({"order": {**ORDER, "side": side}})
    assert caught.value.code == "invalid_order"
    assert caught.value.message == "side must be one of buy, sell"


@pytest.mark.parametrize("status", [["open", "opened"], [["open"]], {"open": 1}, 7])
def test_a_status_filter_outside_the_vocabulary_is_refused(status: Any) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_list({"status": status})
    assert caught.value.code == "bad_request"
    assert caught.value.message.startswith("status must be a list of: pending_submit, unknown")


@pytest.mark.parametrize("big", [0, 2**70])  # orjson, and the json module's fallback
def test_the_words_are_written_as_the_same_plain_strings(big: int) -> None:
    words = {"status": OrderStatus.PARTIALLY_FILLED, "side": Side.BUY,
             "type": OrderType.MARKET, "time_in_force": TimeInForce.GTC, "wait": Wait.DURABLE,
             "statuses": [OrderStatus.OPEN], OrderStatus.FILLED: 1, "n": big}
    plain = {"status": "partially_filled", "side": "buy", "type": "market",
             "time_in_force": "GTC", "wait": "durable", "statuses": ["open"], "filled": 1,
             "n": big}
    assert dumps(words) == dumps(plain)
    assert json.loads(dumps(words)) == plain
