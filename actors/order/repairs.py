"""Repairs from reconciliation, applied to ledger orders (by OrderActor, the only writer).

Each function changes the order in memory and says what happened; `Repairs` stages
it and its new fills in the ledger and answers the run with what was applied.
"""

from __future__ import annotations

from typing import Any

from actors.exchange.messages import TradeView
from actors.order.confirmation import count_fills, overfills, totals_from_trades
from actors.order.core import OrderCore
from actors.order.discrepancies import alert_overfills
from actors.order.live import LiveOrder
from actors.order.messages import ApplyRepairs, Repair
from actors.orders import TRANSITIONS, Order, adopt, fingerprint, rfc3339
from protocol.messages import OrderType, Side


class Repairs:
    """A reconciliation run's repairs applied; used by OrderActor's thread only."""

    def __init__(self, core: OrderCore) -> None:
        self.core = core

    def apply(self, msg: ApplyRepairs) -> None:
        results = [self._repair(repair, msg.run_id) for repair in msg.repairs]
        for key, value in msg.cursors:
            self.core.ledger.stage_meta(key, value)
        self.core.batch.sync_next()  # the run's report says what was applied
        self.core.batch.after_commit(lambda: msg.reply(results))

    def _repair(self, repair: Repair, run_id: str) -> dict[str, Any]:
        core = self.core
        result: dict[str, Any] = {"client_order_id": repair.client_order_id,
                                  "kind": repair.kind, "reason": repair.reason}
        cid, now = repair.client_order_id, core.clock.now()
        order = core.get(cid)
        already = 0 if order is None else len(overfills(order))
        if repair.kind == "adopt_order":
            if order is not None:
                return {**result, "applied": False, "detail": "already in the ledger"}
            order = orphan_order(repair, now, run_id)
            outcome, changed = {"applied": True, "status": [None, order.status]}, True
            known: dict[str, TradeView] = {}  # not in the ledger: no fills counted yet
            fills = count_fills(order, known, repair.trades, now, source="reconcile")
            if not order.terminal:  # live from now on, with the fills just counted
                core.orders[cid] = LiveOrder(order, fills=known)
            else:  # kept with the recent orders (settled adds it to them)
                core.finished_fills[cid] = known
        elif order is None:
            return {**result, "applied": False, "detail": "not in the ledger"}
        elif cid in core.set_aside:  # placed where its entry no longer points
            return {**result, "applied": False, "detail": "set aside"}
        else:
            outcome, fills, changed = repair_order(order, repair, core.known_fills(order), now,
                                                   run_id)
            if not outcome["applied"]:
                return {**result, **outcome}
        for trade in fills:
            core.ledger.stage_fill(order.exchange, cid, trade)
        alert_overfills(core, order, already)
        core.stage(order, publish=changed)
        core.settled(order, core.orders.get(cid))
        return {**result, **outcome}


def repair_order(order: Order, repair: Repair, known: dict[str, TradeView], now: float,
                 run_id: str) -> tuple[dict[str, Any], list[TradeView], bool]:
    """Apply one repair: (result, fills to record, whether the wire Order changed)."""
    view, status = repair.view, order.status
    if view is not None and view.status != status and view.status not in TRANSITIONS[status]:
        return {"applied": False, "detail": f"{status} cannot become {view.status}"}, [], False
    before, steps = fingerprint(order), len(order.trail)
    if view is not None:
        adopt(order, view, now, keep_status=False)
    fills = count_fills(order, known, repair.trades, now, source="reconcile")
    if repair.kind == "adopt_trades":
        totals_from_trades(order, known)  # the order's own fee may be what was wrong
    changed = fingerprint(order) != before
    if not changed and len(order.trail) == steps:
        return {"applied": False, "detail": "already as the exchange shows"}, fills, False
    order.trail.append({"step": "repair", "at": rfc3339(now), "run_id": run_id,
                        "kind": repair.kind, "reason": repair.reason,
                        "status": [status, order.status]})
    if changed:
        order.updated_at = now
    return {"applied": True, "status": [status, order.status]}, fills, changed


def orphan_order(repair: Repair, now: float, run_id: str) -> Order:
    """Our own order that the exchange has and the ledger lacks, as a ledger order."""
    view = repair.view
    assert view is not None and view.symbol and view.side and view.type and view.amount
    order = Order(client_order_id=repair.client_order_id, exchange=repair.exchange,
                  symbol=view.symbol, side=Side(view.side), type=OrderType(view.type),
                  amount=view.amount, price=view.price, time_in_force=None, params={},
                  created_at=now, updated_at=now)
    adopt(order, view, now, keep_status=False)
    order.trail.append({"step": "adopted", "at": rfc3339(now), "run_id": run_id,
                        "order_id": view.order_id, "reason": repair.reason})
    return order


__all__ = ["Repairs", "orphan_order", "repair_order"]
