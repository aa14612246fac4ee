"""Orders through a real daemon: round trips, idempotency, paging, events."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest
import zmq

from protocol.client import EventSubscriber
from protocol.errors import ProtocolError
from tests.helpers import DaemonProcess, market_buy, resting_limit_buy


def cid() -> str:
    return f"t-{uuid.uuid4().hex[:20]}"


def test_ping_reports_version_and_ready(daemon: DaemonProcess) -> None:
    result = daemon.client().ping()
    assert isinstance(result["version"], str)
    assert result["state"] == "ready"
    assert result["uptime_s"] >= 0


def test_market_order_fills_with_fee(daemon: DaemonProcess) -> None:
    order = daemon.client().submit(market_buy("0.01", client_order_id=cid()))
    assert order["status"] == "filled"
    assert Decimal(order["filled"]) == Decimal("0.01")
    assert Decimal(order["remaining"]) == 0
    assert isinstance(order["order_id"], str)
    assert order["fee"]["currency"] == "USD" and Decimal(order["fee"]["cost"]) > 0
    assert Decimal(order["average_price"]) > 0
    assert order["attempts"] == 1 and order["last_error"] is None


def test_limit_order_rests_then_cancels(daemon: DaemonProcess) -> None:
    client = daemon.client()
    placed = client.submit(resting_limit_buy(client_order_id=cid()))
    assert placed["status"] == "open"
    assert placed["time_in_force"] == "GTC"
    canceled = client.cancel(client_order_id=placed["client_order_id"])
    assert canceled["status"] == "canceled"
    assert client.cancel(order_id=placed["order_id"])["status"] == "canceled"
    assert client.status(order_id=placed["order_id"])["status"] == "canceled"


def test_cancel_of_filled_order_is_not_cancelable(daemon: DaemonProcess) -> None:
    client = daemon.client()
    filled = client.submit(market_buy(client_order_id=cid()))
    with pytest.raises(ProtocolError) as caught:
        client.cancel(client_order_id=filled["client_order_id"])
    assert caught.value.code == "not_cancelable"


def test_resubmit_same_spec_returns_same_order(daemon: DaemonProcess) -> None:
    client = daemon.client()
    order_id = cid()
    first = client.submit(resting_limit_buy("0.1", "1000", client_order_id=order_id))
    # equal after normalising: numbers vs strings, explicit defaults
    again = client.submit({"symbol": "BTC/USD", "side": "buy", "type": "limit",
                           "amount": 0.10, "price": "1000.00", "client_order_id": order_id,
                           "exchange": "paper", "time_in_force": "GTC"})
    assert again["order_id"] == first["order_id"]
    assert again["created_at"] == first["created_at"]
    assert again["attempts"] == 1
    client.cancel(client_order_id=order_id)


def test_same_id_other_spec_is_refused(daemon: DaemonProcess) -> None:
    client = daemon.client()
    order_id = cid()
    client.submit(market_buy("0.01", client_order_id=order_id))
    with pytest.raises(ProtocolError) as caught:
        client.submit(market_buy("0.02", client_order_id=order_id))
    assert caught.value.code == "duplicate_client_order_id"
    assert caught.value.details["field"] == "client_order_id"


def test_daemon_makes_a_client_order_id(daemon: DaemonProcess) -> None:
    order = daemon.client().submit(market_buy())
    assert order["client_order_id"].startswith("od-")


def test_wait_durable_replies_pending_submit(daemon: DaemonProcess) -> None:
    client = daemon.client()
    order = client.submit(market_buy(client_order_id=cid()), wait="durable")
    assert order["status"] == "pending_submit" and order["order_id"] is None
    # a re-send with wait=accepted returns the known outcome
    final = client.submit(market_buy(client_order_id=order["client_order_id"]))
    assert final["status"] == "filled"


def test_list_pages_through_every_order(daemon: DaemonProcess) -> None:
    client = daemon.client()
    symbol_orders = [client.submit(market_buy("0.1", symbol="SOL/USD", client_order_id=cid()))
                     for _ in range(5)]
    seen: list[str] = []
    after = None
    while True:
        page = client.list(symbol="SOL/USD", limit=2, after=after)
        assert len(page["orders"]) <= 2
        seen += [o["client_order_id"] for o in page["orders"]]
        after = page["next"]
        if after is None:
            break
    assert [o["client_order_id"] for o in symbol_orders] == seen[-5:]
    filled = client.list(status=["filled"], symbol="SOL/USD", limit=1000)
    assert {o["status"] for o in filled["orders"]} == {"filled"}


def test_events_follow_each_status_with_consecutive_seq(daemon: DaemonProcess) -> None:
    subscriber = EventSubscriber(daemon.events)
    try:
        # a slow joiner misses events until the subscription is in place
        warmup = daemon.client()
        for _ in range(100):
            warmup.submit(market_buy(client_order_id=cid()), wait="durable")
            try:
                subscriber.receive(timeout_s=0.1)
                break
            except Exception:  # noqa: BLE001 - not subscribed yet
                continue
        order_id = cid()
        daemon.client().submit(market_buy(client_order_id=order_id))
        seqs, statuses = [], []
        while "filled" not in statuses:
            topic, event = subscriber.receive()
            seqs.append(event["seq"])
            if event["order"]["client_order_id"] == order_id:
                statuses.append(event["order"]["status"])
                assert topic == f"order.{event['order']['status']}"
                assert event["v"] == 1
        assert statuses == ["pending_submit", "filled"]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    finally:
        subscriber.close()


def test_req_socket_client_works(daemon: DaemonProcess) -> None:
    req: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.connect(daemon.control)
    try:
        req.send(b'{"v": 1, "id": "req-1", "cmd": "ping"}')
        assert req.poll(10_000)
        reply = json.loads(req.recv())
        assert reply["id"] == "req-1" and reply["ok"] is True
    finally:
        req.close()


def test_health_lists_actors_and_circuits(daemon: DaemonProcess) -> None:
    health = daemon.client().health()
    assert health["state"] == "ready"
    assert health["actors"]["order"] == {"alive": True, "restarts": 0}
    assert health["actors"]["exchange.paper.0"]["alive"] is True
    assert health["actors"]["circuit"]["alive"] is True
    assert health["circuits"]["paper"]["state"] == "closed"


def test_halt_refuses_submit_until_resume(daemon: DaemonProcess) -> None:
    client = daemon.client()
    assert client.halt("test")["state"] == "halted"
    try:
        with pytest.raises(ProtocolError) as caught:
            client.submit(market_buy(client_order_id=cid()))
        assert caught.value.code == "halted" and caught.value.retryable
        placed = client.list(limit=1)
        assert "orders" in placed  # reads still work
    finally:
        assert client.resume()["state"] == "ready"
    assert client.submit(market_buy(client_order_id=cid()))["status"] == "filled"


def test_exchange_rejection_is_an_outcome(daemon: DaemonProcess) -> None:
    order = daemon.client().submit(market_buy("5000", client_order_id=cid()))
    assert order["status"] == "rejected"
    assert order["last_error"]["code"] == "insufficient_funds"
