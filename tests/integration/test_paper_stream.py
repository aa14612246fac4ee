"""The in-process paper venue, by default, delivers its events on the user-data stream:
a resting order's fill reaches the daemon pushed, and is published, while REST tracking
waits out its safety interval."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from protocol.client import EventSubscriber, NoAnswer, OrderdClient
from tests.alert_support import scrape
from tests.helpers import free_port, market_buy, resting_limit_buy, running_daemon, wait_until

TRACKING = "safety_interval_s = 60\n"
"""Tracking reads every 0.2 s (the tests' interval) unless the stream is live, then
every 60 s."""
PAPER = '[[exchanges]]\nname = "paper"\ndriver = "paper"\n'
"""An entry that does not say `stream`: the driver's default, on."""
ATTEMPTS = 20
AMOUNT = "0.001"
FILL_WAIT_S = 60.0
"""The price walk moves about 0.01 % a second: it leaves a band of that half-width in a
few seconds, almost always in the first."""


def cid() -> str:
    return f"ps-{uuid.uuid4().hex[:16]}"


def paper_stream(client: OrderdClient) -> dict[str, Any]:
    state: dict[str, Any] = client.health()["streams"]["paper"]
    return state


def tracking_reads(metrics_url: str) -> float:
    """Reads of the paper venue's side worker (tracking's open orders among them)."""
    for family in text_string_to_metric_families(scrape(metrics_url).decode()):
        for sample in family.samples:
            if (sample.name == "orderd_exchange_request_duration_seconds_count"
                    and sample.labels == {"exchange": "paper", "op": "read"}):
                return float(sample.value)
    return 0.0


def bracket(client: OrderdClient) -> list[dict[str, Any]]:
    """A buy just below BTC's price and a sell just above it, both resting: one fills
    when the walk next moves. Placed again when a step of the walk between reading the
    price and placing them filled one at once."""
    for _ in range(ATTEMPTS):
        probe = client.submit(market_buy(AMOUNT, client_order_id=cid()))
        price = Decimal(probe["average_price"])
        gap = (price * Decimal("0.0001")).quantize(Decimal("0.01"))
        buy = resting_limit_buy(AMOUNT, str(price - gap), client_order_id=cid())
        sell = {**resting_limit_buy(AMOUNT, str(price + gap), client_order_id=cid()),
                "side": "sell"}
        placed = [client.submit(buy), client.submit(sell)]
        if all(order["status"] == "open" for order in placed):
            return placed
        for order in placed:
            if order["status"] == "open":
                client.cancel(client_order_id=order["client_order_id"])
    raise AssertionError(f"no bracket rested in {ATTEMPTS} attempts")


def next_fill(subscriber: EventSubscriber, ours: set[str]) -> dict[str, Any]:
    """The first `order.filled` event of one of `ours`."""
    while True:
        try:
            topic, event = subscriber.receive(timeout_s=FILL_WAIT_S)
        except NoAnswer:
            raise AssertionError("no resting order filled") from None
        if topic == "order.filled" and event["order"]["client_order_id"] in ours:
            return event


def test_a_resting_fill_arrives_by_the_paper_stream_while_tracking_waits(
        tmp_path: Path) -> None:
    port = free_port()
    metrics = f"http://127.0.0.1:{port}/metrics"
    with running_daemon(tmp_path, extra=f'[metrics]\nlisten = "127.0.0.1:{port}"\n',
                        tracking=TRACKING, exchanges=PAPER) as daemon:
        client = daemon.client()
        subscriber = EventSubscriber(daemon.events)
        try:
            wait_until(lambda: paper_stream(client)["live"], "the paper stream live")
            before = tracking_reads(metrics)
            placed = bracket(client)
            # the symbol's first read, then none for the safety interval
            wait_until(lambda: tracking_reads(metrics) > before, "tracking's first read")
            reads = tracking_reads(metrics)
            event = next_fill(subscriber, {order["client_order_id"] for order in placed})
        finally:
            subscriber.close()
        assert tracking_reads(metrics) == reads  # only the stream could have told it
        ours = event["order"]["client_order_id"]
        order = client.status(client_order_id=ours)
        fills = [step for step in order["confirmation"] if step["step"] == "fill"]
        assert [step["source"] for step in fills] == ["stream"]
        assert Decimal(order["filled"]) == Decimal(AMOUNT) == Decimal(fills[0]["amount"])
        stream = paper_stream(client)
        # the fill; what the creates' and cancels' answers showed is not handed on
        assert stream["live"] and stream["gaps"] == 0 and stream["events"] >= 1
        assert daemon.stop() == 0
