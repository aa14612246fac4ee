"""The two commands an operator reaches for in an incident, `cancel_all` and `balance`,
against the paper venue and through the binance driver against `orderd paper-venue`."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from protocol.client import OrderdClient
from protocol.errors import ProtocolError
from tests.helpers import (
    KEY,
    ROOT,
    SECRET,
    DaemonProcess,
    VenueProcess,
    resting_limit_buy,
    running_daemon,
    wait_until,
)


def _cid() -> str:
    return f"inc-{uuid.uuid4().hex[:12]}"


def _status(client: OrderdClient, cid: str) -> str:
    return str(client.status(client_order_id=cid)["status"])


def _cancel_all_in_scope_only(client: OrderdClient, exchange: str) -> None:
    eth = [client.submit(resting_limit_buy("0.1", "100", "ETH/USD", client_order_id=_cid()))
           for _ in range(2)]
    btc = client.submit(resting_limit_buy(client_order_id=_cid()))
    assert {o["status"] for o in [*eth, btc]} == {"open"}
    asked = client.cancel_all(exchange=exchange, symbol="ETH/USD")["orders"]
    assert sorted(o["client_order_id"] for o in asked) == sorted(
        o["client_order_id"] for o in eth)
    assert {o["status"] for o in asked} <= {"pending_cancel", "canceled"}
    wait_until(lambda: all(_status(client, o["client_order_id"]) == "canceled" for o in eth),
               "the ETH orders canceled")
    assert _status(client, btc["client_order_id"]) == "open"
    client.halt("incident drill")
    try:  # works while halted: an incident is when it is needed
        rest = client.cancel_all()["orders"]
        assert btc["client_order_id"] in {o["client_order_id"] for o in rest}
        wait_until(lambda: _status(client, btc["client_order_id"]) == "canceled",
                   "the BTC order canceled")
    finally:
        client.resume()


def _balances_are_decimal_strings(client: OrderdClient, exchange: str) -> None:
    result = client.balance()
    assert datetime.fromisoformat(result["at"]).tzinfo is not None
    usd = result["balances"][exchange]["USD"]
    assert set(usd) == {"free", "used", "total"}
    assert Decimal(usd["total"]) == Decimal(usd["free"]) + Decimal(usd["used"]) > 0
    assert client.balance(exchange)["balances"].keys() == {exchange}


def test_cancel_all_and_balance_on_the_paper_venue(daemon: DaemonProcess) -> None:
    client = daemon.client()
    _cancel_all_in_scope_only(client, "paper")
    _balances_are_decimal_strings(client, "paper")


@pytest.mark.parametrize("cmd,args,code", [
    ("cancel_all", {"exchange": "nowhere"}, "unknown_exchange"),
    ("cancel_all", {"symbol": "BTCUSD"}, "bad_request"),
    ("balance", {"exchange": "nowhere"}, "unknown_exchange"),
    ("balance", {"exchange": 7}, "bad_request"),
])
def test_bad_scopes_get_clear_errors(daemon: DaemonProcess, cmd: str, args: dict[str, object],
                                     code: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        daemon.client().call(cmd, args)
    assert refused.value.code == code


def test_orderctl_cancel_all_and_balance(daemon: DaemonProcess) -> None:
    client = daemon.client()
    placed = client.submit(resting_limit_buy("0.1", "100", "SOL/USD", client_order_id=_cid()))

    def orderctl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "protocol.orderctl", "--endpoint",
                               daemon.control, *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)

    canceled = orderctl("cancel-all", "--symbol", "SOL/USD")
    assert canceled.returncode == 0 and placed["client_order_id"] in canceled.stdout
    balance = orderctl("balance")
    assert balance.returncode == 0 and "USD:" in balance.stdout and "total:" in balance.stdout


def test_cancel_all_and_balance_through_the_binance_driver(venue: VenueProcess,
                                                           tmp_path: Path) -> None:
    exchanges = (f'[[exchanges]]\nname = "bx"\ndriver = "binance"\napi_url = "{venue.url}"\n'
                 f'api_key = "{KEY}"\nsecret = "{SECRET}"\n')
    with running_daemon(tmp_path, exchanges=exchanges) as daemon:
        client = daemon.client()
        _cancel_all_in_scope_only(client, "bx")
        _balances_are_decimal_strings(client, "bx")
        booked = {o["clientOrderId"]: o["status"] for o in venue.orders()}
        assert "NEW" not in booked.values()  # nothing left resting on the venue
