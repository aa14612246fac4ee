"""Where the paper venue's orders and trades are: the lookups every operation needs."""

from __future__ import annotations

from typing import Any

from venue.model import MARKETS, Order
from venue.store import PaperStore

RECENT_FINISHED = 1024
"""Finished orders kept in memory once queued for the store (confirmations fetch them)."""


class BookIndex:
    """Open orders in memory with their indexes; everything else read from the store.

    Orders that stop being open stay in memory, newest last, until `evict`
    (called once they are queued for the store) trims them to `recent` orders, so
    memory grows with the open orders, not with the book. Trades live in the store
    only.

    Client order ids are unique among an account's OPEN orders only (as on
    binance): the open order holding an id is indexed here; the latest order
    that used it (what a lookup by client id returns) is the store's.
    """

    def __init__(self, store: PaperStore, recent: int = RECENT_FINISHED) -> None:
        self.store = store
        self.orders: dict[int, Order] = {}
        """Open and recently finished orders: the authoritative copies."""
        self._recent = recent
        # Insertion-ordered dicts used as sets.
        self._finished: dict[int, None] = {}
        self._open_by_account: dict[str, dict[int, None]] = {}
        self._open_by_symbol: dict[str, dict[int, None]] = {s: {} for s in MARKETS}
        self._open_client_ids: dict[tuple[str, str], int] = {}

    def add(self, order: Order) -> None:
        self.orders[order.id] = order
        if order.status == "open":
            self._open_client_ids[(order.account, order.client_order_id)] = order.id
            self._open_by_account.setdefault(order.account, {})[order.id] = None
            self._open_by_symbol[order.symbol][order.id] = None
        else:
            self._finished[order.id] = None

    def close(self, order: Order) -> None:
        """Drop an order that stopped being open from the open indexes."""
        key = (order.account, order.client_order_id)
        if self._open_client_ids.get(key) == order.id:
            del self._open_client_ids[key]
        self._open_by_account.get(order.account, {}).pop(order.id, None)
        self._open_by_symbol[order.symbol].pop(order.id, None)
        self._finished[order.id] = None

    def evict(self) -> None:
        """Forget the oldest finished orders beyond the cache: only once they are queued for
        the store, whose lookups commit the queue first."""
        finished = self._finished
        while len(finished) > self._recent:
            oid = next(iter(finished))
            del finished[oid]
            del self.orders[oid]

    def get(self, order_id: int) -> Order | None:
        order = self.orders.get(order_id)
        if order is None:
            record = self.store.order(order_id)
            order = None if record is None else Order.from_record(record)
        return order

    def open_holder(self, account: str, client_order_id: str) -> int | None:
        return self._open_client_ids.get((account, client_order_id))

    def latest_with(self, account: str, client_order_id: str) -> int | None:
        return self.store.latest_order_id(account, client_order_id)

    def open_orders(self, account: str) -> list[Order]:
        return [self.orders[oid] for oid in self._open_by_account.get(account, {})]

    def open_in(self, symbol: str) -> list[Order]:
        return [self.orders[oid] for oid in self._open_by_symbol[symbol]]

    def account_orders(self, account: str, symbol: str | None, since: int | None,
                       limit: int | None) -> list[Order]:
        return self._orders(self.store.window("orders", account, symbol, since, limit))

    def all_orders(self) -> list[Order]:
        return self._orders(self.store.all_orders())

    def account_trade_records(self, account: str, symbol: str | None, since: int | None,
                              limit: int | None, from_id: int | None = None
                              ) -> list[dict[str, Any]]:
        if from_id is not None:
            return self.store.trades_from(account, symbol, from_id, limit)
        return self.store.window("trades", account, symbol, since, limit)

    def order_trade_records(self, order_id: int) -> list[dict[str, Any]]:
        return self.store.order_trades(order_id)

    def _orders(self, records: list[dict[str, Any]]) -> list[Order]:
        # The in-memory copy where there is one: it is the one operations change.
        return [self.orders.get(int(rec["id"])) or Order.from_record(rec)
                for rec in records]
