"""ExchangeActor: one exchange client, used by this actor's thread only.

It sends what OrderActor asks, classifies every error through the error table,
and reports the outcome back to OrderActor as an ExchangeReport.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from actors.exchanges.client import ExchangeClient, trade_of, view_of
from actors.exchanges.errors import REJECT, RESOLVE, classify, describe
from actors.messages import (
    CancelOrder,
    ErrorInfo,
    ExchangeReport,
    FetchOrder,
    OrderTicket,
    OrderView,
    PlaceOrder,
    TradeView,
)
from actors.order_actor import NAME as ORDER_ACTOR
from actors.reconcile_messages import FetchOpenOrders, FetchTrades, LookupOrder
from actors.supervisor import Registry, SupervisedActor

log = logging.getLogger(__name__)

TRADES_LOOKBACK_MS = 300_000
"""Trades of an order are looked for from this long before it was recorded (clock skew)."""


class LoadMarkets:
    """Ask: the exchange's markets (symbol -> ccxt market structure)."""


class ExchangeActor(SupervisedActor):
    """Talks to one exchange account through one client instance."""

    def __init__(self, registry: Registry, name: str,
                 client_factory: Callable[[], ExchangeClient]) -> None:
        super().__init__(registry, name)
        self._client_factory = client_factory
        self._handlers: dict[type, Callable[[Any], Any]] = {
            PlaceOrder: self._create, CancelOrder: self._cancel, FetchOrder: self._fetch,
            LoadMarkets: self._markets, FetchOpenOrders: self._open_orders,
            FetchTrades: self._trades, LookupOrder: self._lookup_order,
        }

    def on_start(self) -> None:
        self.client = self._client_factory()

    def on_receive(self, message: Any) -> Any:
        return self._handlers[type(message)](message)

    def _markets(self, _msg: LoadMarkets) -> dict[str, Any]:
        return dict(self.client.load_markets())

    def _create(self, msg: PlaceOrder) -> None:
        ticket = msg.ticket
        params = dict(ticket.params)
        params["clientOrderId"] = ticket.client_order_id
        if ticket.time_in_force is not None:
            params["timeInForce"] = ticket.time_in_force
        try:
            raw = self.client.create_order(
                ticket.symbol, ticket.type, ticket.side, float(ticket.amount),
                None if ticket.price is None else float(ticket.price), params)
        except Exception as exc:  # noqa: BLE001 - every error is classified below
            self._create_failed(ticket, exc)
            return
        self._report(ExchangeReport(ticket.client_order_id, "create", "ok", self._view(raw)))

    def _create_failed(self, ticket: OrderTicket, exc: Exception) -> None:
        rule = classify(exc)
        error = ErrorInfo(rule.code, describe(exc))
        if rule.code == "duplicate_order":
            # the client id is live on the exchange: an earlier attempt landed
            self._fetch(FetchOrder(ticket), error)
            return
        outcome = {REJECT: "rejected", RESOLVE: "unknown"}.get(rule.action, "unknown")
        log.info("create %s: %s (%s)", ticket.client_order_id, error.message, outcome)
        self._report(ExchangeReport(ticket.client_order_id, "create", outcome, error=error))

    def _cancel(self, msg: CancelOrder) -> None:
        ticket = msg.ticket
        try:
            raw = self.client.cancel_order(ticket.order_id, ticket.symbol, self._lookup(ticket))
        except Exception as exc:  # noqa: BLE001 - classified
            error = ErrorInfo(classify(exc).code, describe(exc))
            self._report(ExchangeReport(ticket.client_order_id, "cancel", "failed", error=error))
            return
        self._report(ExchangeReport(ticket.client_order_id, "cancel", "ok", self._view(raw)))

    def _fetch(self, msg: FetchOrder, cause: ErrorInfo | None = None) -> None:
        ticket = msg.ticket
        try:
            raw = self.client.fetch_order(ticket.order_id, ticket.symbol, self._lookup(ticket))
        except Exception as exc:  # noqa: BLE001 - classified
            error = ErrorInfo(classify(exc).code, describe(exc))
            self._report(ExchangeReport(ticket.client_order_id, "fetch", "failed", error=error))
            return
        view = self._view(raw)
        trades = self._order_trades(ticket, view) if view.filled > ticket.counted else ()
        self._report(ExchangeReport(ticket.client_order_id, "fetch", "ok", view, cause, trades))

    def _order_trades(self, ticket: OrderTicket, view: OrderView) -> tuple[TradeView, ...]:
        """The order's trade records; none when they cannot be read now (next time)."""
        since = max(int(ticket.created_at * 1000) - TRADES_LOOKBACK_MS, 0)
        try:
            raw = self.client.fetch_my_trades(ticket.symbol, since)
        except Exception as exc:  # noqa: BLE001 - the fills are counted on a later fetch
            log.info("trades of %s not read: %s", ticket.client_order_id, describe(exc))
            return ()
        return tuple(t for t in map(trade_of, raw) if t.order_id == view.order_id)

    def _view(self, raw: dict[str, Any]) -> OrderView:
        return view_of(raw, self._market_of(raw.get("symbol")))

    def _market_of(self, symbol: Any) -> dict[str, Any] | None:
        """The market's structure, for its precision; None when markets cannot be read now."""
        markets = getattr(self.client, "markets", None)
        if not markets:
            try:
                markets = self.client.load_markets()
            except Exception as exc:  # noqa: BLE001 - terms are then compared exactly
                log.info("markets not read: %s", describe(exc))
                return None
        market: dict[str, Any] | None = markets.get(symbol)
        return market

    # --- asks from the reconciler: data back, or the exchange's exception ---------

    def _open_orders(self, _msg: FetchOpenOrders) -> list[OrderView]:
        return [self._view(raw) for raw in self.client.fetch_open_orders()]

    def _trades(self, msg: FetchTrades) -> list[TradeView]:
        return [trade_of(raw) for raw in self.client.fetch_my_trades(None, msg.since, msg.limit)]

    def _lookup_order(self, msg: LookupOrder) -> OrderView:
        ticket = msg.ticket
        return self._view(self.client.fetch_order(ticket.order_id, ticket.symbol,
                                                  self._lookup(ticket)))

    @staticmethod
    def _lookup(ticket: OrderTicket) -> dict[str, Any]:
        return {} if ticket.order_id is not None else {"clientOrderId": ticket.client_order_id}

    def _report(self, report: ExchangeReport) -> None:
        self.registry.tell(ORDER_ACTOR, report)
