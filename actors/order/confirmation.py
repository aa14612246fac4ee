"""Multi-step confirmation of an order, recorded as its trail.

1. ack: the exchange acknowledged the create with its id.
2. verified (or mismatch): an answer of the exchange shows the same terms, within the
   market's precision: the create's own full answer, else the symbol's open orders or
   a lookup, whichever comes first.
3. fill: each trade record, counted by trade id, never twice; filled, average price
   and fee come from the trade records. A trade that would fill more than the order's
   amount (a trade listed twice under two ids) is not counted: it is recorded as an
   `overfill` step instead, for the caller to alert on.

A mismatch is recorded and reported, never written over the order's own terms. Each
step names its `source`: the request whose answer showed it (create, lookup, cancel,
open_orders, trades) or reconcile.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from actors.exchange.messages import OrderView, TradeView
from actors.orders import Order, rfc3339
from protocol.codec import format_decimal


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return format_decimal(value) if isinstance(value, Decimal) else str(value)


def has_step(order: Order, *steps: str) -> bool:
    return any(entry.get("step") in steps for entry in order.trail)


def record_ack(order: Order, now: float, source: str) -> bool:
    """Step 1, once: the exchange gave the order an id."""
    if order.order_id is None or has_step(order, "ack"):
        return False
    order.trail.append({"step": "ack", "at": rfc3339(now), "order_id": order.order_id,
                        "source": source})
    return True


def _close(ours: Decimal | None, theirs: Decimal | None, step: Decimal | None) -> bool:
    if ours is None or theirs is None:
        return ours is theirs
    return abs(ours - theirs) < step if step else ours == theirs


def differences(order: Order, view: OrderView) -> list[tuple[str, Any, Any]]:
    """(field, ours, theirs) for each term the exchange shows differently."""
    found: list[tuple[str, Any, Any]] = [
        (name, getattr(order, name), getattr(view, name))
        for name in ("symbol", "side", "type") if getattr(order, name) != getattr(view, name)
    ]
    if not _close(order.amount, view.amount, view.amount_step):
        found.append(("amount", order.amount, view.amount))
    if order.type == "limit" and not _close(order.price, view.price, view.price_step):
        found.append(("price", order.price, view.price))
    return found


def verify(order: Order, view: OrderView, now: float, source: str) -> list[dict[str, Any]]:
    """Step 2, once: compare the order's terms with the first answer that shows them;
    returns the mismatches."""
    if view.symbol is None or has_step(order, "verified", "mismatch"):
        return []
    at = rfc3339(now)
    mismatches = [{"step": "mismatch", "at": at, "field": name, "ledger": _text(ours),
                   "exchange": _text(theirs), "source": source}
                  for name, ours, theirs in differences(order, view)]
    if mismatches:
        order.trail.extend(mismatches)
    else:
        order.trail.append({"step": "verified", "at": at, "order_id": view.order_id,
                            "source": source})
    return mismatches


def count_fills(order: Order, known: dict[str, TradeView], trades: tuple[TradeView, ...],
                now: float, source: str = "trades") -> list[TradeView]:
    """Step 3: add trades not yet counted (fee corrections too); returns what changed.
    Trades beyond the order's amount are recorded as overfills, not counted."""
    changed: list[TradeView] = []
    counted = sum((t.amount for t in known.values()), Decimal(0))
    for trade in trades:
        if order.order_id is not None and trade.order_id != order.order_id:
            continue
        seen = known.get(trade.trade_id)
        if seen is not None and seen.fee_cost == trade.fee_cost:
            continue
        if seen is None and counted + trade.amount > order.amount:
            record_overfill(order, trade, counted, now, source)
            continue
        if seen is None:
            counted += trade.amount
        known[trade.trade_id] = trade
        changed.append(trade)
        order.trail.append({
            "step": "fill" if seen is None else "fee_corrected", "at": rfc3339(now),
            "trade_id": trade.trade_id, "amount": _text(trade.amount),
            "price": _text(trade.price), "fee": _text(trade.fee_cost), "source": source})
    if changed:
        totals_from_trades(order, known)
    return changed


def overfills(order: Order) -> list[dict[str, Any]]:
    """The overfill steps of the order's trail, oldest first."""
    return [step for step in order.trail if step.get("step") == "overfill"]


def record_overfill(order: Order, trade: TradeView, counted: Decimal, now: float,
                    source: str) -> None:
    """An `overfill` step for a trade that would fill past the amount, once per trade."""
    if any(step.get("trade_id") == trade.trade_id for step in overfills(order)):
        return
    order.trail.append({
        "step": "overfill", "at": rfc3339(now), "trade_id": trade.trade_id,
        "amount": _text(trade.amount), "price": _text(trade.price),
        "counted": _text(counted), "order_amount": _text(order.amount), "source": source})


def totals_from_trades(order: Order, known: dict[str, TradeView]) -> None:
    """Filled, average price and fee from the trade records, unless they lag the order."""
    total = sum((t.amount for t in known.values()), Decimal(0))
    if total <= 0 or total < order.filled:
        return  # trades not all visible yet: keep the order's own figures until they are
    order.filled = total
    order.average_price = sum((t.amount * t.price for t in known.values()), Decimal(0)) / total
    order.fee_cost = sum((t.fee_cost for t in known.values()), Decimal(0))
    order.fee_currency = next(iter(known.values())).fee_currency
