"""The order state machine."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from actors.exchange.messages import OrderView
from actors.orders import TRANSITIONS, IllegalTransition, Order, adopt, rfc3339
from protocol.messages import STATUSES, TERMINAL_STATUSES, OrderStatus, OrderType, Side, TimeInForce


def order(status: str = "pending_submit") -> Order:
    return Order(client_order_id="c", exchange="paper", symbol="BTC/USD", side=Side.BUY,
                 type=OrderType.LIMIT, amount=Decimal("1"), price=Decimal("10"),
                 time_in_force=TimeInForce.GTC, params={}, status=OrderStatus(status))


def test_every_status_has_a_row() -> None:
    assert set(TRANSITIONS) == set(STATUSES)


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATUSES))
def test_terminal_statuses_never_move(terminal: str) -> None:
    for target in STATUSES:
        if target != terminal:
            with pytest.raises(IllegalTransition):
                order(terminal).move_to(target, 1.0)


def test_unknown_resolves_to_any_exchange_outcome() -> None:
    for target in map(OrderStatus, ("open", "filled", "rejected", "canceled", "pending_submit")):
        item = order("unknown")
        assert item.move_to(target, 2.0) and item.status == target and item.updated_at == 2.0


def test_open_cannot_go_back_to_pending_submit() -> None:
    with pytest.raises(IllegalTransition):
        order("open").move_to(OrderStatus.PENDING_SUBMIT, 1.0)


def test_same_status_is_no_change() -> None:
    assert order("open").move_to(OrderStatus.OPEN, 1.0) is False


def test_remaining_follows_filled() -> None:
    item = order()
    item.filled = Decimal("0.25")
    assert item.remaining == Decimal("0.75")
    assert item.to_wire()["remaining"] == "0.75"


@pytest.mark.parametrize("epoch", [0.0, 1.0005, 0.9999995, 59.9999996, -0.0004, -1.5,
                                   1_767_225_599.9995, 1_700_000_000.123456])
def test_timestamps_are_rfc3339_utc_with_milliseconds(epoch: float) -> None:
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    expected = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    assert rfc3339(epoch) == expected


def view(status: str, filled: str, order_id: str = "7") -> OrderView:
    return OrderView(order_id=order_id, status=OrderStatus(status), filled=Decimal(filled),
                     average_price=None, fee_currency=None, fee_cost=None)


def test_a_stale_answer_never_takes_fills_back() -> None:
    item = order("partially_filled")
    item.filled = Decimal("0.5")
    adopt(item, view("open", "0"), 2.0, keep_status=False)
    assert (item.status, item.filled) == ("partially_filled", Decimal("0.5"))


def test_open_after_partial_fills_stays_partially_filled() -> None:
    item = order("partially_filled")
    item.filled = Decimal("0.5")
    adopt(item, view("open", "0.5"), 2.0, keep_status=False)
    assert item.status == "partially_filled"


def test_a_refused_transition_changes_nothing() -> None:
    item = order("canceled")
    with pytest.raises(IllegalTransition):
        adopt(item, view("filled", "1"), 2.0, keep_status=False)
    assert (item.status, item.filled, item.order_id) == ("canceled", Decimal(0), None)
