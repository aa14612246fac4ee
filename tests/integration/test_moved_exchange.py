"""A daemon whose exchange entry is pointed at another address while it was down, with
orders resting where it pointed before: those orders are set aside (never looked up,
canceled or resolved at the new address) until the entry is pointed back; a key rotated
on the same account changes nothing."""

from __future__ import annotations

import signal
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

from actors.exchange.drivers.ccxt_driver import DriverSettings, build_binance
from protocol.errors import ProtocolError
from tests.helpers import (
    KEY,
    SECRET,
    DaemonProcess,
    VenueProcess,
    free_port,
    market_buy,
    resting_limit_buy,
    wait_until,
)

ALERT = "ALERT orders_of_moved_exchange"
LOOKUPS = (("GET", "/api/v3/order"), ("DELETE", "/api/v3/order"))
"""Requests that name one order: none of the orders set aside may reach the new address."""


def entry(url: str, key: str = KEY, secret: str = SECRET) -> str:
    return (f'[[exchanges]]\nname = "bx"\ndriver = "binance"\napi_url = "{url}"\n'
            f'api_key = "{key}"\nsecret = "{secret}"\n')


def run(workdir: Path, url: str, key: str = KEY, secret: str = SECRET,
        extra: str = "") -> DaemonProcess:
    """A daemon on the state of `workdir` whose entry bx talks to `url` with `key`."""
    return DaemonProcess(workdir, exchanges=entry(url, key, secret), extra=extra).start()


def create_answer_lost(daemon: DaemonProcess, cid: str) -> None:
    """As a crash between the create's send and its answer leaves the order: unknown,
    with no exchange id (the daemon is down)."""
    with sqlite3.connect(daemon.state_dir / "ledger.sqlite") as db:
        db.execute("UPDATE orders SET status = 'unknown', order_id = NULL "
                   "WHERE client_order_id = ?", (cid,))


def on_venue(venue: VenueProcess) -> dict[str, Any]:
    return {o["clientOrderId"]: o for o in venue.orders()}


@pytest.fixture
def venues(tmp_path: Path) -> Any:
    first, second = VenueProcess(tmp_path / "a"), VenueProcess(tmp_path / "b")
    yield first, second
    first.stop(), second.stop()


def test_orders_of_an_entry_moved_to_another_address_are_set_aside_until_it_is_back(
        tmp_path: Path, venues: tuple[VenueProcess, VenueProcess]) -> None:
    first, second = venues
    daemon = run(tmp_path, first.url)
    client = daemon.client()
    assert client.submit(resting_limit_buy(client_order_id="rest-1"))["status"] == "open"
    assert client.submit(resting_limit_buy(client_order_id="lost-1"))["status"] == "open"
    assert daemon.stop() == 0
    create_answer_lost(daemon, "lost-1")

    daemon = run(tmp_path, second.url)  # the entry bx now talks to another address
    client = daemon.client()
    log = daemon.wait_for_log(ALERT)
    assert "2 live orders of exchange 'bx'" in log and "point the entry back" in log
    # a reconciliation of bx at the new address leaves them out: no lookup there
    client.reconcile(exchange="bx")
    assert [client.status(client_order_id=c)["status"] for c in ("rest-1", "lost-1")] == [
        "open", "unknown"]
    with pytest.raises(ProtocolError) as refused:
        client.cancel(client_order_id="rest-1")
    assert refused.value.code == "unknown_exchange"
    assert not [r for r in second.requests() if r in LOOKUPS]
    # the entry trades at its new address meanwhile
    assert client.submit(market_buy(client_order_id="new-1"))["status"] == "filled"
    assert set(on_venue(second)) == {"new-1"}
    assert daemon.stop() == 0

    daemon = run(tmp_path, first.url)  # pointed back: managed again
    client = daemon.client()
    wait_until(lambda: client.status(client_order_id="lost-1")["status"] == "open",
               "the unknown order found at its address")
    for cid in ("rest-1", "lost-1"):
        assert client.cancel(client_order_id=cid)["status"] == "canceled"
    assert {c: o["status"] for c, o in on_venue(first).items()} == {
        "rest-1": "CANCELED", "lost-1": "CANCELED"}
    assert client.status(client_order_id="new-1")["status"] == "filled"
    assert daemon.stop(signal.SIGTERM) == 0
    assert daemon.log.read_text().count(ALERT) == 1


def test_a_key_rotated_on_the_same_account_keeps_its_orders_managed(tmp_path: Path) -> None:
    venue = VenueProcess(tmp_path / "venue", "--listen", f"127.0.0.1:{free_port()}")
    try:
        daemon = run(tmp_path, venue.url)
        client = daemon.client()
        assert client.submit(resting_limit_buy(client_order_id="rest-1"))["status"] == "open"
        assert daemon.stop() == 0
        venue.stop()
        # the same account at the same address, opened by a new key pair
        venue = VenueProcess(tmp_path / "venue", "--listen", venue.url.split("//")[1],
                             "--api-key", "rotated-key", "--secret", "rotated-secret")
        daemon = run(tmp_path, venue.url, "rotated-key", "rotated-secret")
        client = daemon.client()
        assert client.cancel(client_order_id="rest-1")["status"] == "canceled"
        assert on_venue(venue)["rest-1"]["status"] == "CANCELED"
        assert daemon.stop() == 0
        assert "orders_of_moved_exchange" not in daemon.log.read_text()
    finally:
        venue.stop()


def test_reconciliation_reads_the_trades_of_the_address_an_entry_moved_to(
        tmp_path: Path, venues: tuple[VenueProcess, VenueProcess]) -> None:
    """Trade cursors are of the address they were read at: binance's trade ids are
    numbered per venue, so one from the first address would skip the second's trades
    (testnet's ids are far below live's) and their fills would never be found."""
    first, second = venues
    now = "[reconciliation]\nmin_age_s = 0.0\n"
    daemon = run(tmp_path, first.url, extra=now)
    client = daemon.client()
    placed = [client.submit(market_buy()) for _ in range(3)]
    assert [o["status"] for o in placed] == ["filled"] * 3
    assert client.reconcile(exchange="bx")["report"]["exchanges"]["bx"]["counts"]["trades"]
    assert daemon.stop() == 0

    daemon = run(tmp_path, second.url, extra=now)
    client = daemon.client()
    assert client.submit(market_buy(client_order_id="new-1"))["status"] == "filled"
    outside = build_binance(DriverSettings(KEY, SECRET, second.url))
    stray = f"od-{uuid.uuid4().hex}"  # ours by its prefix, but not in the ledger
    outside.create_order("BTC/USD", "market", "buy", 0.001, None,
                         {"newClientOrderId": stray})
    section = client.reconcile(exchange="bx")["report"]["exchanges"]["bx"]
    assert section["errors"] == []
    assert section["counts"]["trades"] == 2
    # the second venue numbers its orders anew: the stray's id is one of the first's,
    # and its trade is no fill of that order
    assert [(d["kind"], d["client_order_id"]) for d in section["discrepancies"]] == [
        ("unknown_on_exchange", stray)]
    assert [client.status(client_order_id=o["client_order_id"])["fee"] for o in placed] == [
        o["fee"] for o in placed]
    assert daemon.stop() == 0
