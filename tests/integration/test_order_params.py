"""`params` is an allowlist: a real orderd on `orderd paper-venue` with its binance
driver refuses every other key before anything is recorded or sent, serves the calm
client behind it, sends postOnly as binance takes it, and never sends an order whose
recorded params it no longer takes."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from protocol.client import OrderdClient
from protocol.errors import ProtocolError
from tests.helpers import (
    KEY,
    SECRET,
    DaemonProcess,
    VenueProcess,
    resting_limit_buy,
    running_daemon,
    wait_until,
)
from tests.recon_support import ledger_order, seed_ledger

CREATE = ("POST", "/api/v3/order")
# the hostile params: each would change what is sent after the risk check
# and the ledger saw the order, or send a client order id other than ours
HOSTILE = [
    ({"quantity": "5"}, "quantity"),
    ({"side": "SELL"}, "side"),
    ({"symbol": "ETHUSD"}, "symbol"),
    ({"clientAlgoId": "x"}, "clientAlgoId"),
    ({"newClientOrderId": "x"}, "newClientOrderId"),
    ({"quoteOrderQty": "5000"}, "quoteOrderQty"),
    ({"stopPrice": "1"}, "stopPrice"),
    ({"note": "unlisted"}, "note"),
    ({"postOnly": "true"}, "postOnly"),  # an allowed key of the wrong type
]


def exchange_section(venue: VenueProcess, extra: str = "") -> str:
    return (f'[[exchanges]]\nname = "bx"\ndriver = "binance"\napi_url = "{venue.url}"\n'
            f'api_key = "{KEY}"\nsecret = "{SECRET}"\n{extra}')


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def sol_limit(price: str, cid: str, **extra: Any) -> dict[str, Any]:
    """0.2 SOL: a notional of 10 USD at 50 (resting), 80 at 400 (taking at once)."""
    return resting_limit_buy("0.2", price, "SOL/USD", client_order_id=cid, **extra)


def on_venue(venue: VenueProcess, cid: str) -> list[dict[str, Any]]:
    return [o for o in venue.orders() if o["clientOrderId"] == cid]


def assert_not_recorded(client: OrderdClient, cid: str) -> None:
    with pytest.raises(ProtocolError) as missing:
        client.status(client_order_id=cid)
    assert missing.value.code == "not_found"


@pytest.fixture(scope="module")
def daemon(venue: VenueProcess, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[DaemonProcess]:
    # the limits the hostile params got around
    risk = '[exchanges.risk]\nmax_order_notional = 100.0\nsymbols = ["SOL/USD"]\n'
    with running_daemon(tmp_path_factory.mktemp("orderd"),
                        exchanges=exchange_section(venue, risk)) as running:
        yield running
        assert running.stop() == 0


@pytest.mark.parametrize("params,key", HOSTILE)
def test_hostile_params_are_refused_before_anything_is_recorded_or_sent(
        venue: VenueProcess, daemon: DaemonProcess, params: dict[str, Any], key: str) -> None:
    hostile, calm = daemon.client(), daemon.client()
    hostile_id, calm_id = new_id("h"), new_id("c")
    sent_before = venue.requests().count(CREATE)
    # the calm client's ordinary submit goes right behind the hostile one
    hostile.send("submit", {"order": sol_limit("50", hostile_id, params=params)})
    calm.send("submit", {"order": sol_limit("50", calm_id)})
    refused = hostile.receive()
    assert refused["ok"] is False
    assert refused["error"]["code"] == "invalid_order" and refused["error"]["retryable"] is False
    assert refused["error"]["details"] == {"field": f"params.{key}"}
    served = calm.receive()
    assert served["ok"] is True and served["result"]["order"]["status"] == "open"
    assert venue.requests().count(CREATE) == sent_before + 1, "only the calm order was sent"
    assert on_venue(venue, hostile_id) == []
    assert [o["status"] for o in on_venue(venue, calm_id)] == ["NEW"]
    assert_not_recorded(hostile, hostile_id)
    assert calm.cancel(client_order_id=calm_id)["status"] == "canceled"


def test_post_only_rests_on_the_venue_or_is_rejected_never_taking(
        venue: VenueProcess, daemon: DaemonProcess) -> None:
    client = daemon.client()
    maker = sol_limit("50", new_id("po"), params={"postOnly": True})
    rests = client.submit(maker)
    assert rests["status"] == "open" and rests["last_error"] is None
    [booked] = on_venue(venue, rests["client_order_id"])
    assert booked["status"] == "NEW" and booked["origQty"] == "0.2" and booked["price"] == "50"

    def verified() -> dict[str, Any] | None:
        order = client.status(client_order_id=rests["client_order_id"])
        return order if [s["step"] for s in order["confirmation"]] == ["ack", "verified"] \
            else None

    wait_until(verified, "the post-only order verified against the venue")
    assert client.submit(maker)["order_id"] == rests["order_id"], "idempotent, options too"
    with pytest.raises(ProtocolError) as changed:
        client.submit({**maker, "params": {"postOnly": False}})
    assert changed.value.code == "duplicate_client_order_id"

    # at 400 it would buy at once: binance refuses a LIMIT_MAKER that would take
    taker = client.submit(sol_limit("400", new_id("pt"), params={"postOnly": True}))
    assert taker["status"] == "rejected" and taker["attempts"] == 1
    assert taker["last_error"]["code"] == "invalid_order"
    assert "would immediately match" in taker["last_error"]["message"]
    assert on_venue(venue, taker["client_order_id"]) == []
    assert client.cancel(client_order_id=rests["client_order_id"])["status"] == "canceled"


def test_an_order_recorded_with_refused_params_is_rejected_not_sent(
        venue: VenueProcess, tmp_path: Path) -> None:
    """An order recorded before the allowlist existed, still to be sent after a restart:
    the exchange worker refuses it rather than send quantity=5 under our client id."""
    cid = new_id("old")
    recorded = dataclasses.replace(
        ledger_order(cid, status="pending_submit", exchange="bx", created_at=time.time()),
        params={"quantity": "5"}, attempts=0)
    (tmp_path / "state").mkdir()
    seed_ledger(tmp_path / "state" / "ledger.sqlite", [recorded])
    sent_before = venue.requests().count(CREATE)
    # its signing time is not recorded, so it may have been sent just now: the daemon waits
    # until such a create could no longer land (5.5 s here, not the defaults' 16 s)
    fast = ("[resolution]\ninterval_s = 0.1\nwindow_s = 0.2\nabsent_needed = 2\n"
            "clock_skew_s = 0.5\n")
    windows = "recv_window_ms = 2000\ntimeout_ms = 3000\n"
    with running_daemon(tmp_path, exchanges=exchange_section(venue, windows),
                        extra=fast) as daemon:
        client = daemon.client()

        def settled() -> dict[str, Any] | None:
            order = client.status(client_order_id=cid)
            return order if order["status"] != "pending_submit" else None

        order = wait_until(settled, "the recorded order settled")
        assert order["status"] == "rejected" and order["attempts"] == 0
        assert order["last_error"]["code"] == "invalid_order"
        assert "not sent: params.quantity" in order["last_error"]["message"]
        assert venue.requests().count(CREATE) == sent_before, "nothing was sent"
        assert on_venue(venue, cid) == []
        calm = client.submit(sol_limit("50", new_id("after")))
        assert calm["status"] == "open"
        client.cancel(client_order_id=calm["client_order_id"])
        assert daemon.stop() == 0
