"""Creates whose outcome is unclear, through real ccxt and a real venue process.

A create held in transit may still be booked until its signed request's recvWindow
has passed; an unreadable answer is no order id; a trade listed twice never fills
past the amount. Each fault is scripted on a real `orderd paper-venue` for the next
matching request, and a real orderd trades on it with its binance driver.
"""

from __future__ import annotations

import json
import signal
import time
import urllib.request
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors.reconcile.reports import read_reports
from protocol.client import OrderdClient
from tests.helpers import (
    KEY,
    SECRET,
    DaemonProcess,
    VenueProcess,
    market_buy,
    resting_limit_buy,
    running_daemon,
    wait_until,
)

CREATE = {"path": "/api/v3/order", "method": "POST"}
TRADES = {"path": "/api/v3/myTrades", "method": "GET"}
RECV_WINDOW_S = 2.5
TIMEOUT_S = 1.0
SKEW_S = 1.0
LANDS_UNTIL_S = RECV_WINDOW_S + SKEW_S + TIMEOUT_S
"""After its signing, how long a create may land (the daemon's landing deadline)."""
SLACK_S = 0.2
"""Tolerance on the venue's booking time (whole milliseconds); a second create sent
after "not found" lookups would be booked long before the held one."""
CONFIG = f"""
[resolution]
interval_s = 0.2
window_s = 0.2
absent_needed = 2
clock_skew_s = {SKEW_S}
[retry]
initial_delay = 0.05
max_delay = 0.2
[reconciliation]
min_age_s = 0.0
"""


