"""When OrderActor has the exchange's unfilled order counts read (see
actors/exchange/count_reads.py): an order's first fill lowers binance's count, which
only a create's answer would otherwise show, and none goes out while the count holds
new orders. The budget decides whether a read is due; the side worker makes it, so no
order waits behind it. A read that finds room sends the creates kept back for the count."""

from __future__ import annotations

from decimal import Decimal

from actors.exchange.count_reader import ReadOrderCounts
from actors.exchange.routing import side_worker_name
from actors.order.core import OrderCore


def filled_first(core: OrderCore, exchange: str, before: Decimal, after: Decimal) -> None:
    """An order of `exchange` that had nothing filled (`before`) now has (`after`)."""
    if before > 0 or after <= 0:
        return
    budget = core.settings.budgets.get(exchange)
    if budget is not None and budget.count_reads:  # else no read can follow: not a lock
        budget.reads.fill_seen()
        read_if_due(core, exchange)


def read_if_due(core: OrderCore, exchange: str) -> None:
    """Ask the side worker to read the counts if the budget says a read is due (a fill
    unread while new orders are refused for the count, none within the last second)."""
    budget = core.settings.budgets.get(exchange)
    read = None if budget is None else budget.claim_read()
    if read is None:
        return
    assert budget is not None
    if not core.registry.tell(side_worker_name(exchange), ReadOrderCounts(exchange, read)):
        budget.reads.failed(read, again=True)  # no worker now: after the next second


def send_held_creates(core: OrderCore, seen: dict[str, int], now: float) -> None:
    """A create the budget kept back for the order count waits for its `resend_at`, the
    end of the full window (for the day's, hours: past its send deadline). Once a read
    of an exchange's counts found room since the last tick (`seen`: the budget's
    `rooms_read` as last seen, by exchange), that exchange's creates so held are due
    `now`, in the order they were accepted (those kept back for another reason too: a
    create the budget still refuses is kept back again, and nothing reaches the
    exchange; the scan is only made when a read moved the count)."""
    moved: set[str] = set()
    for exchange, budget in core.settings.budgets.items():
        found = budget.reads.rooms_read
        if seen.get(exchange, 0) != found:
            seen[exchange] = found
            moved.add(exchange)
    if not moved:
        return
    for live in core.orders.values():
        if live.resend_at is not None and live.resend_at > now \
                and live.order.exchange in moved:
            live.resend_at = now
