"""What OrderActor tells when the exchange and the ledger disagree about an order: a
trade that would fill it past its amount, terms the exchange shows differently. Each
is logged and alerted; an overfill also goes to the reconciler's report."""

from __future__ import annotations

import logging
from typing import Any

from actors.metrics.alerts import Alert
from actors.order.confirmation import overfills
from actors.order.core import OrderCore
from actors.orders import Order
from actors.reconcile.compare import overfill_entry
from actors.reconcile.messages import RecordDiscrepancy

log = logging.getLogger(__name__)


def alert_overfills(core: OrderCore, order: Order, already: int) -> None:
    """Alert on the overfill steps after the first `already`: trades not counted."""
    for step in overfills(order)[already:]:
        log.error("order %s: trade %s of %s would fill %s beyond its amount %s; "
                  "not counted", order.client_order_id, step["trade_id"], step["amount"],
                  step["counted"], step["order_amount"])
        core.alerter.alert(Alert(
            "order_overfill", "critical",
            f"order {order.client_order_id}: trade {step['trade_id']} of {step['amount']} "
            f"on top of {step['counted']} would exceed its amount {step['order_amount']}; "
            "not counted", {"exchange": order.exchange, "order": order.client_order_id}))
        core.tell_reconciler(RecordDiscrepancy(order.exchange, overfill_entry(order, step)))


def alert_mismatch(core: OrderCore, order: Order, mismatch: dict[str, Any]) -> None:
    field = mismatch["field"]
    log.error("order %s: exchange shows %s %s, ledger has %s", order.client_order_id,
              field, mismatch["exchange"], mismatch["ledger"])
    core.alerter.alert(Alert(
        "order_mismatch", "critical",
        f"order {order.client_order_id}: exchange shows {field} {mismatch['exchange']}, "
        f"ledger has {mismatch['ledger']}",
        {"exchange": order.exchange, "order": order.client_order_id, "field": field}))
