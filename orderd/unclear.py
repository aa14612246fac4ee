"""A create whose outcome is unclear, on the direct path: looked up from the caller's
task by the daemon's rule (actors/order/resolution.py). "Not found" proves absence only
in `absent_needed` answers spanning `window_s`, the last asked once the signed create
can no longer land: until its landing deadline the exchange may still book it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from actors.exchange.failure import error_info
from actors.exchange.link import Attempts
from actors.exchange.messages import OrderView
from actors.order.resolution import Resolver, ResolveSettings, SignedWindow
from actors.orders import Order
from actors.runtime import Clock
from orderd.direct import DirectExchange


@dataclass(frozen=True)
class Absent:
    """The order is proven absent: `lookups` lookups, `interval_s` apart, found nothing."""

    lookups: int
    interval_s: float

    def error(self, order: Order, exchange: str) -> dict[str, str]:
        """The order's `last_error` once rejected: the create's failure and the proof."""
        cause = (order.last_error or {}).get("message", "no answer")
        return {"code": "order_not_found", "message": (
            f"the create failed ({cause}) and {self.lookups} lookups, {self.interval_s:g} s "
            f"apart, found no order {order.client_order_id} on {exchange}, the last once "
            "the create could no longer land")}


async def look_up(exchange: DirectExchange, order: Order, attempts: Attempts,
                  settings: ResolveSettings, window: SignedWindow | None,
                  ) -> OrderView | Absent | None:
    """The exchange's view of `order` once a lookup finds it, Absent once absence is
    proven, None when a lookup fails otherwise (that proves nothing). `window`: the
    exchange's signed window (None: a create books at once or never). The waits
    between lookups are the event loop's."""
    clock, cid = exchange.clock, order.client_order_id
    resolver = Resolver(settings)
    resolver.add_signed(cid, order.signed_at, window, clock.monotonic(), clock.now())
    lookups = 0
    while True:
        await _due(resolver, cid, clock)
        lookups += 1
        try:
            return await exchange.fetch(order, attempts)
        except Exception as exc:  # noqa: BLE001 - judged by the error table
            if error_info(exc).code != "order_not_found":
                return None
        if resolver.looked_up(cid, absent=True, now=clock.monotonic()):
            return Absent(lookups, settings.interval_s)


async def _due(resolver: Resolver, cid: str, clock: Clock) -> None:
    """Return once the order's next lookup is due (the resolver then counts it sent)."""
    while not resolver.due(clock.monotonic()):
        await asyncio.sleep(max(0.0, resolver.cases[cid].next_at - clock.monotonic()))
