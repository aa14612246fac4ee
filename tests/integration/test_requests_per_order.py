"""Requests per order fall to what the exchange needs, counted by a real venue process.

A real orderd trades through its binance driver on `orderd paper-venue`, which lists
every API request it served with binance's weight (`GET /_venue/requests`): a market
order that fills at once costs its create alone.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from protocol.client import OrderdClient
from tests.helpers import (
    KEY,
    SECRET,
    DaemonProcess,
    VenueProcess,
    market_buy,
    running_daemon,
    wait_until,
)

CREATE = ("POST", "/api/v3/order")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Served = list[tuple[str, str, int]]


def quiet_schedule() -> str:
    """Scheduled reconciliation on a day that is neither today nor tomorrow (UTC): only
    the runs a test asks for send requests."""
    today = time.gmtime().tm_wday
    return f'[schedule]\ninterval = "weekly"\nday = "{DAYS[(today + 3) % 7]}"\n' \
           "[reconciliation]\nmin_age_s = 0.0\n"


def served(venue: VenueProcess) -> Served:
    """(method, path, weight) of every API request the venue served, oldest first."""
    with urllib.request.urlopen(venue.url + "/_venue/requests", timeout=10) as answer:
        body: dict[str, Any] = json.loads(answer.read())
    return [(m, p, w) for (m, p), w in zip(body["requests"], body["weights"], strict=True)]


def count(requests: Served, endpoint: tuple[str, str]) -> int:
    return sum(1 for method, path, _ in requests if (method, path) == endpoint)


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[VenueProcess]:
    """A venue of the test's own: every request it counts is the test's."""
    running = VenueProcess(tmp_path / "venue")
    yield running
    running.stop()


@pytest.fixture
def daemon(venue: VenueProcess, tmp_path: Path) -> Iterator[DaemonProcess]:
    exchanges = (f'[[exchanges]]\nname = "bx"\ndriver = "binance"\napi_url = "{venue.url}"\n'
                 f'api_key = "{KEY}"\nsecret = "{SECRET}"\n')
    (tmp_path / "orderd").mkdir()
    with running_daemon(tmp_path / "orderd", extra=quiet_schedule(),
                        exchanges=exchanges) as running:
        yield running


def trail(client: OrderdClient, cid: str, steps: int) -> list[dict[str, Any]]:
    """The order's confirmation trail once it has `steps` steps."""
    def grown() -> list[dict[str, Any]] | None:
        found: list[dict[str, Any]] = client.status(client_order_id=cid)["confirmation"]
        return found if len(found) >= steps else None

    return wait_until(grown, f"{steps} confirmation steps of {cid}")


def test_a_market_order_that_fills_at_once_costs_one_create(
        venue: VenueProcess, daemon: DaemonProcess) -> None:
    client = daemon.client()
    before = len(served(venue))
    orders = [market_buy("0.1", symbol, client_order_id=f"mk-{uuid.uuid4().hex[:12]}")
              for symbol in ("SOL/USD", "ETH/USD", "BTC/USD", "SOL/USD", "ETH/USD")]
    for order in orders:
        assert client.submit(order)["status"] == "filled"
    for order in orders:
        steps = trail(client, order["client_order_id"], 3)
        # every fact from the create's own (binance FULL) answer
        assert [(s["step"], s["source"]) for s in steps] == [
            ("ack", "create"), ("verified", "create"), ("fill", "create")]
    assert daemon.stop() == 0  # nothing the daemon would still send is left out
    requests = served(venue)[before:]
    assert [(m, p) for m, p, _ in requests] == [CREATE] * len(orders)
    weight = sum(w for _, _, w in requests)
    assert weight / len(orders) == 1.0  # the goal: at most 1.2 per market order