def exchanges(venue: VenueProcess, recv_window_s: float = RECV_WINDOW_S) -> str:
    return (f'[[exchanges]]\nname = "bx"\ndriver = "binance"\napi_url = "{venue.url}"\n'
            f'api_key = "{KEY}"\nsecret = "{SECRET}"\ntimeout_ms = {int(TIMEOUT_S * 1000)}\n'
            f"recv_window_ms = {int(recv_window_s * 1000)}\n")


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VenueProcess]:
    running = VenueProcess(tmp_path_factory.mktemp("venue"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def daemon(venue: VenueProcess,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    with running_daemon(tmp_path_factory.mktemp("orderd"), extra=CONFIG,
                        exchanges=exchanges(venue)) as running:
        yield running


@pytest.fixture(scope="module")
def polling_daemon(venue: VenueProcess,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """A daemon that learns of fills by REST alone (its user-data stream off), for what
    only REST shows: an order's trades as the trade listing gives them. With the stream on,
    the pushed trade counts the fill and no listing is asked for."""
    with running_daemon(tmp_path_factory.mktemp("orderd-polling"), extra=CONFIG,
                        exchanges=exchanges(venue), tracking="stream = false\n") as running:
        yield running


def settle(client: OrderdClient, cid: str, status: str) -> dict[str, Any]:
    """The order once it reached `status` (polling the daemon, bounded)."""

    def reached() -> dict[str, Any] | None:
        order = client.status(client_order_id=cid)
        return order if order["status"] == status else None

    return wait_until(reached, f"{cid} to become {status}")


def booked(venue: VenueProcess, cid: str) -> list[dict[str, Any]]:
    return [o for o in venue.orders() if o["clientOrderId"] == cid]


def lookups(venue: VenueProcess) -> int:
    return venue.requests().count(("GET", "/api/v3/order"))


def test_a_create_booked_late_in_its_window_is_placed_once(
        venue: VenueProcess, daemon: DaemonProcess) -> None:
    """Held until half a second before its recvWindow ends, the create is booked after
    "not found" lookups that once proved it absent (and it was sent twice)."""
    client = daemon.client()
    cid = f"late-{uuid.uuid4().hex[:16]}"
    hold_s = RECV_WINDOW_S - 0.5
    venue.script({**CREATE, "fault": "late_booking", "delay_s": hold_s})
    before, sent_at = lookups(venue), time.time()
    client.submit(market_buy("0.1", "SOL/USD", client_order_id=cid), wait="durable")
    order = settle(client, cid, "filled")
    [placed] = booked(venue, cid)
    assert placed["time"] >= (sent_at + hold_s - SLACK_S) * 1000, "the held one, no other"
    assert str(placed["orderId"]) == order["order_id"] and order["attempts"] == 1
    assert lookups(venue) - before >= 3, "looked up, and not found, before it was booked"


def test_a_create_held_past_its_window_is_refused_then_sent_again_once(
        venue: VenueProcess, daemon: DaemonProcess) -> None:
    """Arriving after its recvWindow, the create is refused by the exchange: proven
    absent once the landing deadline has passed, it is sent again, once."""
    client = daemon.client()
    cid = f"stale-{uuid.uuid4().hex[:16]}"
    venue.script({**CREATE, "fault": "late_booking", "delay_s": RECV_WINDOW_S + 0.5})
    started = time.monotonic()
    client.submit(market_buy("0.1", "SOL/USD", client_order_id=cid), wait="durable")
    order = settle(client, cid, "filled")
    assert time.monotonic() - started >= LANDS_UNTIL_S, "not sent again before the deadline"
    assert order["attempts"] == 2
    assert len(booked(venue, cid)) == 1


@pytest.mark.parametrize("fault", ["garbage_after_booking", "no_id_after_booking"])
def test_an_unreadable_answer_to_a_create_is_resolved_by_lookup(
        venue: VenueProcess, daemon: DaemonProcess, fault: str) -> None:
    client = daemon.client()
    cid = f"garb-{uuid.uuid4().hex[:16]}"
    venue.script({**CREATE, "fault": fault})
    client.submit(market_buy("0.1", "SOL/USD", client_order_id=cid), wait="durable")
    order = settle(client, cid, "filled")
    [placed] = booked(venue, cid)
    assert order["order_id"] == str(placed["orderId"]) and order["attempts"] == 1
    assert Decimal(order["filled"]) == Decimal("0.1")
    assert order["last_error"]["code"] == "bad_response"


def set_price(venue: VenueProcess, symbol: str, price: str) -> None:
    body = json.dumps({"symbol": symbol, "price": price}).encode()
    request = urllib.request.Request(venue.url + "/_venue/price", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()


def overfilled(client: OrderdClient, cid: str) -> dict[str, Any]:
    def seen() -> dict[str, Any] | None:
        order = client.status(client_order_id=cid)
        return order if any(s["step"] == "overfill" for s in order["confirmation"]) else None

    return wait_until(seen, f"{cid}'s overfill")


@pytest.mark.parametrize("where", ["create_answer", "order_trades"])
def test_trades_listed_twice_never_fill_past_the_amount(
        venue: VenueProcess, daemon: DaemonProcess, polling_daemon: DaemonProcess,
        where: str) -> None:
    if where == "order_trades":
        daemon = polling_daemon
    client = daemon.client()
    cid, amount = f"over-{uuid.uuid4().hex[:16]}", Decimal("0.1")
    if where == "create_answer":  # binance's FULL answer lists the fills of a market order
        venue.script({**CREATE, "fault": "duplicate_trades"})
        client.submit(market_buy(str(amount), "ETH/USD", client_order_id=cid))
    else:  # a resting order filled later: its trades are fetched
        placed = client.submit(resting_limit_buy(str(amount), "100", "ETH/USD",
                                                 client_order_id=cid))
        assert placed["status"] == "open"
        venue.script({**TRADES, "fault": "duplicate_trades"})
        set_price(venue, "ETH/USD", "99")
    order = overfilled(client, cid)
    assert order["status"] == "filled" and Decimal(order["filled"]) == amount
    steps = [s["step"] for s in order["confirmation"]]
    assert steps.count("fill") == 1 and steps.count("overfill") == 1
    daemon.wait_for_log(f"order {cid}: trade")
    # and an alert (repeats held back), which the metrics actor logs after that line
    log = daemon.wait_for_log("ALERT order_overfill [critical]")
    assert "ALERT order_overfill [critical]" in log

    def reported() -> list[dict[str, Any]]:
        return [entry for report in read_reports(daemon.state_dir / "reconciliation.jsonl")
                for entry in report["exchanges"].get("bx", {}).get("discrepancies", [])
                if entry["client_order_id"] == cid]

    [entry] = wait_until(reported, "the overfill in the reconciliation reports")
    assert entry["kind"] == "overfill" and entry["repair"] is False
    assert Decimal(entry["ledger"]["filled"]) == amount
    assert Decimal(entry["exchange"]["filled"]) == 2 * amount


def test_a_late_create_is_not_sent_twice_across_a_kill_9(tmp_path: Path) -> None:
    """The daemon dies while the create is held in transit, after lookups found
    nothing; the restarted one keeps looking, from the signing time the ledger holds,
    until the create lands, and never sends it again."""
    recv_window_s = 6.0
    venue = VenueProcess(tmp_path / "venue")
    (tmp_path / "orderd").mkdir()
    daemon = DaemonProcess(tmp_path / "orderd", extra=CONFIG,
                           exchanges=exchanges(venue, recv_window_s))
    try:
        client = daemon.start().client()
        cid = f"kill-{uuid.uuid4().hex[:16]}"
        hold_s = recv_window_s - 0.5
        venue.script({**CREATE, "fault": "late_booking", "delay_s": hold_s})
        before, sent_at = lookups(venue), time.time()
        client.submit(market_buy("0.1", "SOL/USD", client_order_id=cid), wait="durable")
        wait_until(lambda: lookups(venue) - before >= 2, "lookups that find nothing")
        daemon.stop(signal.SIGKILL)
        restarted_at = time.time()
        client = daemon.start().client()
        order = settle(client, cid, "filled")
        [placed] = booked(venue, cid)
        assert placed["time"] >= (sent_at + hold_s - SLACK_S) * 1000, "the held one, no other"
        assert restarted_at * 1000 < placed["time"], "it landed while the new daemon looked"
        assert order["order_id"] == str(placed["orderId"])
        assert daemon.stop() == 0
    finally:
        if daemon.process is not None and daemon.process.poll() is None:
            daemon.stop(signal.SIGKILL)
        venue.stop()
