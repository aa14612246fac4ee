"""The repeat limiter takes an alert's labels as its identity; order alerts carried only
the exchange (and a field), so the overfill of a second order within repeat_interval_s
(300 s) was held back as a "repeat" of the first: the sinks never heard of that order,
only a count in some later alert of the same kind, if one ever came."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from actors.exchange.client import trade_of
from actors.exchange.messages import OrderView
from actors.metrics.actor import NAME, AlertRouter, MetricsActor
from actors.metrics.alert_sinks import AlertSettings, RepeatLimiter
from actors.metrics.alerts import Alert
from actors.metrics.series import Metrics
from actors.order.messages import ExchangeReport
from actors.runtime import Clock, DaemonState
from actors.supervisor import Registry
from protocol.messages import OrderStatus
from tests.alert_support import lines
from tests.helpers import wait_until
from tests.recon_support import FakeClock, ledger_order, order_actors, seed_ledger


def overfills(tmp_path: Path, orders: dict[str, str]) -> list[Alert]:
    """What OrderActor alerts when each order's fill is reported under two trade ids."""
    clock = FakeClock()
    seed_ledger(tmp_path / "ledger.sqlite",
                [ledger_order(cid, order_id=oid) for cid, oid in orders.items()])
    view = {oid: OrderView(oid, OrderStatus.FILLED, Decimal("0.01"), Decimal(1000), "USD",
                           Decimal("0.01")) for oid in orders.values()}
    with order_actors(tmp_path, clock) as actors:
        for cid, oid in orders.items():
            trades = tuple(trade_of({"id": f"{cid}-{n}", "order": oid, "clientOrderId": cid,
                                     "amount": 0.01, "price": 1000.0,
                                     "fee": {"currency": "USD", "cost": 0.01},
                                     "timestamp": int(clock.now() * 1000)}) for n in (1, 2))
            actors.tell(ExchangeReport(cid, "fetch", "ok", view[oid], trades=trades))
            actors.status(cid)  # handled
    return actors.alerts.seen


def test_the_overfills_of_two_orders_are_two_alerts(tmp_path: Path) -> None:
    alerts = overfills(tmp_path, {"od-a": "7", "od-b": "8"})
    assert [(a.name, a.labels.get("order")) for a in alerts] == [
        ("order_overfill", "od-a"), ("order_overfill", "od-b")]
    registry, metrics = Registry(), Metrics()
    settings = AlertSettings(file=tmp_path / "alerts.jsonl")
    registry.start(NAME, lambda: MetricsActor.start(
        registry, metrics, settings, DaemonState(), Clock()))
    router = AlertRouter(registry)
    try:
        for alert in alerts:
            router.alert(alert)
        wait_until(lambda: metrics.registry.get_sample_value(
            "orderd_alerts_suppressed_total", {"name": "order_overfill"}) or len(
            lines(tmp_path / "alerts.jsonl")) == 2, "both alerts handled")
        messages = [a["message"] for a in lines(tmp_path / "alerts.jsonl")]
        assert any("od-b" in m for m in messages), messages
    finally:
        registry.stop_all()


def test_the_limiter_forgets_quiet_alerts_but_not_held_counts() -> None:
    now = [0.0]
    limiter = RepeatLimiter(60.0, lambda: now[0])
    held = Alert("order_mismatch", "critical", "x", {"order": "od-held"})
    assert limiter.admit(held) == 0 and limiter.admit(held) is None
    for n in range(2000):  # an order's alert each, a minute apart
        now[0] += 60.0
        assert limiter.admit(Alert("unknown_order_age", "warning", "x",
                                   {"order": f"od-{n}"})) == 0
    assert len(limiter._last) <= 1001
    assert limiter.admit(held) == 1  # the repeat held back long ago is still counted
