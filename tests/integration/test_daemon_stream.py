"""A daemon with the binance driver listens to `orderd paper-venue`'s user-data stream:
fills and cancels arrive pushed while REST tracking waits out its safety interval, and
no stream fault (drop, stall, lost or repeated event) loses or doubles a fill."""

from __future__ import annotations

import signal
import time
import uuid
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from tests.helpers import (
    KEY,
    SECRET,
    DaemonProcess,
    VenueProcess,
    resting_limit_buy,
    running_daemon,
    wait_until,
)
from tests.stream_support import operator

SYMBOL = "SOL/USD"
STREAMED = ('[[exchanges]]\nname = "bx"\ndriver = "binance"\napi_url = "{url}"\n'
            f'api_key = "{KEY}"\nsecret = "{SECRET}"\n')
TRACKING = "safety_interval_s = 60\nstream_stale_s = 2\n"
"""Tracking reads every 0.2 s (the tests' interval) unless the stream is live, then every
60 s; a stream quiet for 2 s is stale."""


def exchanges(venue: VenueProcess) -> str:
    return STREAMED.replace("{url}", venue.url)


def cid() -> str:
    return f"st-{uuid.uuid4().hex[:16]}"


def live(daemon_client: Any) -> bool:
    return bool(daemon_client.health()["streams"]["bx"]["live"])


def price(venue: VenueProcess, value: str) -> None:
    operator(venue.url, "/_venue/price", {"symbol": SYMBOL, "price": value})


def open_orders_reads(venue: VenueProcess) -> int:
    return sum(1 for request in venue.requests() if request == ("GET", "/api/v3/openOrders"))


def buy(client: Any, at: str) -> dict[str, Any]:
    placed: dict[str, Any] = client.submit(resting_limit_buy(
        "0.1", price=at, symbol=SYMBOL, client_order_id=cid()), wait="accepted")
    return placed


def filled(client: Any, ours: str) -> dict[str, Any] | None:
    order: dict[str, Any] = client.status(client_order_id=ours)
    return order if order["status"] == "filled" else None


def fill_steps(order: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for step in order["confirmation"] if step["step"] == "fill"]


def assert_filled_once(client: Any, venue: VenueProcess, ours: str) -> None:
    order = wait_until(lambda: filled(client, ours), f"{ours} filled")
    steps = fill_steps(order)
    ids = [step["trade_id"] for step in steps]
    assert len(ids) == len(set(ids)), steps
    assert sum(Decimal(step["amount"]) for step in steps) == Decimal(order["amount"])
    [booked] = [o for o in venue.orders() if o["clientOrderId"] == ours]
    assert booked["status"] == "FILLED" and Decimal(booked["executedQty"]) == Decimal(
        order["filled"])


def rest_at(venue: VenueProcess, level: str) -> None:
    price(venue, level)


def test_a_fill_arrives_by_the_stream_while_tracking_waits(venue: VenueProcess,
                                                           tmp_path: Path) -> None:
    rest_at(venue, "150")
    with running_daemon(tmp_path, exchanges=exchanges(venue), tracking=TRACKING) as daemon:
        client = daemon.client()
        wait_until(lambda: live(client), "the stream live")
        reads = open_orders_reads(venue)
        placed = buy(client, "100")
        wait_until(lambda: client.status(client_order_id=placed["client_order_id"])[
            "status"] == "open", "the order open")
        # the symbol's first read, then none for the safety interval
        wait_until(lambda: open_orders_reads(venue) > reads, "tracking's first read")
        reads = open_orders_reads(venue)
        rest_at(venue, "99")
        order = wait_until(lambda: filled(client, placed["client_order_id"]),
                           "the fill pushed")
        assert open_orders_reads(venue) == reads  # only the stream could have told it
        assert [step["source"] for step in fill_steps(order)] == ["stream"]
        health = client.health()["streams"]["bx"]
        assert health["live"] and health["events"] >= 2 and health["gaps"] == 0
        assert daemon.stop() == 0
    rest_at(venue, "150")


