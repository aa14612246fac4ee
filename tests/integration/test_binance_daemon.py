"""`orderd paper-venue` as a process, and a real orderd trading on it with its binance driver."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors.exchange.drivers.ccxt_driver import DriverSettings, build_binance
from tests.helpers import (
    KEY,
    SECRET,
    VenueProcess,
    market_buy,
    resting_limit_buy,
    running_daemon,
    wait_until,
)


def test_ccxt_trades_on_a_venue_process(venue: VenueProcess) -> None:
    client = build_binance(DriverSettings(KEY, SECRET, venue.url))
    client.load_markets()
    ours = f"v-{uuid.uuid4().hex[:12]}"
    order = client.create_order("ETH/USD", "market", "buy", 0.1, None,
                                {"newClientOrderId": ours})
    assert order["status"] == "closed"
    [booked] = [o for o in venue.orders() if o["clientOrderId"] == ours]
    assert booked["status"] == "FILLED" and booked["executedQty"] == "0.1"


def test_orderd_binance_driver_round_trips(venue: VenueProcess, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "secret").write_text(SECRET + "\n")
    monkeypatch.setenv("ORDERD_BX_API_KEY", KEY)  # the key from the environment
    exchanges = (f'[[exchanges]]\nname = "bx"\ndriver = "binance"\napi_url = "{venue.url}"\n'
                 f'secret_file = "{tmp_path / "secret"}"\n')
    with running_daemon(tmp_path, exchanges=exchanges) as daemon:
        client = daemon.client()
        seen_before = len(venue.requests())
        filled = client.submit(market_buy("0.01", client_order_id=f"m-{uuid.uuid4().hex[:12]}"))
        assert filled["status"] == "filled" and filled["exchange"] == "bx"
        assert Decimal(filled["filled"]) == Decimal("0.01")
        # the create's answer carried its fills (binance FULL): counted with their trade
        # ids and fee, without asking for the trades of the order
        def confirmed() -> dict[str, Any] | None:
            order = client.status(client_order_id=filled["client_order_id"])
            return order if len(order["confirmation"]) >= 3 else None

        order = wait_until(confirmed, "the fills counted")
        steps = order["confirmation"]
        assert [step["step"] for step in steps] == ["ack", "verified", "fill"]
        assert steps[2]["trade_id"] and Decimal(steps[2]["amount"]) == Decimal("0.01")
        assert Decimal(order["fee"]["cost"]) > 0
        assert ("GET", "/api/v3/myTrades") not in venue.requests()[seen_before:]
        placed = client.submit(resting_limit_buy(client_order_id=f"l-{uuid.uuid4().hex[:12]}"))
        assert placed["status"] == "open"
        canceled = client.cancel(client_order_id=placed["client_order_id"])
        assert canceled["status"] == "canceled"
        on_venue = {o["clientOrderId"]: o for o in venue.orders()}
        assert on_venue[filled["client_order_id"]]["status"] == "FILLED"
        assert on_venue[placed["client_order_id"]]["status"] == "CANCELED"
        assert str(on_venue[placed["client_order_id"]]["orderId"]) == placed["order_id"]
        assert daemon.stop() == 0
    log = (tmp_path / "orderd.log").read_text()
    assert SECRET not in log and KEY not in log


def test_workers_load_the_markets_once_between_them(venue: VenueProcess,
                                                    tmp_path: Path) -> None:
    """Each worker has its own ccxt client; loading markets is a download per client
    (binance's exchangeInfo), which the first order through each worker waited for."""
    exchanges = (f'[[exchanges]]\nname = "bx"\ndriver = "binance"\napi_url = "{venue.url}"\n'
                 f'api_key = "{KEY}"\nsecret = "{SECRET}"\nconcurrency = 3\n')
    seen_before = len(venue.requests())
    with running_daemon(tmp_path, exchanges=exchanges) as daemon:
        client = daemon.client()
        # idle workers take turns: six orders in a row pass through all three
        for n in range(6):
            order = client.submit(market_buy(client_order_id=f"w{n}-{uuid.uuid4().hex[:12]}"))
            assert order["status"] == "filled"
        assert daemon.stop() == 0
    served = venue.requests()[seen_before:]
    assert served.count(("POST", "/api/v3/order")) == 6
    assert served.count(("GET", "/api/v3/exchangeInfo")) == 1


def test_venue_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    process = VenueProcess(tmp_path)
    assert process.stop() == 0
    assert (tmp_path / "paper-venue.sqlite").exists()
