"""The window of recently finished orders keeps memory flat."""

from __future__ import annotations

from decimal import Decimal

from actors.exchange.messages import TradeView
from actors.order.recent import RecentOrders
from actors.orders import Order
from protocol.messages import OrderStatus, OrderType, Side


def order(cid: str) -> Order:
    return Order(client_order_id=cid, exchange="paper", symbol="SOL/USD", side=Side.BUY,
                 type=OrderType.MARKET, amount=Decimal("0.1"), price=None, time_in_force=None,
                 params={}, status=OrderStatus.FILLED)


def test_the_oldest_order_leaves_with_its_fills() -> None:
    fills: dict[str, dict[str, TradeView]] = {"a": {}, "b": {}, "live": {}}
    recent = RecentOrders(fills, size=2)
    for cid in ("a", "b", "c"):
        recent.add(order(cid))
    assert recent.get("a") is None and recent.get("c") is not None
    assert len(recent) == 2
    assert set(fills) == {"b", "live"}


def test_an_order_added_again_is_kept_longest() -> None:
    recent = RecentOrders({}, size=2)
    first = order("a")
    recent.add(first)
    recent.add(order("b"))
    recent.add(first)
    recent.add(order("c"))
    assert recent.get("a") is first and recent.get("b") is None
