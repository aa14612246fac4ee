"""What OrderActor holds in memory about one order not yet finished: the ledger's
`Order` and the bookkeeping no ledger row keeps. One record per order, in one dict
keyed by client order id, so an order finished or dropped is forgotten by one `del`."""

from __future__ import annotations

from dataclasses import dataclass

from actors.exchange.messages import TradeView
from actors.orders import Order


@dataclass(slots=True, eq=False)
class LiveOrder:
    """One live order (eq=False: records compare by identity, like the orders)."""

    order: Order
    fills: dict[str, TradeView] | None = None
    """Its counted trades by trade id; None until read from the ledger (a new order's
    are known to be none)."""
    creating_since: float | None = None
    """When (monotonic) its create was dispatched, while no answer has come."""
    submitted_at: float | None = None
    """When (monotonic) it was submitted, until its first create's answer: the latency."""
    resend_at: float | None = None
    """When (monotonic) a create known not sent goes again."""
    cancel_after_create: bool = False
    """A cancel asked while the create was unanswered: sent once the create's outcome
    is in, never overtaking it."""
    recovering: bool = False
    """Left unresolved by the last run; start-up waits until its outcome is known."""


__all__ = ["LiveOrder"]
