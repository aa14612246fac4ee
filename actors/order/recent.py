"""Orders that finished lately, kept in memory with the fills counted for them.

The verification fetch of an order that filled at once (a market order) comes
back just after the order left the live set; reading the order and its fills
back from the ledger cost OrderActor two SQLite round trips per order, each a
wait for the GIL. A bounded window keeps memory flat however large the ledger.
"""

from __future__ import annotations

from collections import OrderedDict

from actors.exchange.messages import TradeView
from actors.orders import Order

RECENT_ORDERS = 4096


class RecentOrders:
    """The last finished orders (used by OrderActor's thread only).

    `fills` is OrderActor's table of the counted trades of finished orders by client
    order id; an order's entry goes when the order leaves this window."""

    def __init__(self, fills: dict[str, dict[str, TradeView]],
                 size: int = RECENT_ORDERS) -> None:
        self._orders: OrderedDict[str, Order] = OrderedDict()
        self._fills = fills
        self._size = size

    def add(self, order: Order) -> None:
        cid = order.client_order_id
        self._orders[cid] = order
        self._orders.move_to_end(cid)
        while len(self._orders) > self._size:
            old, _ = self._orders.popitem(last=False)
            self._fills.pop(old, None)

    def get(self, client_order_id: str) -> Order | None:
        return self._orders.get(client_order_id)

    def __len__(self) -> int:
        return len(self._orders)
