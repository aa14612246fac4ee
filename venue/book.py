"""The paper venue: a simulated spot exchange shared by paper clients."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from ccxt.base.errors import OrderNotFound

import venue.rules as rules
from venue.engine import OrderEngine
from venue.model import (
    MARKETS,
    Order,
    VenueEvent,
    account_from_record,
    account_record,
    balance_to_ccxt,
    iso8601,
    trade_to_ccxt,
)
from venue.prices import PriceWalk
from venue.store import IN_MEMORY, PaperStore, PendingWrites, StoredBook

log = logging.getLogger(__name__)
Listener = Callable[[VenueEvent], None]


class PaperVenue(OrderEngine):
    """A simulated spot exchange: markets, accounts, orders, trades, moving prices.

    Thread-safe: one lock guards every operation. Each operation first
    advances the simulated prices to the clock and fills the resting limit
    orders they crossed, then does its own work, then commits every row it
    changed before returning, so a crash after a call returned never loses
    its effect. Without a state path the database is in memory.

    Methods take the account explicitly; they are the back end of
    PaperExchange, the ccxt-style client. `all_orders`, `set_price`, `trade`,
    `cancel_on_venue` and `price` are for operators and tests.

    With a state path, `seed` only seeds a fresh database: a stored walk
    goes on with its own seed. Run one live venue per path; a second one
    would keep its own in-memory book and the two would diverge.

    Listeners (`add_listener`) get every change to an order as a VenueEvent,
    in order, once it is committed: an event never tells of what a crash
    could still lose. A listener may decline the changes a request's own
    answer shows (`VenueEvent.answered`).
    """

    def __init__(
        self,
        state_path: Path | None,
        *,
        seed: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = PaperStore(IN_MEMORY if state_path is None else state_path)
        super().__init__(PriceWalk(seed, clock()), self._store)
        self._lock = threading.Lock()
        self._clock = clock
        self._listeners: tuple[tuple[Listener, bool], ...] = ()  # and: wants answered
        # events waiting for their commit, each with the store's queue number it needs
        self._outbox: deque[tuple[int, VenueEvent]] = deque()
        self._publish_lock = threading.Lock()
        self._restore(self._store.load())

    def close(self) -> None:
        """Close the database; the venue is not to be used afterwards."""
        with self._lock:
            self._store.close()

    # -- listeners -----------------------------------------------------------------

    def add_listener(self, listener: Listener, *, answered: bool = True) -> None:
        """Call `listener` with every order event from now on, in order, from the thread
        of the operation that made it; it must not block nor raise. `answered`: also with
        the events the answer of the request making them shows (`VenueEvent.answered`);
        while no listener wants those, they are not even noted."""
        with self._lock:
            self._listeners = (*self._listeners, (listener, answered))
            self._listeners_changed()

    def remove_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners = tuple(item for item in self._listeners if item[0] != listener)
            self._listeners_changed()

    def _listeners_changed(self) -> None:
        self._watched = bool(self._listeners)
        self._watched_answered = any(answered for _, answered in self._listeners)

    @property
    def listening(self) -> int:
        """How many listeners there are."""
        return len(self._listeners)

    def _publish(self, committed: int) -> None:
        """Hand out, in order, the events whose writes are committed up to `committed`."""
        with self._publish_lock:
            outbox = self._outbox
            while outbox and outbox[0][0] <= committed:
                event = outbox.popleft()[1]
                for listener, answered in self._listeners:
                    if event.answered and not answered:
                        continue
                    try:
                        listener(event)
                    except Exception:  # a listener's bug must not fail the operation
                        log.exception("paper venue: an event listener failed")

    # -- account-scoped operations (the client's back end) --------------------

    def markets(self) -> dict[str, dict[str, Any]]:
        return {symbol: spec.to_ccxt() for symbol, spec in MARKETS.items()}

    def create_order(
        self,
        account: str,
        symbol: str,
        type: str,
        side: str,
        amount: Decimal,
        price: Decimal | None = None,
        *,
        client_order_id: str | None = None,
        time_in_force: str = "GTC",
        post_only: bool = False,
    ) -> dict[str, Any]:
        with self._operation() as now_ms:
            order = self._submit(
                account, symbol, type, side, amount, price, client_order_id, time_in_force, now_ms,
                post_only,
            )
            # the answer carries the fills the order got at once, as binance's FULL one does
            return {**order.to_ccxt(), "trades": [
                t.to_ccxt() for t in self._new_trades if t.order_id == order.id]}

    def fetch_order(
        self,
        account: str,
        order_id: str | None,
        *,
        client_order_id: str | None = None,
        symbol: str | None = None,
    ) -> dict[str, Any]:
        with self._operation():
            return self._find(account, order_id, client_order_id, symbol).to_ccxt()

    def cancel_order(
        self,
        account: str,
        order_id: str | None,
        *,
        client_order_id: str | None = None,
        symbol: str | None = None,
    ) -> dict[str, Any]:
        with self._operation():
            order = self._answering = self._find(account, order_id, client_order_id, symbol)
            self._cancel(order)
            return order.to_ccxt()

    def open_orders(
        self,
        account: str,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        with self._operation():
            orders = self._in_symbol(self._book.open_orders(account), symbol)
            return [o.to_ccxt() for o in rules.window(orders, since, limit)]

    def orders(
        self,
        account: str,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        with self._operation():
            self._check_symbol(symbol)
            orders = self._book.account_orders(account, symbol, since, limit)
            return [o.to_ccxt() for o in orders]

    def my_trades(
        self,
        account: str,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        from_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """The account's trades from `since` (ms), or from the trade id `from_id` on."""
        with self._operation():
            self._check_symbol(symbol)
            records = self._book.account_trade_records(account, symbol, since, limit, from_id)
            return [trade_to_ccxt(rec) for rec in records]

    def order_trades(self, account: str, order_id: int) -> list[dict[str, Any]]:
        """The fills of one order (found by its own index, not by scanning all trades)."""
        with self._operation():
            return [trade_to_ccxt(rec) for rec in self._book.order_trade_records(order_id)
                    if rec["account"] == account]

    def balance(self, account: str) -> dict[str, Any]:
        with self._operation() as now_ms:
            return balance_to_ccxt(self._account(account), now_ms)

    def ticker(self, symbol: str) -> dict[str, Any]:
        with self._operation() as now_ms:
            self._market(symbol)
            price = self._walk.prices[symbol]
            last = float(price)
            return {
                "symbol": symbol,
                "timestamp": now_ms,
                "datetime": iso8601(now_ms),
                "last": last,
                "close": last,
                "bid": last,
                "ask": last,
                "info": {"price": str(price)},
            }

    def advance(self) -> None:
        """Move prices up to the clock and fill the resting orders they cross, as every
        operation does first: for a client that learns of fills without asking (the
        in-process user-data stream), so the market moves all the same. Only while an
        order rests: nothing else depends on prices, and the next operation catches the
        walk up anyway."""
        with self._lock:
            resting = any(self._book.open_in(symbol) for symbol in MARKETS)
        if resting:
            with self._operation():
                pass

    # -- operator / test hooks ---------------------------------------------------

    def price(self, symbol: str) -> Decimal:
        """The current simulated price of a market."""
        with self._operation():
            self._market(symbol)
            return self._walk.prices[symbol]

    def all_orders(self) -> list[dict[str, Any]]:
        """Every order on the venue, all accounts, in creation order."""
        with self._operation():
            return [order.to_ccxt() for order in self._book.all_orders()]

    def resident_orders(self) -> int:
        """Orders held in memory: the open ones plus a bounded cache of finished ones."""
        with self._lock:
            return len(self._book.orders)

    def set_price(self, symbol: str, price: Decimal) -> None:
        """Force a market's price (the walk goes on from it); crossed orders fill now."""
        with self._operation() as now_ms:
            spec = self._market(symbol)
            price = Decimal(str(price))
            if not price.is_finite() or price <= 0 or not rules.multiple_of(price, spec.price_step):
                raise ValueError(f"bad price {price} for {symbol}")
            self._walk.prices[symbol] = price
            self._dirty_market = True
            self._match([symbol], now_ms)

    def trade(self, symbol: str, price: Decimal, amount: Decimal) -> list[dict[str, Any]]:
        """A taker's trade of at most `amount` at `price`, as an operator makes it: the
        resting orders it crosses fill at their limit as maker, best price first, then
        oldest first, the last one partly where the amount runs out (it stays open).
        Prices do not move: a trade leaves the walk alone, so what it left resting stays
        so. Returns the trades made, oldest first (none when nothing crosses)."""
        with self._operation() as now_ms:
            spec = self._market(symbol)
            price, amount = Decimal(str(price)), Decimal(str(amount))
            if not price.is_finite() or price <= 0 or not rules.multiple_of(price, spec.price_step):
                raise ValueError(f"bad price {price} for {symbol}")
            if (not amount.is_finite() or amount <= 0
                    or not rules.multiple_of(amount, spec.amount_step)):
                raise ValueError(f"bad amount {amount} for {symbol}")
            return [t.to_ccxt() for t in self._cross(symbol, price, now_ms, amount)]

    def cancel_on_venue(self, order_id: str) -> dict[str, Any]:
        """Cancel an open order exchange-side, as an operator would, whatever its account."""
        with self._operation():
            order = self._book.get(rules.parse_id(order_id))
            if order is None:
                raise OrderNotFound(f"paper: order {order_id} not found")
            self._cancel(order)
            return order.to_ccxt()

    # -- operation frame and persistence -----------------------------------------

    @contextmanager
    def _operation(self) -> Iterator[int]:
        """Lock, catch prices up with the clock, run the body, queue what changed; then,
        with the lock free, wait until everything the body saw is on disk."""
        seen = 0
        try:
            with self._lock:
                try:
                    self._answering = None
                    now_ms = self._op_ms = int(self._clock() * 1000)
                    changed = self._walk.advance(now_ms / 1000)
                    if changed:
                        self._dirty_market = True
                        self._match(changed, now_ms)
                        # Queued now, so the body's reads of the store see these fills.
                        self._flush()
                    yield now_ms
                finally:
                    # Also when the body raised: a price step and its fills may precede it.
                    self._flush()
                    seen = self._store.queued
                    if self._events:
                        self._outbox.extend((seen, event) for event in self._events)
                        self._events.clear()
        finally:
            # an answer never shows what a crash could still lose, its own or another's
            self._store.sync(seen)
            if self._outbox:
                self._publish(seen)

    def _flush(self) -> None:
        pending = PendingWrites(
            orders={oid: self._book.orders[oid].record() for oid in self._dirty_orders},
            trades=[(t.id, t.record()) for t in self._new_trades],
            accounts={a: account_record(self._accounts[a]) for a in self._dirty_accounts},
            market=self._walk.record() if self._dirty_market else None,
        )
        self._clear_dirty()
        if pending:
            # If the commit fails, memory is ahead of disk and the callers waiting
            # for it get a non-ccxt error: an outcome-unknown failure, which it is.
            self._store.queue(pending)
        self._book.evict()  # only what is queued may leave memory: lookups write it first

    def _clear_dirty(self) -> None:
        self._dirty_orders.clear()
        self._dirty_accounts.clear()
        self._new_trades.clear()
        self._dirty_market = False

    def _restore(self, stored: StoredBook) -> None:
        if stored.market is not None:
            self._walk = PriceWalk.from_record(stored.market)
        else:
            self._dirty_market = True  # a fresh database gets its price row
        for name, rec in stored.accounts.items():
            self._accounts[name] = account_from_record(rec)
        for rec in stored.open_orders:
            self._book.add(Order.from_record(rec))
        self._next_order_id, self._next_trade_id = stored.next_order_id, stored.next_trade_id

    def _check_symbol(self, symbol: str | None) -> None:
        if symbol is not None:
            self._market(symbol)

    def _in_symbol(self, items: list[Any], symbol: str | None) -> list[Any]:
        self._check_symbol(symbol)
        return items if symbol is None else [item for item in items if item.symbol == symbol]
