"""Replies held until an order's status moves on, or its deadline passes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from actors.orders import Order
from actors.runtime import Reply
from protocol.errors import ProtocolError
from protocol.messages import OrderStatus

WAIT_SUBMIT = frozenset({OrderStatus.PENDING_SUBMIT, OrderStatus.UNKNOWN})
"""submit with wait=accepted waits through these."""
WAIT_CANCEL = frozenset({OrderStatus.PENDING_CANCEL})
"""cancel waits through this."""


@dataclass
class Waiter:
    """A reply held until the order leaves `through` or the deadline passes."""

    reply: Reply
    through: frozenset[str]
    deadline: float


class Waiters:
    """Held replies by client order id; used by OrderActor's thread only."""

    def __init__(self, send: Callable[[Reply, dict[str, object] | ProtocolError], None]) -> None:
        self._send = send
        self._held: dict[str, list[Waiter]] = {}

    def hold(self, order: Order, reply: Reply, through: frozenset[str] | None,
             deadline: float) -> None:
        """Answer now, or once the order leaves `through` (None: answer now)."""
        if through is None or order.status not in through:
            self._send(reply, {"order": order.to_wire()})
            return
        self._held.setdefault(order.client_order_id, []).append(
            Waiter(reply, through, deadline))

    def release(self, order: Order) -> None:
        """Answer every waiter the order's new status satisfies."""
        waiting = self._held.get(order.client_order_id)
        if not waiting:
            return
        keep = [w for w in waiting if order.status in w.through]
        for waiter in waiting:
            if order.status not in waiter.through:
                self._send(waiter.reply, {"order": order.to_wire()})
        if keep:
            self._held[order.client_order_id] = keep
        else:
            del self._held[order.client_order_id]

    def fail(self, client_order_id: str, error: ProtocolError) -> None:
        """Answer every waiter of an order with `error`."""
        for waiter in self._held.pop(client_order_id, []):
            self._send(waiter.reply, error)

    def expire(self, now: float, find: Callable[[str], Order | None]) -> None:
        """Answer waiters past their deadline with the order as it stands."""
        for cid in [c for c, ws in self._held.items() if any(w.deadline <= now for w in ws)]:
            due = [w for w in self._held[cid] if w.deadline <= now]
            rest = [w for w in self._held[cid] if w.deadline > now]
            if rest:
                self._held[cid] = rest
            else:
                del self._held[cid]
            order = find(cid)
            for waiter in due:
                self._send(waiter.reply, {"order": order.to_wire()} if order else ProtocolError(
                    "timeout", "no outcome within the deadline"))

    def take_all(self) -> list[tuple[str, Reply]]:
        """Every held reply with its client order id, no longer held (to answer them all
        at once, e.g. when the actor holding them crashes)."""
        held, self._held = self._held, {}
        return [(cid, waiter.reply) for cid, waiters in held.items() for waiter in waiters]
