"""Requests per order fall to what the exchange needs, counted by a real venue process.

A real orderd trades through its binance driver on `orderd paper-venue`, which lists
every API request it served with binance's weight (`GET /_venue/requests`): a market
order that fills at once costs its create alone, resting orders are tracked with one
`openOrders` per symbol, an order that leaves that list is looked up once, and
reconciliation reads trades per symbol, never per order.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors.exchange.drivers.ccxt_driver import DriverSettings, build_binance
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

CREATE = ("POST", "/api/v3/order")
LOOKUP = ("GET", "/api/v3/order")
OPEN_ORDERS = ("GET", "/api/v3/openOrders")
MY_TRADES = ("GET", "/api/v3/myTrades")
INTERVAL_S = 0.2
"""The tests' [tracking] intervals (tests.helpers.write_config)."""
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
    # these count REST tracking's requests: the user-data stream is off;
    # tests/integration/test_daemon_stream.py has it on
    exchanges = (f'[[exchanges]]\nname = "bx"\ndriver = "binance"\napi_url = "{venue.url}"\n'
                 f'api_key = "{KEY}"\nsecret = "{SECRET}"\n')
    (tmp_path / "orderd").mkdir()
    with running_daemon(tmp_path / "orderd", extra=quiet_schedule(),
                        exchanges=exchanges, tracking="stream = false\n") as running:
        yield running


def trail(client: OrderdClient, cid: str, steps: int) -> list[dict[str, Any]]:
    """The order's confirmation trail once it has `steps` steps."""
    def grown() -> list[dict[str, Any]] | None:
        found: list[dict[str, Any]] = client.status(client_order_id=cid)["confirmation"]
        return found if len(found) >= steps else None

    return wait_until(grown, f"{steps} confirmation steps of {cid}")


def settle(client: OrderdClient, cid: str, status: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        order = client.status(client_order_id=cid)
        return order if order["status"] == status else None

    return wait_until(reached, f"{cid} to become {status}")


def more_reads(venue: VenueProcess, reads: int) -> Served:
    """The requests served once `reads` more openOrders than now were (tracking went on
    that many symbol reads): a barrier after which a lookup it would make is seen."""
    start = count(served(venue), OPEN_ORDERS)

    def after() -> Served | None:
        now = served(venue)
        return now if count(now, OPEN_ORDERS) >= start + reads else None

    return wait_until(after, f"{reads} more openOrders")


def set_price(venue: VenueProcess, symbol: str, price: str) -> None:
    body = json.dumps({"symbol": symbol, "price": price}).encode()
    request = urllib.request.Request(venue.url + "/_venue/price", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()


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


def test_resting_orders_are_tracked_with_one_read_per_symbol(
        venue: VenueProcess, daemon: DaemonProcess) -> None:
    client = daemon.client()
    placed = []
    for n in range(10):
        symbol, price = ("BTC/USD", "1000") if n % 2 else ("ETH/USD", "100")
        order = client.submit(resting_limit_buy("0.1", price, symbol,
                                                client_order_id=f"rest{n}-{uuid.uuid4().hex[:8]}"))
        assert order["status"] == "open"
        placed.append(order["client_order_id"])
    for cid in placed:  # verified by the create's own answer; nothing looked up since
        assert [s["source"] for s in trail(client, cid, 2)] == ["create", "create"]
    start, started = len(served(venue)), time.monotonic()
    reads = 20
    requests = more_reads(venue, reads)[start:]
    elapsed = time.monotonic() - started
    assert {(m, p) for m, p, _ in requests} == {OPEN_ORDERS}, "no lookup of a resting order"
    assert {w for _, _, w in requests} == {6}, "openOrders of one symbol (80 for all)"
    # two symbols: two reads an interval, whatever the number of orders in them
    assert len(requests) <= 2 * (elapsed / INTERVAL_S + 2)
    for cid in placed:
        assert client.status(client_order_id=cid)["status"] == "open"


def test_an_order_filled_or_canceled_behind_the_daemons_back_is_looked_up_once(
        venue: VenueProcess, daemon: DaemonProcess) -> None:
    client = daemon.client()
    to_fill = client.submit(resting_limit_buy("2", "10", "SOL/USD",
                                              client_order_id=f"fill-{uuid.uuid4().hex[:8]}"))
    to_cancel = client.submit(resting_limit_buy("0.1", "100", "ETH/USD",
                                                client_order_id=f"cxl-{uuid.uuid4().hex[:8]}"))
    stays = client.submit(resting_limit_buy("0.01", "1000", "BTC/USD",
                                            client_order_id=f"stay-{uuid.uuid4().hex[:8]}"))
    start = len(served(venue))
    outside = build_binance(DriverSettings(KEY, SECRET, venue.url))
    outside.load_markets()
    outside.cancel_order(to_cancel["order_id"], "ETH/USD")  # someone else's cancel
    set_price(venue, "SOL/USD", "9.99")  # the buy at 10 fills
    canceled = settle(client, to_cancel["client_order_id"], "canceled")
    filled = settle(client, to_fill["client_order_id"], "filled")
    requests = more_reads(venue, 2 * 3)[start:]  # two more rounds of every symbol
    assert count(requests, LOOKUP) == 2, "one lookup for each order that left the list"
    assert [w for m, p, w in requests if (m, p) == MY_TRADES] == [5], \
        "the filled one's trades, by its order id"
    fills = [s for s in filled["confirmation"] if s["step"] == "fill"]
    assert len(fills) == 1 and fills[0]["source"] == "trades"
    assert Decimal(fills[0]["amount"]) == Decimal(filled["filled"]) == Decimal("2")
    assert Decimal(filled["fee"]["cost"]) > 0
    assert not [s for s in canceled["confirmation"] if s["step"] == "fill"]
    assert client.status(client_order_id=stays["client_order_id"])["status"] == "open"


def test_reconciliation_reads_trades_per_symbol_and_finds_every_one(
        venue: VenueProcess, daemon: DaemonProcess) -> None:
    client = daemon.client()
    amounts = {"SOL/USD": "0.1", "ETH/USD": "0.01", "BTC/USD": "0.001"}
    for symbol in (*amounts, "SOL/USD"):
        assert client.submit(market_buy(amounts[symbol], symbol))["status"] == "filled"
    resting = client.submit(resting_limit_buy("1", "10", "SOL/USD"))
    set_price(venue, "SOL/USD", "9.99")
    settle(client, resting["client_order_id"], "filled")
    outside = build_binance(DriverSettings(KEY, SECRET, venue.url))
    stray = f"od-{uuid.uuid4().hex}"  # ours by its prefix, but not in the ledger
    outside.create_order("BTC/USD", "market", "buy", 0.001, None, {"newClientOrderId": stray})
    start = len(served(venue))
    section = client.reconcile()["report"]["exchanges"]["bx"]
    assert section["errors"] == []
    assert section["counts"]["trades"] == 6
    assert [(d["kind"], d["client_order_id"]) for d in section["discrepancies"]] == [
        ("unknown_on_exchange", stray)]
    assert [r["client_order_id"] for r in section["repairs"] if r["applied"]] == [stray]
    trade_reads = [w for m, p, w in served(venue)[start:] if (m, p) == MY_TRADES]
    assert trade_reads == [20] * len(amounts), "one page per symbol, none per order"
    again = client.reconcile()["report"]["exchanges"]["bx"]
    assert again["errors"] == [] and again["discrepancies"] == []
    assert again["counts"]["trades"] == 0, "read from each symbol's cursor, by trade id"
