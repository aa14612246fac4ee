"""An order of BasicOrderExecutor brought to the exchange's state, from the caller's
task: a view adopted, a landed order looked up again, an `unknown` one resolved by the
daemon's rule (see `orderd.unclear`)."""

from __future__ import annotations

import contextlib

from actors.exchange.link import Attempts
from actors.exchange.messages import OrderView
from actors.orders import IllegalTransition, Order, adopt
from actors.runtime import Clock
from daemon.config import Config
from daemon.wiring import signed_windows
from orderd.direct import DirectExchange
from orderd.unclear import Absent, look_up
from protocol.messages import OrderStatus


async def look(exchange: DirectExchange, order: Order, attempts: Attempts, config: Config,
               clock: Clock) -> None:
    """The exchange's state of a live order: resolved when its outcome is unknown."""
    if order.status == OrderStatus.UNKNOWN:
        await resolve(exchange, order, attempts, config, clock)
    else:
        await refresh(exchange, order, attempts, clock)


async def resolve(exchange: DirectExchange, order: Order, attempts: Attempts,
                  config: Config, clock: Clock) -> None:
    """Look an `unknown` order up until it is found (its state adopted) or proven
    absent (`rejected`); when a lookup fails otherwise it stays `unknown`, its
    `last_error` still the create's."""
    found = await look_up(exchange, order, attempts, config.resolution,
                          signed_windows(config).get(exchange.name))
    if isinstance(found, Absent):
        order.last_error = found.error(order, exchange.name)
        order.move_to(OrderStatus.REJECTED, clock.now())
    elif found is not None:
        adopt_view(order, found, clock)


async def refresh(exchange: DirectExchange, order: Order, attempts: Attempts,
                  clock: Clock) -> None:
    """Take the exchange's view of `order` (one known to have landed); a failed
    lookup leaves it as it was."""
    try:
        view = await exchange.fetch(order, attempts)
    except Exception:  # noqa: BLE001 - the order stays as last known
        return
    adopt_view(order, view, clock)


def adopt_view(order: Order, view: OrderView, clock: Clock) -> None:
    if order.terminal:
        return
    with contextlib.suppress(IllegalTransition):  # an older view than ours: keep ours
        adopt(order, view, clock.now(), keep_status=False)
