"""What clients ask of orders besides a submit, as OrderActor answers it: an order's
status, a cancel, a cancel of all in a scope, a page of the ledger."""

from __future__ import annotations

import logging

from actors.exchange.messages import CancelOrder
from actors.order.core import OrderCore
from actors.order.messages import Cancel, CancelAll, GetStatus, ListOrders
from actors.order.waiters import WAIT_CANCEL
from actors.orders import Order
from protocol.errors import ProtocolError
from protocol.messages import CancelAllArgs, OrderStatus

log = logging.getLogger(__name__)


class ClientCommands:
    """Used by OrderActor's thread only."""

    def __init__(self, core: OrderCore) -> None:
        self.core = core

    def status(self, msg: GetStatus) -> None:
        order = self.core.find(msg.ref)
        if isinstance(order, ProtocolError):
            self.core.answer(msg.reply, order)
        else:
            confirmation = list(order.trail)
            self.core.answer_read(msg.reply,
                                  {"order": {**order.to_wire(), "confirmation": confirmation}})

    def cancel(self, msg: Cancel) -> None:
        order = self.core.find(msg.ref)
        if isinstance(order, ProtocolError):
            self.core.answer(msg.reply, order)
            return
        if order.terminal and order.status != OrderStatus.CANCELED:
            self.core.answer(msg.reply, ProtocolError(
                "not_cancelable", f"order {order.client_order_id} is {order.status}"))
            return
        refused = None if order.terminal else self.core.unknown_exchange(order)
        if refused is not None:  # no worker could send its cancel: it is left alone
            self.core.answer(msg.reply, refused)
            return
        if order.status not in (OrderStatus.CANCELED, OrderStatus.PENDING_CANCEL):
            self._ask_cancel(order)
        self.core.hold(order, msg.reply, WAIT_CANCEL)

    def _ask_cancel(self, order: Order) -> None:
        order.move_to(OrderStatus.PENDING_CANCEL, self.core.clock.now())
        self.core.stage(order)
        live = self.core.orders.get(order.client_order_id)
        if live is not None and live.creating_since is not None:
            # cancel once the create's outcome is in, never overtaking it
            live.cancel_after_create = True
        else:
            self.core.dispatch(order, CancelOrder)

    def cancel_all(self, msg: CancelAll) -> None:
        """Every live order in scope asked to cancel; answered with them as recorded, after
        the commit, without waiting for the exchange (their outcomes follow as events).
        Orders of exchanges no longer configured are not live here: said in the log."""
        scope = msg.args
        chosen = [live.order for live in self.core.orders.values() if _in(scope, live.order)]
        self._warn_left(scope)
        for order in chosen:
            if order.status != OrderStatus.PENDING_CANCEL:
                self._ask_cancel(order)
        self.core.answer(msg.reply, {"orders": [order.to_wire() for order in chosen]})

    def _warn_left(self, scope: CancelAllArgs) -> None:
        left = [order for order in self.core.set_aside.values() if _in(scope, order)]
        if left:
            exchanges = sorted({order.exchange for order in left})
            log.warning("cancel_all: %d orders of exchanges not configured (%s) left as "
                        "they are: nothing can send their cancels", len(left),
                        ", ".join(exchanges))

    def list_orders(self, msg: ListOrders) -> None:
        orders, cursor = self.core.ledger.page(msg.args)
        wire = [(self.core.current(o.client_order_id) or o).to_wire() for o in orders]
        self.core.answer_read(msg.reply, {"orders": wire, "next": cursor})


def _in(scope: CancelAllArgs, order: Order) -> bool:
    return ((scope.exchange is None or order.exchange == scope.exchange)
            and (scope.symbol is None or order.symbol == scope.symbol))
