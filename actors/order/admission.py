"""A submit's way into OrderActor: the daemon's state, idempotency by client order id,
then what would refuse it (the exchange's backlog, risk, the request budget), before
the order is recorded as `pending_submit` and its create dispatched after the commit."""

from __future__ import annotations

import logging
import random

from actors.order.core import OrderCore
from actors.order.live import LiveOrder
from actors.order.messages import Submit
from actors.order.order_counts import read_if_due
from actors.order.risk import check as check_risk
from actors.order.waiters import WAIT_SUBMIT
from actors.orders import Order
from protocol.errors import ProtocolError
from protocol.messages import OrderSpec, Wait

log = logging.getLogger(__name__)
BACKLOG_RETRY_S = 0.25
"""retry_after_s of a submit refused because its exchange's backlog is full."""
STARTING_RETRY_S = 1.0
"""retry_after_s of a submit refused while orders left by the last run are resolved."""


class Admission:
    """Takes or refuses submits; used by OrderActor's thread only."""

    def __init__(self, core: OrderCore) -> None:
        self.core = core
        self._ids = random.Random()  # seeded from the OS: ids unique without a syscall each

    def submit(self, msg: Submit) -> None:
        core = self.core
        state = core.state.value
        if state == "starting":
            core.answer(msg.reply, ProtocolError(
                "starting", "the daemon is starting: orders left by the last run are being "
                "resolved", retry_after_s=STARTING_RETRY_S))
            return
        if state != "ready":
            reason = f": {core.state.reason}" if core.state.reason else ""
            core.answer(msg.reply, ProtocolError(
                "halted", f"the daemon is {state}{reason}", retry_after_s=1.0))
            return
        cid = msg.spec.client_order_id or self._new_client_order_id()
        spec = msg.spec.normalized(core.settings.default_exchange, cid)
        # an id we just made is new: no lookup
        existing = None if msg.spec.client_order_id is None else core.get(cid)
        if existing is not None:
            if not existing.same_spec(spec):
                core.answer(msg.reply, ProtocolError(
                    "duplicate_client_order_id",
                    f"client_order_id {cid!r} is already used by a different order",
                    field="client_order_id"))
                return
            core.hold(existing, msg.reply, WAIT_SUBMIT if msg.wait == Wait.ACCEPTED else None)
            return
        refused = (self._backlog_error(spec) or self._risk_error(spec)
                   or self._budget_error(spec))
        if refused is not None:
            log.info("submit %s refused: %s", cid, refused.message,
                     extra={"client_order_id": cid, "exchange": spec.exchange})
            core.answer(msg.reply, refused)
            return
        order = Order.from_spec(spec, core.clock.now())
        core.batch.stage_new(order)  # first: what it refuses leaves nothing behind
        # a new order has no fills: no lookup
        live = core.orders[cid] = LiveOrder(order, fills={},
                                            submitted_at=core.clock.monotonic())
        core.metrics.child(core.metrics.orders_submitted, order.exchange).inc()
        core.place(live)
        core.hold(order, msg.reply, WAIT_SUBMIT if msg.wait == Wait.ACCEPTED else None)

    def _new_client_order_id(self) -> str:
        return make_client_order_id(self.core.settings.client_id_prefix,
                                    self.core.clock.now(), self._ids)

    def _backlog_error(self, spec: OrderSpec) -> ProtocolError | None:
        """Refuse what the exchange could not take in time: accepted orders would wait
        behind the backlog and expire unsent, so the client is told to slow down."""
        assert spec.exchange is not None
        limit = self.core.settings.backlogs.get(spec.exchange)
        backlog = self.core.router.backlog(spec.exchange)
        if limit is None or backlog < limit:
            return None
        return ProtocolError("rate_limited", f"{backlog} orders sent to {spec.exchange} are "
                             "waiting for its answers; submit again later",
                             retry_after_s=BACKLOG_RETRY_S)

    def _budget_error(self, spec: OrderSpec) -> ProtocolError | None:
        """Refuse what the exchange would refuse for its limits (a 429 or 418 being waited
        out, the minute's weight spent, the order counts full): never sent to be refused."""
        assert spec.exchange is not None
        budget = self.core.settings.budgets.get(spec.exchange)
        refusal = None if budget is None else budget.admit_order(
            self.core.router.backlog(spec.exchange))
        if refusal is None:
            return None
        assert budget is not None
        budget.waited(refusal.reason)
        if refusal.reason == "order_count":  # fills since the last read may have made room
            read_if_due(self.core, spec.exchange)
        return ProtocolError("rate_limited", str(refusal),
                             retry_after_s=round(refusal.retry_after_s, 3))

    def _risk_error(self, spec: OrderSpec) -> ProtocolError | None:
        risk = self.core.settings.risk
        if risk is None:
            return None
        assert spec.exchange is not None
        limits = risk.of(spec.exchange)
        price = self.core.last_prices.get((spec.exchange, spec.symbol))
        orders = (live.order for live in self.core.orders.values())
        return check_risk(spec, limits, orders, price)


def make_client_order_id(prefix: str, now: float, rng: random.Random) -> str:
    """The prefix, 13 hex digits of the time in microseconds, 15 random ones (60 bits):
    36 characters at most (the protocol's and binance's limit) with the longest prefix,
    and unique as the 128 random bits were (two ids share a microsecond of the clock
    only if it steps back, and then differ in 60 random bits).

    Time first, so ids made later sort later: the ledger's indexes by client order id
    (the orders' own and their fills') take new ids at their end, on pages a commit
    touches anyway. Random ids wrote a page each: a commit of 30 orders with their fills
    wrote 47 pages instead of 14, and every reply of those orders waited for it."""
    return f"{prefix}{int(now * 1_000_000):013x}{rng.getrandbits(60):015x}"
