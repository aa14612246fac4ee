"""Stopping and restarting keeps every order; SIGTERM exits cleanly."""

from __future__ import annotations

import signal
from pathlib import Path

from actors.exchange.drivers.paper import PaperVenue
from tests.helpers import DaemonProcess, market_buy, resting_limit_buy


def test_restart_keeps_every_order_and_the_venue_book(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path).start()
    client = daemon.client()
    placed = [client.submit(market_buy(client_order_id=f"keep-m{i}")) for i in range(5)]
    placed += [client.submit(resting_limit_buy(client_order_id=f"keep-l{i}")) for i in range(5)]
    # an exchange option in params is stored, and compared when the order is sent again
    post_only = resting_limit_buy(client_order_id="keep-p", params={"postOnly": True})
    placed.append(client.submit(post_only))
    durable = [client.submit(market_buy(client_order_id=f"keep-d{i}"), wait="durable")
               for i in range(20)]
    assert daemon.stop(signal.SIGTERM) == 0

    daemon.start()
    client = daemon.client()
    for order in placed:
        again = client.status(client_order_id=order["client_order_id"])
        assert again.pop("confirmation")[0]["step"] == "ack"
        assert again == order
    for order in durable:
        # acknowledged as recorded; resolved by the time it is asked again
        again = client.submit(market_buy(client_order_id=order["client_order_id"]))
        assert again["created_at"] == order["created_at"]
    again = client.submit(post_only)
    assert again["order_id"] == placed[-1]["order_id"], "same spec after a restart"
    resting = client.status(client_order_id="keep-l0")
    assert client.cancel(order_id=resting["order_id"])["status"] == "canceled"
    assert daemon.stop(signal.SIGINT) == 0

    venue = PaperVenue(daemon.state_dir / "paper-paper.sqlite")
    try:
        ids = [o["clientOrderId"] for o in venue.all_orders()]
    finally:
        venue.close()
    expected = {o["client_order_id"] for o in placed + durable}
    assert sorted(ids) == sorted(expected), "the venue holds each order exactly once"


def test_sigterm_finishes_work_in_flight(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path).start()
    client = daemon.client()
    orders = [market_buy("0.1", "SOL/USD", client_order_id=f"fly-{i}") for i in range(200)]
    ids = [client.send("submit", {"order": order}) for order in orders]
    answered = {}
    first = client.receive(timeout_s=20)
    answered[first["id"]] = first
    assert daemon.process is not None
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.process.wait(timeout=30) == 0
    # the process is gone: whatever it answered is already on its way
    while len(answered) < len(ids) and client._socket.poll(200):
        reply = client.receive()
        answered[reply["id"]] = reply
    daemon.stop()
    acknowledged = [r["result"]["order"]["client_order_id"] for r in answered.values()
                    if r["ok"]]
    refused = [r["error"]["code"] for r in answered.values() if not r["ok"]]
    assert set(refused) <= {"halted"}, "a stopping daemon refuses submits, retryably"
    assert acknowledged, "work in flight was finished"
    daemon.start()
    client = daemon.client()
    for client_order_id in acknowledged:
        assert client.status(client_order_id=client_order_id)["status"] == "filled"
    daemon.stop()
