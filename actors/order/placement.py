"""What each exchange entry talks to, recorded in the ledger, and the live orders placed
where an entry no longer points: set aside at load like those of an entry removed.

Orders are found by entry name. An entry pointed at another address or account while the
daemon was down (testnet's api_url replaced by the live one) would have its orders looked
up there: an unknown one proven absent and rejected or sent again while it rests at the
first address, another's order under the same client id taken for it and canceled. So
the ledger keeps, per entry, what its live orders were placed on (`ENTRY_KEY`), and per
order set aside for this, what that order was placed on (`ORDER_KEY`): the entry's own
record then moves on to what it talks to now (its new orders are placed there) without
the old one being lost while an order of it is live. Pointed back, those orders are
managed again and their records emptied.

The records' format is in actors.ledger.placement.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from actors.ledger.placement import ENTRY_KEY, ORDER_KEY, ROWS_KEY, same_place
from actors.ledger.store import Ledger
from actors.metrics.alerts import Alert, Alerter
from actors.orders import Order

log = logging.getLogger(__name__)

MOVED_ALERT = "orders_of_moved_exchange"
UNCONFIGURED_ALERT = "orders_of_unknown_exchange"


@dataclass
class Sorted:
    """The ledger's live orders of configured entries, by where they may be managed."""

    managed: list[Order] = field(default_factory=list)
    moved: dict[str, tuple[Order, str]] = field(default_factory=dict)
    """Client id -> (order, what it was placed on): its entry now talks to another."""


def sort_out(ledger: Ledger, live: list[Order], places: dict[str, str]) -> Sorted:
    """Sort `live` (orders of configured entries) by `places` (entry -> what it talks to
    now; an entry not listed is never checked), staging the records that change: an
    entry without one (a ledger older than them) is taken to talk to what it does now."""
    recorded = {entry: ledger.meta(ENTRY_KEY + entry) for entry in places}
    aside = ledger.meta_prefixed(ORDER_KEY)
    result = Sorted()
    for order in live:
        now, cid = places.get(order.exchange), order.client_order_id
        placed = aside.get(cid) or recorded.get(order.exchange) or now
        if now is None or placed is None or same_place(placed, now):
            result.managed.append(order)
            if aside.get(cid):
                ledger.stage_meta(ORDER_KEY + cid, "")
        else:
            result.moved[cid] = (order, placed)
            if not aside.get(cid):
                ledger.stage_meta(ORDER_KEY + cid, placed)
    for entry, now in places.items():
        before = recorded[entry]
        if before is not None and not same_place(before, now):
            rows = json.loads(ledger.meta(ROWS_KEY + entry) or "null") or [[0, before]]
            ledger.stage_meta(ROWS_KEY + entry, json.dumps([*rows, [ledger.next_row(), now]]))
        if before != now:
            ledger.stage_meta(ENTRY_KEY + entry, now)
    return result


def warn_left_alone(set_aside: Iterable[Order], configured: Collection[str],
                    moved: dict[str, tuple[Order, str]], places: dict[str, str],
                    alerter: Alerter) -> None:
    """Say how many live orders are left as the ledger has them, and why: per exchange
    not `configured`, and per entry and former place of those `moved`."""
    unconfigured = Counter(o.exchange for o in set_aside if o.exchange not in configured)
    for exchange, count in sorted(unconfigured.items()):
        _warn(alerter, UNCONFIGURED_ALERT, exchange, (
            f"{count} live orders of exchange {exchange!r}, which is not configured, are "
            "left as the ledger has them (not sent, tracked, resolved or cancelled); "
            "configure the exchange under that name again to manage them"))
    by_place = Counter((order.exchange, placed) for order, placed in moved.values())
    for (entry, placed), count in sorted(by_place.items()):
        _warn(alerter, MOVED_ALERT, entry, (
            f"{count} live orders of exchange {entry!r} were placed on {describe(placed)}, "
            f"but the entry now talks to {describe(places[entry])}: they are left as the "
            "ledger has them (not sent, tracked, resolved or cancelled there); to manage "
            "them, point the entry back"))


def _warn(alerter: Alerter, alert: str, exchange: str, message: str) -> None:
    log.warning("%s", message, extra={"exchange": exchange})
    alerter.alert(Alert(alert, "warning", message, {"exchange": exchange}))


def describe(place: str) -> str:
    """A place for a person: `binance (address https://host)`, `paper (account x)`."""
    fields = json.loads(place)
    rest = ", ".join(f"{key} {value}" for key, value in sorted(fields.items())
                     if key != "driver")
    return f"{fields.get('driver', '?')} ({rest})"
