"""Comparing the ledger with one exchange: discrepancies found, repairs proposed.

Nothing here writes: repairs go to OrderActor, the only writer. A failed exchange
query is an error of the run, never read as "no orders".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from actors.exchange.failure import error_info
from actors.exchange.messages import OrderTicket, OrderView, TradePage, TradeView
from actors.ledger.reader import LedgerReader, chunks
from actors.order.confirmation import differences
from actors.order.messages import Repair
from actors.orders import TRANSITIONS, ZERO, Order, decimal_text
from actors.reconcile.trades import TradeReader
from actors.runtime import Clock
from protocol.messages import OrderStatus, OrderType, Side, member

DISCREPANCY_KINDS = ("missing_on_exchange", "unknown_on_exchange", "status_mismatch",
                     "fill_mismatch", "fee_mismatch", "amount_mismatch", "terms_mismatch",
                     "overfill")
"""Every kind a run reports (its metric's series exist from the start)."""
IN_FLIGHT = frozenset({(OrderStatus.PENDING_CANCEL, OrderStatus.OPEN),
                       (OrderStatus.PENDING_CANCEL, OrderStatus.PARTIALLY_FILLED)})
"""(ledger, exchange) statuses that only mean a request is under way."""
OrderKey = tuple[str | None, str]
"""(symbol, exchange order id): binance numbers each symbol's orders on their own, so an
order id alone may name orders of two symbols."""


class ExchangeQueries(Protocol):
    """What reconciliation asks of one exchange account."""

    def open_orders(self) -> list[OrderView]: ...

    def trades(self, symbol: str, since: int | None, from_id: str | None,
               limit: int) -> TradePage: ...

    def lookup(self, ticket: OrderTicket) -> OrderView: ...


@dataclass(frozen=True)
class ReconcileSettings:
    """Bounds of one run."""

    client_id_prefix: str = "od-"
    """Exchange orders whose client id starts with it are ours."""
    max_lookups_per_run: int = 500
    """Targeted order lookups per exchange and run; the rest wait for the next run."""
    lookup_spacing_ms: float = 50.0
    """Pause between two lookups, to stay within the exchange's rate limit."""
    min_age_s: float = 30.0
    """Orders and trades younger than this are left to tracking (they may be in flight)."""
    trades_page: int = 1000
    """Trades per request (binance's most)."""


@dataclass
class Section:
    """The outcome of one exchange's check."""

    counts: dict[str, int] = field(default_factory=dict)
    discrepancies: list[dict[str, Any]] = field(default_factory=list)
    repairs: list[Repair] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    cursors: list[tuple[str, str]] = field(default_factory=list)


def _state(status: OrderStatus, filled: Decimal, fee: Decimal | None = None) -> dict[str, Any]:
    return {"status": status.value, "filled": decimal_text(filled), "fee": decimal_text(fee)}


def _adoptable(view: OrderView) -> bool:
    """Whether an exchange's answer carries an order's terms in our words, so the ledger
    can hold it as an order (an answer without them, or with a side or type we never
    place, is only reported)."""
    return (view.symbol is not None and view.amount is not None
            and member(Side, view.side) is not None and member(OrderType, view.type) is not None)


def _by_client_id(order: Order | None, order_id: str) -> Order | None:
    """The ledger order a client id found, if it can be the exchange's order `order_id`:
    one with no exchange id yet, or with that one. binance holds a client id unique among
    open orders only, so another order (another program's, or a create of ours that
    landed twice) may carry the client id of one of ours: it is not ours but unknown."""
    if order is None or order.order_id is None or order.order_id == order_id:
        return order
    return None


def overfill_entry(order: Order, step: dict[str, Any]) -> dict[str, Any]:
    """The discrepancy of a trade not counted because it would fill past the amount (an
    `overfill` step of the order's trail), as a run would list it."""
    beyond = Decimal(step["counted"]) + Decimal(step["amount"])
    return {"kind": "overfill", "client_order_id": order.client_order_id,
            "order_id": order.order_id, "ledger": _state(order.status, order.filled,
                                                         order.fee_cost),
            "exchange": _state(order.status, beyond), "repair": False,
            "trade_ids": [step["trade_id"]]}


class ExchangeCheck:
    """One run's comparison of the ledger with one exchange."""

    def __init__(self, exchange: str, reader: LedgerReader, queries: ExchangeQueries,
                 settings: ReconcileSettings, clock: Clock) -> None:
        self.exchange = exchange
        self.reader = reader
        self.queries = queries
        self.settings = settings
        self.clock = clock
        self.horizon = clock.now() - settings.min_age_s
        self.section = Section()
        self.counts = self.section.counts
        self.lookups = 0
        self.reported: set[OrderKey] = set()

    def run(self) -> Section:
        self.counts.update(ledger_orders=self.reader.count(self.exchange), ledger_live=0,
                           exchange_open=0, trades=0, lookups=0, lookups_deferred=0)
        open_views = self._query("open_orders", self.queries.open_orders)
        if open_views is not None:
            self.counts["exchange_open"] = len(open_views)
        reading = TradeReader(self.exchange, self.reader, self.settings.trades_page,
                              int(self.horizon * 1000), self._query, self.queries.trades,
                              self.section.errors)
        trades = reading.read()
        self.counts["trades"] = len(trades)
        self.section.cursors.extend(reading.cursors)
        matched = self._check_live(open_views)
        if open_views is not None:
            self._check_unmatched([v for v in open_views
                                   if (v.symbol, v.order_id) not in matched])
        self._check_trades(trades)
        self.counts["lookups"] = self.lookups
        return self.section

    # --- queries -----------------------------------------------------------------

    def _query(self, name: str, call: Callable[[], Any], **where: str) -> Any:
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - recorded as the run's error
            error = error_info(exc)
            self.section.errors.append({"query": name, **where, "code": error.code,
                                        "error": error.message})
            return None

    def _lookup(self, ticket: OrderTicket) -> OrderView | str | None:
        """The order as the exchange shows it; "missing" when it has none; None on error."""
        if self.lookups and self.settings.lookup_spacing_ms > 0:
            self.clock.sleep(self.settings.lookup_spacing_ms / 1000)
        self.lookups += 1
        try:
            return self.queries.lookup(ticket)
        except Exception as exc:  # noqa: BLE001 - not found is an answer, the rest errors
            error = error_info(exc)
            if error.code == "order_not_found":
                return "missing"
            self.section.errors.append({
                "query": "lookup", "client_order_id": ticket.client_order_id,
                "code": error.code, "error": error.message})
            return None

    # --- ledger orders not yet terminal --------------------------------------------------

    def _check_live(self, open_views: list[OrderView] | None) -> set[OrderKey]:
        by_id = {(v.symbol, v.order_id): v for v in open_views or ()}
        by_cid = {v.client_order_id: v for v in open_views or () if v.client_order_id}
        matched: set[OrderKey] = set()
        to_look_up: list[Order] = []
        for order in self.reader.live(self.exchange):
            self.counts["ledger_live"] += 1
            # by the exchange's id once known: another program's order may carry the
            # client id of one of ours that is finished
            view = (by_id.get((order.symbol, order.order_id)) if order.order_id
                    else by_cid.get(order.client_order_id))
            if view is not None:
                matched.add((view.symbol, view.order_id))
            if order.created_at > self.horizon:
                continue
            if view is not None:
                self._compare(order, view)
            elif len(to_look_up) < self.settings.max_lookups_per_run:
                to_look_up.append(order)
            else:
                self.counts["lookups_deferred"] += 1
        for order in to_look_up:
            found = self._lookup(OrderTicket.of(order))
            if found == "missing":
                self._discrepancy("missing_on_exchange", order, None, repair=False)
            elif isinstance(found, OrderView):
                self._compare(order, found)
        return matched

    def _compare(self, order: Order, view: OrderView) -> None:
        terms = differences(order, view) if view.symbol is not None else []
        for name, ours, theirs in terms:
            kind = "amount_mismatch" if name == "amount" else "terms_mismatch"
            self._discrepancy(kind, order, view, repair=False, field=name,
                              ledger_value=str(ours), exchange_value=str(theirs))
        if view.filled > order.amount:  # the ledger never counts past the amount
            self._discrepancy("overfill", order, view, repair=False)
            return
        kinds: list[str] = []
        legal = True
        if view.status != order.status and (order.status, view.status) not in IN_FLIGHT:
            kinds.append("status_mismatch")
            legal = view.status in TRANSITIONS[order.status]
        if view.filled != order.filled:
            kinds.append("fill_mismatch")
            legal = legal and view.filled > order.filled
        repair = legal and not terms and bool(kinds)
        for kind in kinds:
            self._discrepancy(kind, order, view, repair=repair)
        if repair:
            self._propose(Repair("adopt_view", self.exchange, order.client_order_id,
                                 ", ".join(kinds), view=view))

    # --- exchange orders the ledger does not match -------------------------------------

    def _check_unmatched(self, views: list[OrderView]) -> None:
        by_cid = self.reader.by_client_ids(
            self.exchange, [v.client_order_id for v in views if v.client_order_id])
        by_id = self.reader.by_order_ids(self.exchange, [v.order_id for v in views])
        for view in views:
            cid = view.client_order_id or ""
            order = (_by_client_id(by_cid.get(cid), view.order_id)
                     or by_id.get((view.symbol, view.order_id)))
            if order is None:
                self._unknown(view, "open_orders", (), taken=cid in by_cid)
            elif order.terminal:
                self._discrepancy("status_mismatch", order, view, repair=False)

    def _ours(self, client_order_id: str | None) -> bool:
        prefix = self.settings.client_id_prefix
        return bool(prefix and client_order_id and client_order_id.startswith(prefix))

    def _unknown(self, view: OrderView, source: str, trades: tuple[TradeView, ...],
                 taken: bool = False) -> None:
        """taken: the view's client id names another order of the ledger, which the
        ledger cannot hold twice (it is reported, never adopted)."""
        ours = self._ours(view.client_order_id)
        repair = ours and not taken
        self.reported.add((view.symbol, view.order_id))
        self.section.discrepancies.append({
            "kind": "unknown_on_exchange", "client_order_id": view.client_order_id,
            "order_id": view.order_id, "ours": ours, "source": source,
            "exchange": _state(view.status, view.filled, view.fee_cost), "repair": repair})
        if repair and view.client_order_id and _adoptable(view):
            self._propose(Repair("adopt_order", self.exchange, view.client_order_id,
                                 "unknown_on_exchange", view=view, trades=trades))

    # --- trades since the cursor --------------------------------------------------------

    def _check_trades(self, trades: list[TradeView]) -> None:
        groups: dict[OrderKey, list[TradeView]] = {}
        for trade in trades:
            groups.setdefault((trade.symbol, trade.order_id), []).append(trade)
        # A chunk of orders at a time: the ledger rows of a run's orders are never all
        # in memory at once, so the memory (and the collector's work) stays bounded.
        for chunk in chunks(groups.items()):
            self._check_groups(dict(chunk))

    def _check_groups(self, groups: dict[OrderKey, list[TradeView]]) -> None:
        cids = {t.client_order_id for g in groups.values() for t in g if t.client_order_id}
        by_cid = self.reader.by_client_ids(self.exchange, cids)
        by_id = self._by_order_ids(groups, by_cid)
        fills = self.reader.fills(self.exchange, {o.client_order_id: None for o in
                                                  (*by_id.values(), *by_cid.values())})
        for key, group in groups.items():
            cid = group[0].client_order_id
            order = by_id.get(key) or _by_client_id(by_cid.get(cid or ""), key[1])
            if order is not None:
                self._compare_fills(order, tuple(group), fills.get(order.client_order_id, {}))
            elif key not in self.reported:
                self._unknown_from_trades(key[1], tuple(group), taken=(cid or "") in by_cid)

    def _by_order_ids(self, groups: dict[OrderKey, list[TradeView]],
                      by_cid: dict[str, Order]) -> dict[OrderKey, Order]:
        """Ledger orders by symbol and exchange order id. An order its client id found
        under the same key is not read again: reading rows is most of a run's cost."""
        found: dict[OrderKey, Order] = {}
        rest: list[str] = []
        for key, group in groups.items():
            order = by_cid.get(group[0].client_order_id or "")
            if order is not None and (order.symbol, order.order_id) == key:
                found[key] = order
            else:
                rest.append(key[1])
        found.update(self.reader.by_order_ids(self.exchange, rest))
        return found

    def _compare_fills(self, order: Order, trades: tuple[TradeView, ...],
                       known: dict[str, TradeView]) -> None:
        new = [t for t in trades if t.trade_id not in known]
        refee = [t for t in trades if t.trade_id in known
                 and known[t.trade_id].fee_cost != t.fee_cost]
        counted = sum((t.amount for t in known.values()), ZERO)
        found = counted + sum((t.amount for t in new), ZERO)
        window = sum((t.amount for t in trades), ZERO)
        fee = sum((t.fee_cost for t in trades), ZERO)
        if found > order.amount:
            # more traded than ordered (a trade listed twice under two ids?): no repair
            # is safe, a person has to look
            self._discrepancy("overfill", order, None, repair=False,
                              exchange_state=_state(order.status, found, fee),
                              trade_ids=[t.trade_id for t in trades])
            return
        kind = None
        if new and order.filled < found:
            kind = "fill_mismatch"
        elif refee or (window == order.filled and order.fee_cost != fee):
            kind = "fee_mismatch"
        if kind is not None:
            self._discrepancy(kind, order, None, repair=True,
                              exchange_state=_state(order.status, window, fee),
                              trade_ids=[t.trade_id for t in trades])
        if kind is not None or new:
            self._propose(Repair("adopt_trades", self.exchange, order.client_order_id,
                                 kind or "fills not yet counted", trades=trades))

    def _unknown_from_trades(self, order_id: str, trades: tuple[TradeView, ...],
                             taken: bool = False) -> None:
        """Trades of an order the ledger lacks; looked up when it may be ours (binance's
        trades do not name the client id: only the order says whose it is)."""
        cid = trades[0].client_order_id
        view: OrderView | str | None = None
        if ((cid is None or self._ours(cid))
                and self.lookups < self.settings.max_lookups_per_run):
            ticket = OrderTicket(cid or "", order_id, trades[0].symbol or "", "", "", ZERO,
                                 None, None, {})
            view = self._lookup(ticket)
        if not isinstance(view, OrderView):
            filled = sum((t.amount for t in trades), ZERO)
            fee = sum((t.fee_cost for t in trades), ZERO)
            view = OrderView(order_id, OrderStatus.UNKNOWN, filled, None, None, fee,
                             client_order_id=cid)
        self._unknown(view, "trades", trades, taken)

    # --- recording ----------------------------------------------------------------------

    def _discrepancy(self, kind: str, order: Order, view: OrderView | None, *, repair: bool,
                     exchange_state: dict[str, Any] | None = None, **extra: Any) -> None:
        if exchange_state is None and view is not None:
            exchange_state = _state(view.status, view.filled, view.fee_cost)
        self.section.discrepancies.append({
            "kind": kind, "client_order_id": order.client_order_id, "order_id": order.order_id,
            "ledger": _state(order.status, order.filled, order.fee_cost),
            "exchange": exchange_state, "repair": repair, **extra})

    def _propose(self, repair: Repair) -> None:
        self.section.repairs.append(repair)
