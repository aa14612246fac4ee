"""ExchangeActor: one exchange client, used by this actor's thread only.

It sends what OrderActor asks, classifies every error through the error table,
and reports the outcome back to OrderActor as an ExchangeReport.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from actors.exchanges.client import ExchangeClient, view_of
from actors.exchanges.errors import REJECT, RESOLVE, classify, describe
from actors.messages import (
    CancelOrder,
    ErrorInfo,
    ExchangeReport,
    FetchOrder,
    OrderTicket,
    PlaceOrder,
    Prices,
    RefreshPrices,
)
from actors.order_actor import NAME as ORDER_ACTOR
from actors.supervisor import Registry, SupervisedActor

log = logging.getLogger(__name__)


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
            LoadMarkets: self._markets, RefreshPrices: self._prices,
        }

    def on_start(self) -> None:
        self.client = self._client_factory()

    def _markets(self, _msg: LoadMarkets) -> dict[str, Any]:
        return dict(self.client.load_markets())

    def _prices(self, msg: RefreshPrices) -> dict[str, Decimal]:
        """Last prices; a failure leaves the old ones in place (logged, never raised)."""
        symbols = msg.symbols or tuple(self.client.load_markets())
        try:
            fetch_all = getattr(self.client, "fetch_tickers", None)
            tickers = (fetch_all(list(symbols)) if fetch_all is not None
                       else {s: self.client.fetch_ticker(s) for s in symbols})
        except Exception as exc:  # noqa: BLE001 - prices are best effort; limits fail closed
            log.warning("prices of %s not refreshed: %s", msg.exchange, describe(exc))
            return {}
        last = {symbol: Decimal(str(t["last"])) for symbol, t in tickers.items()
                if symbol in symbols and t.get("last")}
        self.registry.tell(ORDER_ACTOR, Prices(msg.exchange, last))
        return last

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
        self._report(ExchangeReport(ticket.client_order_id, "create", "ok", view_of(raw)))

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
        self._report(ExchangeReport(ticket.client_order_id, "cancel", "ok", view_of(raw)))

    def _fetch(self, msg: FetchOrder, cause: ErrorInfo | None = None) -> None:
        ticket = msg.ticket
        try:
            raw = self.client.fetch_order(ticket.order_id, ticket.symbol, self._lookup(ticket))
        except Exception as exc:  # noqa: BLE001 - classified
            error = ErrorInfo(classify(exc).code, describe(exc))
            self._report(ExchangeReport(ticket.client_order_id, "fetch", "failed", error=error))
            return
        self._report(ExchangeReport(ticket.client_order_id, "fetch", "ok", view_of(raw), cause))

    @staticmethod
    def _lookup(ticket: OrderTicket) -> dict[str, Any]:
        return {} if ticket.order_id is not None else {"clientOrderId": ticket.client_order_id}

    def _report(self, report: ExchangeReport) -> None:
        self.registry.tell(ORDER_ACTOR, report)
