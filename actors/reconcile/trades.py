"""Reading an exchange's trades for reconciliation: one symbol at a time, from a cursor
per symbol kept in the ledger, never one order at a time.

binance lists an account's trades for one symbol only (`myTrades`, weight 20 a page),
so a run reads the symbols of the exchange's orders that are live or changed since
the last complete run (or the day before it: a fill noticed late). Each symbol is read
from its own cursor: by trade id where the exchange pages by id (binance's `fromId`),
else by time. A symbol read for the first time starts at its oldest such order, and
not before the run's cursor (where the trades of every symbol were read up to).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from actors.exchange.messages import TradePage, TradeView
from actors.ledger.placement import ENTRY_KEY
from actors.ledger.reader import LedgerReader

SYMBOL_KEY = "reconcile_trades.{exchange}.{symbol}"
"""Meta key of one symbol's cursor: JSON {"since": ms, "from_id": id or null, "at":
what the entry talked to (see actors.ledger.placement) or null}."""
RUN_KEY = "reconcile_trades_since.{exchange}"
"""Meta key of the time (ms) up to which the trades of every symbol with orders were
read (a run with no failed read moves it to its horizon)."""
LOOKBACK_S = 86400.0
"""Orders changed this long before the run's cursor still bring their symbol in."""
SKEW_MS = 60_000
"""A symbol's first read starts this long before its oldest order: clocks differ."""

Query = Callable[..., Any]
"""ExchangeCheck._query: (name, call, **where) -> the answer, or None (error recorded)."""


@dataclass(frozen=True)
class Cursor:
    """Where a symbol's next read starts."""

    since: int
    """Exchange time (ms) from which its trades are still to be read."""
    from_id: str | None = None
    """The next trade id to read, where the exchange pages by id."""
    at: str | None = None
    """Where it was read (the entry's place then): an entry pointed elsewhere reads its
    new address afresh, whose trade ids are numbered on their own."""

    @classmethod
    def parse(cls, text: str | None) -> Cursor | None:
        try:
            data = json.loads(text or "")
            from_id = data.get("from_id")
            at = data.get("at")
            return cls(int(data["since"]), None if from_id is None else str(from_id),
                       None if at is None else str(at))
        except (ValueError, TypeError, KeyError, AttributeError):
            return None  # none yet, or unreadable: the symbol starts afresh

    def text(self) -> str:
        return json.dumps({"since": self.since, "from_id": self.from_id, "at": self.at})


TradesQuery = Callable[[str, int | None, str | None, int], TradePage]
"""(symbol, since, from_id, limit) -> one page of the symbol's trades."""


class TradeReader:
    """One run's reading of one exchange's trades, symbol by symbol."""

    def __init__(self, exchange: str, reader: LedgerReader, page: int, horizon_ms: int,
                 query: Query, trades: TradesQuery, errors: list[dict[str, Any]]) -> None:
        self.exchange, self.reader, self.page = exchange, reader, page
        self.horizon_ms = horizon_ms
        self.query, self.trades, self.errors = query, trades, errors
        self.cursors: list[tuple[str, str]] = []
        """(meta key, value) of each cursor that moved."""

    def read(self) -> list[TradeView]:
        """The trades of every symbol due, up to the horizon; a symbol whose read failed
        (an error of the run) adds none and keeps its cursor."""
        run_key = RUN_KEY.format(exchange=self.exchange)
        run_since = int(self.reader.meta(run_key) or 0)
        place = self.reader.meta(ENTRY_KEY + self.exchange)  # where the entry points
        symbols = self.reader.symbols(self.exchange,
                                      run_since / 1000 - LOOKBACK_S if run_since else 0.0)
        found: list[TradeView] = []
        complete = True
        for symbol, oldest in sorted(symbols.items()):
            trades = self._read_symbol(symbol, max(run_since, int(oldest * 1000) - SKEW_MS),
                                       place)
            complete = complete and trades is not None
            found.extend(trades or ())
        if complete and self.horizon_ms > run_since:
            self.cursors.append((run_key, str(self.horizon_ms)))
        return found

    def _read_symbol(self, symbol: str, start: int, place: str | None) -> list[TradeView] | None:
        key = SYMBOL_KEY.format(exchange=self.exchange, symbol=symbol)
        cursor = initial = Cursor.parse(self.reader.meta(key)) or Cursor(start, at=place)
        if cursor.at != place:  # read elsewhere: its ids say nothing of these trades
            cursor = Cursor(start, at=place)
        seen: dict[str, TradeView] = {}
        while True:
            page = self.query("trades", self._page(symbol, cursor), symbol=symbol)
            if page is None:
                return None
            listed = page.trades
            fresh = [t for t in listed
                     if t.trade_id not in seen and t.timestamp <= self.horizon_ms]
            seen.update((t.trade_id, t) for t in fresh)
            before, cursor = cursor, _moved(cursor, fresh, page.by_id)
            if len(listed) < self.page or any(t.timestamp > self.horizon_ms for t in listed):
                break  # the last page, or the horizon reached
            if cursor == before:  # by time: a whole page of one millisecond
                self.errors.append({
                    "query": "trades", "symbol": symbol, "code": "paging",
                    "error": f"more than {self.page} trades of {symbol} at {cursor.since} "
                             "ms; the rest were not read"})
                return None
        if cursor != initial:
            self.cursors.append((key, cursor.text()))
        return list(seen.values())

    def _page(self, symbol: str, cursor: Cursor) -> Callable[[], TradePage]:
        return lambda: self.trades(symbol, cursor.since, cursor.from_id, self.page)


def _moved(cursor: Cursor, fresh: list[TradeView], by_id: bool) -> Cursor:
    """The cursor past `fresh` (trades up to the horizon): the next trade id where the
    exchange pages by id and the ids are numbers, and the newest time (read again next
    time, inclusive, where paging is by time)."""
    if not fresh:
        return cursor
    newest = max(t.timestamp for t in fresh)
    ids = [int(t.trade_id) for t in fresh if t.trade_id.isdigit()]
    if by_id and len(ids) == len(fresh):
        return Cursor(max(cursor.since, newest), str(max(ids) + 1), cursor.at)
    return Cursor(max(cursor.since, newest), at=cursor.at)