def stream_of(client: Any) -> dict[str, Any]:
    state: dict[str, Any] = client.health()["streams"]["bx"]
    return state


def grown(client: Any, before: dict[str, Any], count: str, by: int) -> bool:
    return bool(stream_of(client)[count] >= before[count] + by)


Fault = tuple[tuple[str, dict[str, Any]], str]
FAULTS: tuple[Fault, ...] = (
    (("stream_drop", {}), "reconnects"), (("stream_drop_event", {}), "gaps"),
    (("stream_duplicate_event", {}), "duplicates"),
    (("stream_stall", {"delay_s": 3.0}), "reconnects"))
"""Each fault, and the count of the stream's health that shows it was met."""


def test_stream_faults_lose_and_double_no_fill(venue: VenueProcess, tmp_path: Path) -> None:
    rest_at(venue, "150")
    with running_daemon(tmp_path, exchanges=exchanges(venue), tracking=TRACKING) as daemon:
        client = daemon.client()
        level = 140
        for (fault, params), shown_by in FAULTS:
            wait_until(lambda: live(client), f"the stream live before {fault}")
            before = stream_of(client)
            placed = [buy(client, str(level - i)) for i in range(2)]
            # their NEW events came: the fault meets the fills' events
            wait_until(partial(grown, client, before, "events", 2), "the orders' events")
            venue.script({"fault": fault, **params})
            rest_at(venue, str(level - 2))
            buy(client, "1")  # an event after them shows a gap, if one was lost
            wait_until(partial(grown, client, before, shown_by, 1), f"{fault} met")
            for order in placed:
                assert_filled_once(client, venue, order["client_order_id"])
            level -= 5
        resting = {v["clientOrderId"] for v in venue.orders() if v["status"] == "NEW"}
        assert all(o["client_order_id"] in resting
                   for o in client.list(status="open")["orders"])
        assert daemon.stop() == 0
    rest_at(venue, "150")


def test_after_a_kill_the_catch_up_finds_every_fill(venue: VenueProcess,
                                                    tmp_path: Path) -> None:
    rest_at(venue, "150")
    daemon = DaemonProcess(tmp_path, exchanges=exchanges(venue), tracking=TRACKING).start()
    client = daemon.client()
    wait_until(lambda: live(client), "the stream live")
    placed = [buy(client, str(120 - i)) for i in range(5)]
    rest_at(venue, "110")  # every one fills as the daemon dies
    daemon.stop(signal.SIGKILL)
    with running_daemon(tmp_path, exchanges=exchanges(venue), tracking=TRACKING) as again:
        client = again.client()
        for order in placed:
            assert_filled_once(client, venue, order["client_order_id"])
        assert again.stop() == 0
    rest_at(venue, "150")


def test_a_quiet_stream_stays_connected(venue: VenueProcess, tmp_path: Path) -> None:
    """With no order events for several stale periods, the heartbeat's answers keep the
    stream live on its first connection, and a fill after the quiet spell is pushed."""
    rest_at(venue, "150")
    with running_daemon(tmp_path, exchanges=exchanges(venue), tracking=TRACKING) as daemon:
        client = daemon.client()
        wait_until(lambda: live(client), "the stream live")
        before = stream_of(client)
        quiet_until = time.monotonic() + 3 * 2.0  # three stale periods without events
        wait_until(lambda: time.monotonic() > quiet_until and live(client),
                   "three stale periods passed", attempts=3000)
        reads = open_orders_reads(venue)
        placed = buy(client, "100")
        wait_until(lambda: client.status(client_order_id=placed["client_order_id"])[
            "status"] == "open", "the order open")
        # past the symbol's first read, which would race the stream to the fill
        wait_until(lambda: open_orders_reads(venue) > reads, "tracking's first read")
        rest_at(venue, "99")
        order = wait_until(lambda: filled(client, placed["client_order_id"]),
                           "the fill pushed")
        assert [step["source"] for step in fill_steps(order)] == ["stream"]
        after = stream_of(client)
        assert after["reconnects"] == before["reconnects"]
        assert daemon.stop() == 0
    rest_at(venue, "150")
