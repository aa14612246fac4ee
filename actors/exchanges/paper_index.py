"""Where the paper venue's orders and trades are: the lookups every operation needs."""

from __future__ import annotations

from .paper_model import MARKETS, Order, Trade


class BookIndex:
    """Orders and trades by id, plus the per-account / per-symbol / client-id indexes.

    Client order ids are unique among an account's OPEN orders only (as on
    binance), so two maps: the open order holding an id, and the latest order
    that used it (what a lookup by client id returns).
    """

    def __init__(self) -> None:
        self.orders: dict[int, Order] = {}
        self.trades: dict[int, Trade] = {}
        self._orders_by_account: dict[str, list[int]] = {}
        self._trades_by_account: dict[str, list[int]] = {}
        self._trades_by_order: dict[int, list[int]] = {}
        # Insertion-ordered dicts used as sets.
        self._open_by_account: dict[str, dict[int, None]] = {}
        self._open_by_symbol: dict[str, dict[int, None]] = {s: {} for s in MARKETS}
        self._open_client_ids: dict[tuple[str, str], int] = {}
        self._latest_client_ids: dict[tuple[str, str], int] = {}

    def add(self, order: Order) -> None:
        self.orders[order.id] = order
        self._orders_by_account.setdefault(order.account, []).append(order.id)
        key = (order.account, order.client_order_id)
        self._latest_client_ids[key] = order.id
        if order.status == "open":
            self._open_client_ids[key] = order.id
            self._open_by_account.setdefault(order.account, {})[order.id] = None
            self._open_by_symbol[order.symbol][order.id] = None

    def close(self, order: Order) -> None:
        """Drop an order that stopped being open from the open indexes."""
        key = (order.account, order.client_order_id)
        if self._open_client_ids.get(key) == order.id:
            del self._open_client_ids[key]
        self._open_by_account.get(order.account, {}).pop(order.id, None)
        self._open_by_symbol[order.symbol].pop(order.id, None)

    def add_trade(self, trade: Trade) -> None:
        self.trades[trade.id] = trade
        self._trades_by_account.setdefault(trade.account, []).append(trade.id)
        self._trades_by_order.setdefault(trade.order_id, []).append(trade.id)

    def open_holder(self, account: str, client_order_id: str) -> int | None:
        return self._open_client_ids.get((account, client_order_id))

    def latest_with(self, account: str, client_order_id: str) -> int | None:
        return self._latest_client_ids.get((account, client_order_id))

    def account_orders(self, account: str) -> list[Order]:
        return [self.orders[oid] for oid in self._orders_by_account.get(account, [])]

    def open_orders(self, account: str) -> list[Order]:
        return [self.orders[oid] for oid in self._open_by_account.get(account, {})]

    def open_in(self, symbol: str) -> list[Order]:
        return [self.orders[oid] for oid in self._open_by_symbol[symbol]]

    def account_trades(self, account: str) -> list[Trade]:
        return [self.trades[tid] for tid in self._trades_by_account.get(account, [])]

    def order_trades(self, order_id: int) -> list[Trade]:
        return [self.trades[tid] for tid in self._trades_by_order.get(order_id, [])]

    def next_ids(self) -> tuple[int, int]:
        """Next order and trade ids: ids are never reused, so they follow the highest."""
        return max(self.orders, default=0) + 1, max(self.trades, default=0) + 1
