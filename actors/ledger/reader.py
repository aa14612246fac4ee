"""A read-only view of the ledger for reconciliation and `stats`' counts.

Its own SQLite connection (WAL lets readers run beside the writer), so a long
reconciliation never blocks order flow; rows are streamed, not loaded at once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from actors.exchange.messages import TradeView
from actors.ledger.placement import ORDER_KEY, ROWS_KEY, rows_placed_here
from actors.ledger.store import (
    _SELECT,
    _TERMINAL_SQL,
    FILL_COLUMNS,
    _from_row,
    meta_prefixed,
    trade_from_row,
)
from actors.orders import Order

T = TypeVar("T")
CHUNK = 500
"""Ids per IN (...) query, well below SQLite's parameter limit."""
EXCHANGE_FILTER = "+exchange = ?"
"""The exchange as a filter only. Without statistics SQLite otherwise picks the
index that starts with `exchange` and reads every order of the exchange for each
chunk of ids (a run of n trades then costs n^2 / CHUNK rows); the unary `+` leaves
it the index on the ids, so each id costs one index lookup."""


def chunks(items: Iterable[T]) -> Iterator[list[T]]:
    """`items` in lists of CHUNK (the last one shorter)."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class LedgerReader:
    """Reads the ledger without writing; one thread at a time."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

    def close(self) -> None:
        self._db.close()

    def live(self, exchange: str) -> Iterator[Order]:
        """Every non-terminal order of the exchange, streamed in creation order, but those
        placed where the exchange's entry no longer points (see placement): looked up
        where it points now, one could be proven absent or taken for another's."""
        aside = {key for key, value in self.meta_prefixed(ORDER_KEY).items() if value}
        cursor = self._db.execute(
            # the partial index of live orders: the cost follows the live orders, not
            # the whole ledger (SQLite would otherwise read every order of the exchange)
            f"{_SELECT} INDEXED BY orders_live WHERE status NOT IN ({_TERMINAL_SQL})"
            " AND exchange = ? ORDER BY row",
            (exchange,))
        for row in cursor:
            if row[1] not in aside:
                yield _from_row(row)

    def _placed_here(self, exchange: str) -> tuple[str, list[int]]:
        """A filter (SQL, parameters) of the orders placed where the exchange's entry
        points now (see placement): an order id of another venue names another order."""
        spans = rows_placed_here(self.meta(ROWS_KEY + exchange))
        if spans is None:
            return "", []
        terms = " OR ".join("row >= ?" if end is None else "(row >= ? AND row < ?)"
                            for _, end in spans)
        return f" AND ({terms or 'FALSE'})", [n for span in spans for n in span if n is not None]

    def by_client_ids(self, exchange: str, ids: Iterable[str]) -> dict[str, Order]:
        found: dict[str, Order] = {}
        for chunk in chunks(ids):
            marks = ", ".join("?" for _ in chunk)
            rows = self._db.execute(
                f"{_SELECT} WHERE client_order_id IN ({marks}) AND {EXCHANGE_FILTER}",
                (*chunk, exchange))
            found.update((order.client_order_id, order) for order in map(_from_row, rows))
        return found

    def by_order_ids(self, exchange: str,
                     ids: Iterable[str]) -> dict[tuple[str | None, str], Order]:
        """Orders by (symbol, exchange order id): binance numbers each symbol's orders on
        their own, so one id may name orders of two symbols; placed where the exchange's
        entry points now, as another venue numbers its orders on its own."""
        found: dict[tuple[str | None, str], Order] = {}
        here, bounds = self._placed_here(exchange)
        for chunk in chunks(ids):
            marks = ", ".join("?" for _ in chunk)
            rows = self._db.execute(
                f"{_SELECT} WHERE order_id IN ({marks}) AND exchange = ?{here}",
                (*chunk, exchange, *bounds))
            for order in map(_from_row, rows):
                assert order.order_id is not None
                found[(order.symbol, order.order_id)] = order
        return found

    def fills(self, exchange: str,
              client_order_ids: Iterable[str]) -> dict[str, dict[str, TradeView]]:
        """Counted fills by order, then by trade id."""
        found: dict[str, dict[str, TradeView]] = {}
        for chunk in chunks(client_order_ids):
            marks = ", ".join("?" for _ in chunk)
            rows = self._db.execute(
                f"SELECT {', '.join(FILL_COLUMNS[1:])} FROM fills "
                f"WHERE client_order_id IN ({marks}) AND exchange = ?", (*chunk, exchange))
            for trade in map(trade_from_row, rows):
                assert trade.client_order_id is not None
                found.setdefault(trade.client_order_id, {})[trade.trade_id] = trade
        return found

    def symbols(self, exchange: str, since: float) -> dict[str, float]:
        """The symbols of the exchange's orders that are live or changed since `since`
        (epoch seconds), each with the creation time of the oldest of those orders."""
        rows = self._db.execute(
            "SELECT symbol, min(created_at) FROM orders WHERE exchange = ? AND"
            f" (updated_at >= ? OR status NOT IN ({_TERMINAL_SQL})) GROUP BY symbol",
            (exchange, since))
        return {str(symbol): float(oldest) for symbol, oldest in rows}

    def counts_by_status(self) -> dict[str, int]:
        """Every order of the ledger counted by status (a scan of them all)."""
        rows = self._db.execute("SELECT status, count(*) FROM orders GROUP BY status")
        return {status: int(count) for status, count in rows}

    def count(self, exchange: str) -> int:
        row = self._db.execute("SELECT count(*) FROM orders WHERE exchange = ?", (exchange,))
        return int(row.fetchone()[0])

    def meta_prefixed(self, prefix: str) -> dict[str, str]:
        """Every meta value whose key starts with `prefix`, by the rest of the key."""
        return meta_prefixed(self._db, prefix)

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])
