"""An exchange's section of BasicOrderExecutor's `reconcile_orders`, in the daemon's
layout: its live orders looked up, the open orders it does not know listed, no
repairs beyond taking the exchange's state."""

from __future__ import annotations

from typing import Any

from actors.exchange.failure import error_info
from actors.exchange.link import Attempts
from actors.orders import Order
from actors.runtime import Clock
from daemon.config import Config
from orderd.direct import DirectExchange
from orderd.order_sync import look


async def reconcile_section(exchange: DirectExchange, mine: list[Order], attempts: Attempts,
                            config: Config, clock: Clock) -> dict[str, Any]:
    """The section of `exchange`, whose orders of this executor are `mine`."""
    discrepancies, errors = [], []
    live = [o for o in mine if not o.terminal]
    for order in live:
        before = order.status
        await look(exchange, order, attempts, config, clock)
        if order.status != before:
            discrepancies.append({"kind": "status_mismatch",
                                  "client_order_id": order.client_order_id,
                                  "order_id": order.order_id, "ledger": before.value,
                                  "exchange": order.status.value, "repair": "applied"})
    try:
        open_orders = await exchange.open_orders(attempts)
    except Exception as exc:  # noqa: BLE001 - reported, never read as "no orders"
        open_orders = []
        error = error_info(exc)
        errors.append({"query": "open_orders", "code": error.code, "error": error.message})
    known = {o.order_id for o in mine}
    for view in open_orders:
        if view.order_id not in known:
            discrepancies.append({"kind": "unknown_on_exchange",
                                  "client_order_id": view.client_order_id,
                                  "order_id": view.order_id, "ledger": None,
                                  "exchange": view.status.value, "repair": None})
    counts = {"ledger_orders": len(mine),
              "ledger_live": len(live), "exchange_open": len(open_orders),
              "discrepancies": len(discrepancies)}
    return {"counts": counts, "discrepancies": discrepancies, "errors": errors}
