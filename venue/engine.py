"""The paper venue's order engine: placing, filling, matching and canceling orders.

Single-threaded: PaperVenue adds the lock and the persistence (committed before
each answer), reading the dirty sets this engine fills in. Finished orders and
trades are read back from the store through the book index. While someone
listens (`_watched`), every change to an order is also noted as a VenueEvent,
which PaperVenue hands out once it is committed; a change the request's own answer
shows only while someone asks for those too (`_watched_answered`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal

from ccxt.base.errors import (
    ArgumentsRequired,
    BadSymbol,
    DuplicateOrderId,
    InsufficientFunds,
    InvalidOrder,
    OrderImmediatelyFillable,
    OrderNotFound,
)

import venue.rules as rules
from venue.index import BookIndex
from venue.model import (
    MAKER_FEE,
    MARKETS,
    TAKER_FEE,
    ZERO,
    Account,
    Balance,
    MarketSpec,
    Order,
    Trade,
    VenueEvent,
    new_account,
)
from venue.prices import PriceWalk
from venue.store import PaperStore


class OrderEngine:
    """Accounts, orders, trades and prices, and the rules that change them."""

    def __init__(self, walk: PriceWalk, store: PaperStore) -> None:
        self._walk = walk
        self._accounts: dict[str, Account] = {}
        self._book = BookIndex(store)
        self._next_order_id = 1
        self._next_trade_id = 1
        # What the current operation changed, for the venue to persist.
        self._dirty_orders: set[int] = set()
        self._dirty_accounts: set[str] = set()
        self._new_trades: list[Trade] = []
        self._dirty_market = False
        # The events of the current operation, noted only while someone listens.
        self._watched = False
        self._watched_answered = False
        """Someone listens to the events the request's own answer shows, too."""
        self._events: list[VenueEvent] = []
        self._event_seq = 0
        self._op_ms = 0
        """The clock of the current operation (PaperVenue sets it), the events' time."""
        self._answering: Order | None = None
        """The order the current request's answer shows, its events marked `answered`: set
        by `_submit` and by PaperVenue's `cancel_order`, cleared as each operation starts."""
        self.on_first_fill: Callable[[str], None] | None = None
        """Told the account of each order's first fill (partial or whole, taker or
        maker), as it happens: binance's unfilled order count goes down then (the
        venue's limiter). It must not block nor raise."""

    def _submit(
        self,
        account: str,
        symbol: str,
        type: str,
        side: str,
        amount: Decimal,
        price: Decimal | None,
        client_order_id: str | None,
        time_in_force: str,
        now_ms: int,
        post_only: bool = False,
    ) -> Order:
        """Validate and book a new order; every check runs before anything changes. A
        post-only order that would take is refused (binance: LIMIT_MAKER)."""
        spec = self._market(symbol)
        rules.check_order(spec, type, side, amount, price, time_in_force, post_only)
        balances = self._account(account)
        current = self._walk.prices[symbol]
        # Built first so that a refusal by the engine can be told to listeners too;
        # it becomes the booked order once every check passed.
        order = Order(-1, account, client_order_id or "", symbol, type, side, time_in_force,
                      price, amount, now_ms, status="rejected")
        self._answering = order
        if post_only and price is not None and rules.takes(side, price, current):
            self._note("rejected", order, reason="would_take")
            raise OrderImmediatelyFillable("paper: Order would immediately match and take.")
        rules.check_min_cost(spec, amount, price if price is not None else current)
        try:
            rules.check_funds(balances, spec, side, amount,
                              price if price is not None else current)
        except InsufficientFunds:
            self._note("rejected", order, reason="insufficient_balance")
            raise
        order.client_order_id = self._claim_client_id(account, client_order_id)
        order.id, order.status = self._next_order_id, "open"
        self._next_order_id += 1
        self._book.add(order)
        self._dirty_orders.add(order.id)
        self._place(order, spec, current, now_ms)
        return order

    def _market(self, symbol: str) -> MarketSpec:
        spec = MARKETS.get(symbol)
        if spec is None:
            raise BadSymbol(f"paper does not have market symbol {symbol}")
        return spec

    def _account(self, name: str) -> Account:
        account = self._accounts.get(name)
        if account is None:
            account = self._accounts[name] = new_account()
            self._dirty_accounts.add(name)
        return account

    def _claim_client_id(self, account: str, client_order_id: str | None) -> str:
        if client_order_id is None:
            # A generated id must not collide with one a caller chose either.
            base = candidate = f"paper-{self._next_order_id}"
            suffix = 0
            while self._book.open_holder(account, candidate) is not None:
                suffix += 1
                candidate = f"{base}-{suffix}"
            return candidate
        client_order_id = rules.check_client_order_id(client_order_id)
        holder = self._book.open_holder(account, client_order_id)
        if holder is not None:
            raise DuplicateOrderId(
                f"paper: duplicate clientOrderId {client_order_id!r}: open order {holder} has it"
            )
        return client_order_id

    def _place(self, order: Order, spec: MarketSpec, current: Decimal, now_ms: int) -> None:
        """Fill a marketable order now, expire an IOC/FOK one that cannot fill, else rest it."""
        limit = order.price
        if limit is None or rules.takes(order.side, limit, current):
            # A taker gets the current price, never worse than its limit.
            self._note("new", order)
            self._fill(order, current, now_ms, taker=True)
        elif order.time_in_force != "GTC":
            self._note("new", order)
            order.status = "expired"
            self._close(order)
            self._note("expired", order)
        else:
            self._reserve(order, spec, limit)
            self._note("new", order)  # after reserving: the event shows it on the book

    def _reserve(self, order: Order, spec: MarketSpec, limit: Decimal) -> None:
        # A buy holds its fee too, so the fill can never overdraw the quote balance.
        if order.side == "buy":
            order.reserved_currency = spec.quote
            order.reserved = order.amount * limit * (1 + MAKER_FEE)
        else:
            order.reserved_currency = spec.base
            order.reserved = order.amount
        held = self._accounts[order.account][order.reserved_currency]
        held.free -= order.reserved
        held.used += order.reserved
        self._dirty_accounts.add(order.account)

    def _release(self, order: Order, part: Decimal | None = None) -> None:
        """Give back what a resting order held: all of it, or `part` of it (the share of
        a partial fill)."""
        if order.reserved and order.reserved_currency is not None:
            given = order.reserved if part is None else min(part, order.reserved)
            held = self._accounts[order.account][order.reserved_currency]
            held.used -= given
            held.free += given
            order.reserved -= given
            self._dirty_accounts.add(order.account)

    def _fill(self, order: Order, price: Decimal, now_ms: int, *, taker: bool,
              amount: Decimal | None = None) -> Trade:
        """Fill `amount` of the order (all that remains unless given, never more) at
        `price`: move balances, charge the fee, record a trade. The order stays open
        until nothing remains."""
        spec = MARKETS[order.symbol]
        balances = self._accounts[order.account]
        remaining = order.amount - order.filled
        qty = remaining if amount is None else min(amount, remaining)
        if order.filled == ZERO and self.on_first_fill is not None:
            self.on_first_fill(order.account)
        closing = qty == remaining
        # what a resting order held for this part: at its limit, with the maker fee
        self._release(order, None if closing else self._held_for(order, qty))
        cost = qty * price
        fee = cost * (TAKER_FEE if taker else MAKER_FEE)
        quote, base = balances[spec.quote], balances.setdefault(spec.base, Balance(ZERO))
        if order.side == "buy":
            quote.free -= cost + fee
            base.free += qty
        else:
            base.free -= qty
            quote.free += cost - fee
        self._dirty_accounts.add(order.account)
        order.filled += qty
        order.cost += cost
        order.fee_cost = (order.fee_cost or ZERO) + fee
        order.fee_currency = spec.quote
        order.last_trade_timestamp = now_ms
        trade = Trade(
            id=self._next_trade_id,
            order_id=order.id,
            account=order.account,
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            price=price,
            amount=qty,
            cost=cost,
            fee_cost=fee,
            fee_currency=spec.quote,
            timestamp=now_ms,
            taker_or_maker="taker" if taker else "maker",
            order_type=order.type,
        )
        self._next_trade_id += 1
        self._new_trades.append(trade)
        if closing:
            order.status = "closed"
            self._close(order)
        else:
            self._dirty_orders.add(order.id)
        self._note("trade", order, trade)
        return trade

    @staticmethod
    def _held_for(order: Order, qty: Decimal) -> Decimal:
        """What `_reserve` held for `qty` of a resting order."""
        if order.side == "buy" and order.price is not None:
            return qty * order.price * (1 + MAKER_FEE)
        return qty

    def _match(self, symbols: Iterable[str], now_ms: int) -> None:
        """Fill resting limits the price has crossed, whole.

        Runs only when a price moved (at most once per clock second, or on
        set_price), so scanning the symbol's open orders is cheap enough.
        """
        for symbol in symbols:
            self._cross(symbol, self._walk.prices[symbol], now_ms)

    def _cross(self, symbol: str, price: Decimal, now_ms: int,
               quantity: Decimal | None = None) -> list[Trade]:
        """Fill the resting limits of `symbol` that `price` crosses, at their limit price
        (as maker), as a matching engine would: best price first (the limit furthest
        past `price`), then oldest first; with `quantity`, at most that much in all, the
        last order filled partly where it runs out. Returns the trades made."""
        crossed = [(order, order.price) for order in self._book.open_in(symbol)
                   if order.price is not None and rules.takes(order.side, order.price, price)]
        # ids grow with time: the lower, the older
        crossed.sort(key=lambda item: (-abs(item[1] - price), item[0].id))
        trades: list[Trade] = []
        left = quantity
        for order, limit in crossed:
            if left is not None and left <= 0:
                break
            trade = self._fill(order, limit, now_ms, taker=False, amount=left)
            trades.append(trade)
            if left is not None:
                left -= trade.amount
        return trades

    def _cancel(self, order: Order) -> None:
        if order.status != "open":
            raise InvalidOrder(
                f"paper: order {order.id} is not open (status {order.status}): Unknown order sent"
            )
        self._release(order)
        order.status = "canceled"
        self._close(order)
        self._note("canceled", order)

    def _note(self, kind: str, order: Order, trade: Trade | None = None,
              reason: str | None = None) -> None:
        """Note a change to `order` for the listeners (its state now, copied)."""
        answered = order is self._answering
        if not self._watched or (answered and not self._watched_answered):
            return
        self._event_seq += 1
        self._events.append(VenueEvent(kind, self._event_seq, self._op_ms, order.record(),
                                       None if trade is None else trade.record(), reason,
                                       answered))

    def _close(self, order: Order) -> None:
        self._book.close(order)
        self._dirty_orders.add(order.id)

    def _find(
        self,
        account: str,
        order_id: str | None,
        client_order_id: str | None,
        symbol: str | None,
    ) -> Order:
        if symbol is not None:
            self._market(symbol)
        if order_id is not None:
            oid: int | None = rules.parse_id(order_id)
            label = f"id {order_id}"
        elif client_order_id is not None:
            oid = self._book.latest_with(account, client_order_id)
            label = f"clientOrderId {client_order_id!r}"
        else:
            raise ArgumentsRequired("paper: an order id or params['clientOrderId'] is required")
        order = self._book.get(oid) if oid is not None else None
        if order is None or order.account != account or symbol not in (None, order.symbol):
            raise OrderNotFound(f"paper: order with {label} not found")
        return order
