"""Ambiguous and failed creates through real ccxt: each ends in the right state, once.

A real `orderd paper-venue` speaks binance; a real orderd trades on it with its
binance driver. Each fault is scripted on the venue for the next create, and the
order must end in the right state with exactly one order per client id on the
venue.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

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
LOOKUP = {"path": "/api/v3/order", "method": "GET"}
LAGGING_LOOKUPS = 60
"""More "not found" answers than lookups before the landing deadline (1 s recvWindow,
1 s skew allowance, 1 s timeout, a lookup every 0.2 s): the rest are cleared."""
FAST_RESOLUTION = """
[resolution]
interval_s = 0.2
window_s = 0.2
absent_needed = 2
[retry]
initial_delay = 0.05
max_delay = 0.2
"""


@pytest.fixture(scope="module")
def daemon(venue: VenueProcess,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    # a short recvWindow: an unknown create is proven absent only once it has passed
    exchanges = (f'[[exchanges]]\nname = "bx"\ndriver = "binance"\napi_url = "{venue.url}"\n'
                 f'api_key = "{KEY}"\nsecret = "{SECRET}"\ntimeout_ms = 1000\n'
                 "recv_window_ms = 1000\n")
    # scripted faults hit the next matching request: no stream catch-up may take one
    with running_daemon(tmp_path_factory.mktemp("orderd"), extra=FAST_RESOLUTION,
                        exchanges=exchanges, tracking="stream = false\n") as running:
        yield running


def settle(client: OrderdClient, cid: str, status: str) -> dict[str, Any]:
    """The order once it reached `status` (polling the daemon, bounded)."""

    def reached() -> dict[str, Any] | None:
        order = client.status(client_order_id=cid)
        return order if order["status"] == status else None

    return wait_until(reached, f"{cid} to become {status}")


@pytest.mark.parametrize("faults,attempts", [
    pytest.param([{**CREATE, "fault": "timeout_before_booking", "delay_s": 3}], 2,
                 id="timeout-before-booking"),
    pytest.param([{**CREATE, "fault": "timeout_after_booking", "delay_s": 3}], 1,
                 id="timeout-after-booking"),
    pytest.param([{**CREATE, "fault": "drop_after_booking"}], 1, id="dropped-after-booking"),
    pytest.param([{**CREATE, "fault": "http_503"}], 2, id="503"),
    pytest.param([{**CREATE, "fault": "http_429", "retry_after_s": 1}], 2,
                 id="429-retry-after"),
    pytest.param([{**CREATE, "fault": "code_1007"}], 1, id="binance-1007"),
])
def test_market_order_ends_filled_exactly_once(venue: VenueProcess, daemon: DaemonProcess,
                                               faults: list[dict[str, Any]],
                                               attempts: int) -> None:
    client = daemon.client()
    cid = f"fm-{uuid.uuid4().hex[:16]}"
    venue.script(*faults)
    client.submit(market_buy("0.1", "SOL/USD", client_order_id=cid), wait="durable")
    order = settle(client, cid, "filled")
    assert order["attempts"] == attempts
    assert [o["clientOrderId"] for o in venue.orders()].count(cid) == 1


def test_duplicate_rejection_on_resend_adopts_the_first(venue: VenueProcess,
                                                        daemon: DaemonProcess) -> None:
    """Lookups that lag past the create's landing deadline make the first attempt look
    absent; the re-send is refused as a duplicate, which proves the first landed: it is
    adopted, not placed twice."""
    client = daemon.client()
    cid = f"dup-{uuid.uuid4().hex[:16]}"
    creates = venue.requests().count(("POST", "/api/v3/order"))
    venue.script({**CREATE, "fault": "timeout_after_booking", "delay_s": 3},
                 *[{**LOOKUP, "fault": "lagging_not_found"}] * LAGGING_LOOKUPS)
    client.submit(resting_limit_buy("1", "10", "SOL/USD", client_order_id=cid),
                  wait="durable")
    wait_until(lambda: venue.requests().count(("POST", "/api/v3/order")) >= creates + 2,
               "the re-send")
    venue.script()  # the lookups see the order again
    order = settle(client, cid, "open")
    assert order["attempts"] == 2, "the re-send happened and was refused"
    booked = [o for o in venue.orders() if o["clientOrderId"] == cid]
    assert len(booked) == 1 and str(booked[0]["orderId"]) == order["order_id"]
    assert client.cancel(client_order_id=cid)["status"] == "canceled"


