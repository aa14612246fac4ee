"""ExchangeActor: one worker of one exchange account, with its own client.

Several workers serve one exchange so requests overlap; each client (a ccxt
instance is not thread-safe) is used by its worker's thread only, except that the
others read the markets of the first one loaded (see ExchangeLink). Every request
goes through the shared circuit board, request budget (its client's Meter), pace and
retry budget, and every outcome goes back to OrderActor as an ExchangeReport.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from functools import partial
from typing import Any

from actors.circuit.breakers import CircuitOpen
from actors.exchange.client import ExchangeClient, balances_of, settles, trade_of, view_of
from actors.exchange.count_reader import ReadOrderCounts, counts_reader
from actors.exchange.drivers.ccxt_driver import TRADES_FROM_ID_PARAM, lookup_params, signing_params
from actors.exchange.errors import HALT, REJECT, RESOLVE, RETRY, describe
from actors.exchange.failure import CallFailed, error_info
from actors.exchange.link import NOT_SENT, Attempts, Caller, ExchangeLink, header_retry_after
from actors.exchange.messages import (
    CancelOrder,
    ErrorInfo,
    FetchBalance,
    FetchOpenOrders,
    FetchOrder,
    FetchTrades,
    LoadMarkets,
    LookupOrder,
    OrderTicket,
    OrderView,
    PlaceOrder,
    RefreshPrices,
    TrackSymbol,
    TradePage,
    TradeView,
)
from actors.exchange.metering import Meter, attach
from actors.exchange.order_params import ParamRefused, create_params
from actors.exchange.routing import side_worker_name
from actors.order.actor import NAME as ORDER_ACTOR
from actors.order.messages import ExchangeReport, Prices, SymbolTracked
from actors.supervisor import Registry, SupervisedActor
from protocol.errors import ProtocolError

log = logging.getLogger(__name__)
SIDE_LOOKUP_WAIT_S = 20.0
"""How long a read of the side worker (tracking, reconciliation, prices, balances) may
wait for request weight: within the reconciler's 30 s asks. Order workers never wait
for it: an order queued behind a waiting lookup would wait too; theirs are asked again."""
SOURCES = {"create": "create", "cancel": "cancel", "fetch": "lookup"}
"""The confirmation trail's source of what each operation's answer showed."""


class ExchangeActor(SupervisedActor):
    """Talks to one exchange account through one client instance."""

    long_messages = True  # one request may wait out timeouts, retries and the pace

    def __init__(self, registry: Registry, name: str, link: ExchangeLink,
                 client_factory: Callable[[], ExchangeClient], seed: int = 0) -> None:
        super().__init__(registry, name)
        self.link = link
        self._client_factory = client_factory
        self._seed = seed
        self._handlers: dict[type, Callable[[Any], Any]] = {
            PlaceOrder: self._create, CancelOrder: self._cancel, FetchOrder: self._fetch,
            LoadMarkets: self._markets, RefreshPrices: self._prices,
            FetchOpenOrders: self._open_orders, FetchTrades: self._trades,
            LookupOrder: self._lookup_order, FetchBalance: self._balance,
            TrackSymbol: self._track,
        }

    def on_start(self) -> None:
        self.client = self._client_factory()
        meter = None
        if self.link.requests is not None:
            side = self.name == side_worker_name(self.link.exchange)
            meter = Meter(self.link.requests, self.link.clock.sleep,
                          SIDE_LOOKUP_WAIT_S if side else 0.0)
            if not attach(self.client, meter):
                meter = None  # a client of the embedder's that we cannot hook
        self.caller = Caller(self.link, self.registry, self._seed,
                             header_retry_after(self.client), meter)
        self._handlers[ReadOrderCounts] = counts_reader(self.client, meter, self._read)

    def on_message_failed(self, message: Any) -> None:
        """An order request that failed outside its guarded call still reports, so the
        order moves on (a create that may have gone out is resolved by lookup) and the
        router's count of this worker's requests comes down."""
        if isinstance(message, TrackSymbol):  # tracking of the symbol goes on next time
            self.registry.tell(ORDER_ACTOR, SymbolTracked(
                message.exchange, message.symbol, (),
                ErrorInfo("internal", "internal error in the exchange worker", RETRY)))
            return
        ops = {PlaceOrder: "create", CancelOrder: "cancel", FetchOrder: "fetch"}
        op = ops.get(type(message))
        if op is None:
            super().on_message_failed(message)
            return
        self.registry.tell(ORDER_ACTOR, ExchangeReport(
            message.ticket.client_order_id, op, "unknown" if op == "create" else "failed",
            error=ErrorInfo("internal", "internal error in the exchange worker", RESOLVE),
            worker=self.name))

    def _markets(self, _msg: LoadMarkets) -> dict[str, Any]:
        return dict(self._loaded_markets())

    def _loaded_markets(self) -> dict[str, Any]:
        """The exchange's markets: those a worker of the exchange loaded, else loaded now
        and left for the others."""
        self._take_shared_markets()
        markets = self.client.markets
        if not markets:
            markets = self._read(self.client.load_markets)
            self._take_shared_markets()
        return markets

    def _take_shared_markets(self) -> None:
        """Before a request (a ccxt method loads the markets first when its client has
        none): take the shared ones, or share ours when a request loaded them."""
        source = self.link.markets_loaded_by
        if source is None:
            if self.client.markets:  # loaded inside a request, e.g. while startup's failed
                self.link.markets_loaded_by = self.client
        elif not self.client.markets:
            self.client.set_markets_from_exchange(source)

    def _prices(self, msg: RefreshPrices) -> dict[str, Decimal]:
        """Last prices; a failure leaves the old ones in place (logged, never raised)."""
        fetch_all = getattr(self.client, "fetch_tickers", None)
        try:
            symbols = msg.symbols or tuple(self._loaded_markets())
            tickers = self._read(lambda: fetch_all(list(symbols)) if fetch_all is not None
                                 else {s: self.client.fetch_ticker(s) for s in symbols})
        except Exception as exc:  # noqa: BLE001 - prices are best effort; limits fail closed
            log.warning("prices of %s not refreshed: %s", msg.exchange, error_info(exc).message)
            return {}
        last = {symbol: Decimal(str(t["last"])) for symbol, t in tickers.items()
                if symbol in symbols and t.get("last")}
        self.registry.tell(ORDER_ACTOR, Prices(msg.exchange, last))
        return last

    def _create(self, msg: PlaceOrder) -> None:
        ticket = msg.ticket
        try:
            params = create_params(self.client.id, ticket.client_order_id, ticket)
        except ParamRefused as exc:
            self._refuse(ticket, exc)
            return
        if msg.signed_at is not None:  # the time the ledger recorded: resolution counts on it
            params.update(signing_params(self.client.id, msg.signed_at))
        amount = float(ticket.amount)
        price = None if ticket.price is None else float(ticket.price)

        def request() -> Any:
            return self.client.create_order(ticket.symbol, ticket.type, ticket.side, amount,
                                            price, params)

        created = self._run(ticket, "create", request, msg.not_after)
        # Most answers settle the order (binance's FULL one: status, terms, fills), so
        # the create is its only request. One that leaves the outcome open is followed
        # by a lookup the worker makes itself, right after the create's report (its
        # `more`), rather than OrderActor asking for it: a hand-off less, and the two
        # reports arrive in order.
        if created.more:
            view = created.view
            assert view is not None
            verify = FetchOrder(replace(ticket, order_id=view.order_id), view.trades)
            if self.actor_inbox.empty():
                self._fetch(verify)
            else:  # creates are waiting: they go first, the verification queues behind
                self.actor_ref.tell(verify)

    def _refuse(self, ticket: OrderTicket, refused: ParamRefused) -> None:
        """Reject an order whose params its driver does not take, without sending it
        (one recorded before the allowlist): they could rewrite what is traded."""
        log.error("create %s not sent: %s", ticket.client_order_id, refused)
        self.registry.tell(ORDER_ACTOR, ExchangeReport(
            ticket.client_order_id, "create", "rejected",
            error=ErrorInfo("invalid_order", f"not sent: {refused}", REJECT), worker=self.name))

    def _cancel(self, msg: CancelOrder) -> None:
        ticket = msg.ticket
        self._run(ticket, "cancel", lambda: self.client.cancel_order(
            ticket.order_id, ticket.symbol, self._lookup(ticket)))

    def _fetch(self, msg: FetchOrder) -> None:
        ticket = msg.ticket
        self._run(ticket, "fetch", lambda: self.client.fetch_order(
            ticket.order_id, ticket.symbol, self._lookup(ticket)), carried=msg.carried)

    def _run(self, ticket: OrderTicket, op: str, request: Callable[[], Any],
             not_after: float = float("inf"), carried: tuple[TradeView, ...] = (),
             tell: bool = True) -> ExchangeReport:
        """Make the request and report its outcome (to OrderActor unless not `tell`);
        returns the report."""
        attempts = Attempts()
        started = self.link.clock.monotonic()

        def report(outcome: str, raw: Any = None,
                   error: ErrorInfo | None = None) -> ExchangeReport:
            try:
                view = None if raw is None else self._view(raw)
            except Exception as exc:  # noqa: BLE001 - an answer we cannot read is unclear
                log.warning("%s %s: unreadable answer: %s", op, ticket.client_order_id, exc)
                view, outcome = None, "unknown" if op == "create" else "failed"
                error = ErrorInfo("bad_response", describe(exc), RESOLVE)
            more = op == "create" and view is not None and not settles(raw, view)
            trades, trades_source = self._trades_of(ticket, op, view, more, carried)
            result = ExchangeReport(
                ticket.client_order_id, op, outcome, view, error, self.name, attempts.sends,
                attempts.retries, self.link.clock.monotonic() - started, trades, more=more,
                source=SOURCES[op], trades_source=trades_source)
            if tell:
                self.registry.tell(ORDER_ACTOR, result)
            return result

        try:
            self._take_shared_markets()
            raw = self.caller.call(op, request, attempts, not_after)
        except CircuitOpen as exc:
            return report("failed", error=ErrorInfo("circuit_open", str(exc), RETRY,
                                                    exc.retry_after_s))
        except CallFailed as exc:
            return report(_outcome(op, exc), error=error_info(exc))
        except Exception as exc:  # never leave OrderActor waiting (logged with its trace)
            log.exception("%s %s failed unexpectedly", op, ticket.client_order_id)
            sent = attempts.sends > 0
            return report("unknown" if op == "create" and sent else "failed",
                          error=ErrorInfo("internal", describe(exc), RESOLVE))
        return report("ok", raw)

    def _trades_of(self, ticket: OrderTicket, op: str, view: OrderView | None, more: bool,
                   carried: tuple[TradeView, ...]) -> tuple[tuple[TradeView, ...], str]:
        """The trades an outcome reports, and their source: a settled create's own (they
        add up to its fill), a lookup's or a cancel's when it shows more filled than
        counted (a cancel's answer may be the first to show a fill, and it finishes
        the order: nothing reads it later)."""
        if view is not None and op == "create" and not more:
            return view.trades, "create"
        if view is not None and op in ("fetch", "cancel") and view.filled > ticket.counted:
            return self._order_trades(ticket, view, carried)
        return (), "trades"

    def _lookup(self, ticket: OrderTicket) -> dict[str, Any]:
        if ticket.order_id is not None:
            return {}
        return lookup_params(self.client.id, ticket.client_order_id)

    def _order_trades(self, ticket: OrderTicket, view: OrderView,
                      carried: tuple[TradeView, ...] = ()) -> tuple[tuple[TradeView, ...], str]:
        """The order's trade records and their source; none when they cannot be read now
        (next time). Trades the create's answer carried do when they account for all
        that is filled: a request less per order."""
        if carried and sum(t.amount for t in carried) >= view.filled:
            return carried, "create"
        try:
            return self._order_trade_pages(ticket, view), "trades"
        except Exception as exc:  # noqa: BLE001 - the fills are counted on a later fetch
            log.info("trades of %s not read: %s", ticket.client_order_id, exc)
            return (), "trades"

    def _order_trade_pages(self, ticket: OrderTicket, view: OrderView) -> tuple[TradeView, ...]:
        """The order's trades, page after page while they fall short of what it shows
        filled: an exchange lists at most a page of them (binance 500 unless asked), and
        reading only the first, an order with more fills than that would never be counted
        in full. Pages follow by trade id where the exchange pages so, from the first
        (binance lists the most recent page when not told where to start); a page
        bringing nothing new ends the reading (every page costs the budget)."""
        param = TRADES_FROM_ID_PARAM.get(self.client.id)
        found: dict[str, TradeView] = {}
        params: dict[str, Any] = {} if param is None else {param: 0}
        while True:
            raw = self._read(partial(self.client.fetch_order_trades, view.order_id,
                                     ticket.symbol, None, None, params))
            new = [t for t in map(trade_of, raw)
                   if t.order_id == view.order_id and t.trade_id not in found]
            found.update((t.trade_id, t) for t in new)
            next_id = _after(new)
            if (param is None or next_id is None
                    or sum(t.amount for t in found.values()) >= view.filled):
                return tuple(found.values())
            params = {param: next_id}

    # --- tracking: one symbol's open orders for all its orders --------------------------

    def _track(self, msg: TrackSymbol) -> None:
        """Read the symbol's open orders once for every order tracked in it. An order in
        the list is reported as the list shows it (its trades read when more filled); one
        no longer in it is looked up once, for its final state and its fills."""
        try:
            raw = self._read(lambda: self.client.fetch_open_orders(msg.symbol))
            listed = [self._view(item) for item in raw]
        except Exception as exc:  # noqa: BLE001 - the symbol is tracked again next time
            error = error_info(exc)
            log.info("open orders of %s on %s not read: %s", msg.symbol, msg.exchange,
                     error.message)
            self.registry.tell(ORDER_ACTOR, SymbolTracked(msg.exchange, msg.symbol, (), error))
            return
        by_id = {view.order_id: view for view in listed}
        by_cid = {view.client_order_id: view for view in listed if view.client_order_id}
        # by the exchange's id once known: another program may list an order under the
        # client id of one of ours that is finished (binance holds a client id unique
        # among open orders only)
        reports = [self._tracked(ticket, by_id.get(ticket.order_id) if ticket.order_id
                                 else by_cid.get(ticket.client_order_id))
                   for ticket in msg.tickets]
        self.registry.tell(ORDER_ACTOR, SymbolTracked(msg.exchange, msg.symbol,
                                                      tuple(reports)))

    def _tracked(self, ticket: OrderTicket, view: OrderView | None) -> ExchangeReport:
        if view is None:  # left the list: filled, canceled or expired
            return self._run(ticket, "fetch", lambda: self.client.fetch_order(
                ticket.order_id, ticket.symbol, self._lookup(ticket)), tell=False)
        trades, source = (self._order_trades(ticket, view) if view.filled > ticket.counted
                          else ((), "trades"))
        return ExchangeReport(ticket.client_order_id, "fetch", "ok", view, worker=self.name,
                              trades=trades, source="open_orders", trades_source=source)

    def _view(self, raw: dict[str, Any]) -> OrderView:
        return view_of(raw, self._market_of(raw.get("symbol")))

    def _market_of(self, symbol: Any) -> dict[str, Any] | None:
        """The market's structure, for its precision; None when markets cannot be read now."""
        try:
            markets = self._loaded_markets()
        except Exception as exc:  # noqa: BLE001 - terms are then compared exactly
            log.info("markets not read: %s", exc)
            return None
        market: dict[str, Any] | None = markets.get(symbol)
        return market

    def _read(self, request: Callable[[], Any]) -> Any:
        """A read through the breaker, the shared rate limit and the retries; a failure
        raises CallFailed, classified (or CircuitOpen), for the asker to act on."""
        self._take_shared_markets()
        return self.caller.call("read", request, Attempts())

    # --- asks from the reconciler: data back, or why not ------------------------------

    def _open_orders(self, _msg: FetchOpenOrders) -> list[OrderView]:
        return [self._view(raw) for raw in self._read(self.client.fetch_open_orders)]

    def _trades(self, msg: FetchTrades) -> TradePage:
        """One page of a symbol's trades: from a trade id where the exchange pages by id,
        else (and for the first page of a symbol) from a time."""
        param, from_id = TRADES_FROM_ID_PARAM.get(self.client.id), msg.from_id
        if param is not None and from_id is not None:
            raw = self._read(lambda: self.client.fetch_my_trades(
                msg.symbol, None, msg.limit, {param: from_id}))
        else:
            raw = self._read(lambda: self.client.fetch_my_trades(msg.symbol, msg.since,
                                                                 msg.limit))
        return TradePage(tuple(trade_of(item) for item in raw), by_id=param is not None)

    def _lookup_order(self, msg: LookupOrder) -> OrderView:
        ticket = msg.ticket
        return self._view(self._read(lambda: self.client.fetch_order(
            ticket.order_id, ticket.symbol, self._lookup(ticket))))

    def _balance(self, msg: FetchBalance) -> None:
        try:
            raw = self._read(self.client.fetch_balance)
        except CircuitOpen as exc:
            msg.reply(ProtocolError("circuit_open", str(exc), retry_after_s=exc.retry_after_s))
            return
        except Exception as exc:  # noqa: BLE001 - the asker is told, the worker goes on
            if isinstance(exc, CallFailed) and exc.rule is NOT_SENT:  # kept back, not sent
                msg.reply(ProtocolError("rate_limited", f"balances not read: {exc.error}",
                                        retry_after_s=round(exc.retry_after_s or 0.0, 3)))
            else:
                msg.reply(ProtocolError("exchange_unavailable", "balances not read: "
                                        f"{error_info(exc).message}", retry_after_s=1.0))
            return
        msg.reply({"balances": balances_of(raw)})


def _after(trades: list[TradeView]) -> int | None:
    """The trade id the next page starts at (the highest seen, plus one); None without
    trades, or with an id that is no number to page by."""
    try:
        return max(int(t.trade_id) for t in trades) + 1 if trades else None
    except ValueError:
        return None


def _outcome(op: str, failure: CallFailed) -> str:
    """rejected (permanent), unknown (a create that may have landed) or failed (not done)."""
    action = failure.rule.action
    if action in (REJECT, HALT):
        return "rejected"
    if op == "create" and action != RETRY:
        return "unknown"
    return "failed"
