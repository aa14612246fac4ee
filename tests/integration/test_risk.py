"""Risk limits and client submit rates: refused before anything is recorded or sent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from protocol.client import OrderdClient
from protocol.errors import ProtocolError
from tests.helpers import DaemonProcess, market_buy, resting_limit_buy, running_daemon

RISK = """[[exchanges]]
name = "paper"
[exchanges.risk]
max_order_notional = 1000
max_open_orders = 3
max_open_orders_per_symbol = 2
symbols = ["BTC/USD", "ETH/USD"]
"""


@pytest.fixture(scope="module")
def risky(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    with running_daemon(tmp_path_factory.mktemp("risk"), exchanges=RISK) as daemon:
        yield daemon


def refused(client: OrderdClient, order: dict[str, Any], code: str = "risk_rejected",
            ) -> dict[str, Any]:
    with pytest.raises(ProtocolError) as caught:
        client.submit(order)
    assert caught.value.code == code, caught.value.to_wire()
    # nothing recorded, so nothing was sent to the exchange
    if "client_order_id" in order:
        with pytest.raises(ProtocolError) as missing:
            client.status(client_order_id=order["client_order_id"])
        assert missing.value.code == "not_found"
    return caught.value.to_wire()


def test_a_symbol_outside_the_allowlist(risky: DaemonProcess) -> None:
    error = refused(risky.client(), market_buy(symbol="SOL/USD", amount="1",
                                               client_order_id="risk-sol"))
    assert error["details"]["limit"] == "symbols" and error["retryable"] is False


def test_limit_order_notional(risky: DaemonProcess) -> None:
    client = risky.client()
    error = refused(client, resting_limit_buy(amount="0.6", price="2000",
                                              client_order_id="risk-big-limit"))
    assert error["details"]["limit"] == "max_order_notional"
    assert "1200" in error["message"]


def test_market_order_notional_uses_the_last_price(risky: DaemonProcess) -> None:
    client = risky.client()
    error = refused(client, market_buy(amount="1", client_order_id="risk-big-market"))
    assert error["details"]["limit"] == "max_order_notional"
    assert client.submit(market_buy(amount="0.001"))["status"] == "filled"


def test_open_orders_in_total_and_per_symbol(risky: DaemonProcess) -> None:
    client = risky.client()
    for n in range(2):
        client.submit(resting_limit_buy(client_order_id=f"risk-btc-{n}"))
    error = refused(client, resting_limit_buy(client_order_id="risk-btc-2"))
    assert error["details"]["limit"] == "max_open_orders_per_symbol"
    client.submit(resting_limit_buy(symbol="ETH/USD", amount="0.1", price="100",
                                    client_order_id="risk-eth-0"))
    error = refused(client, resting_limit_buy(symbol="ETH/USD", amount="0.1", price="100",
                                              client_order_id="risk-eth-1"))
    assert error["details"]["limit"] == "max_open_orders"
    assert client.cancel(client_order_id="risk-btc-0")["status"] == "canceled"
    assert client.submit(resting_limit_buy(client_order_id="risk-btc-2"))["status"] == "open"
    for cid in ("risk-btc-1", "risk-btc-2", "risk-eth-0"):
        client.cancel(client_order_id=cid)


def test_resending_an_accepted_order_is_not_refused(risky: DaemonProcess) -> None:
    client = risky.client()
    order = resting_limit_buy(client_order_id="risk-again")
    first = client.submit(order)
    assert client.submit(order)["order_id"] == first["order_id"]
    client.cancel(client_order_id="risk-again")


def test_per_client_submit_rate(tmp_path: Any) -> None:
    # one submit per 100 s after a burst of 2: the third is refused whatever the pace
    exchanges = ('[[exchanges]]\nname = "paper"\n[exchanges.risk]\n'
                 'client_submit_rate_per_s = 0.01\nclient_submit_burst = 2\n')
    with running_daemon(tmp_path, exchanges=exchanges) as daemon:
        eager, other = daemon.client(), daemon.client()
        for _ in range(2):
            eager.submit(market_buy(amount="0.001"))
        error = refused(eager, market_buy(amount="0.001", client_order_id="rate-3"),
                        "rate_limited")
        assert error["retryable"] is True and 0 < error["retry_after_s"] <= 100
        assert other.submit(market_buy(amount="0.001"))["status"] == "filled"
        assert eager.ping()["state"] == "ready"  # only submits are limited


def test_halt_and_resume_end_to_end(daemon: DaemonProcess) -> None:
    client = daemon.client()
    placed = client.submit(resting_limit_buy(client_order_id="halt-0"))
    assert client.halt("maintenance")["state"] == "halted"
    assert client.ping()["state"] == "halted"
    with pytest.raises(ProtocolError) as halted:
        client.submit(market_buy(amount="0.001"))
    assert halted.value.code == "halted" and "maintenance" in halted.value.message
    assert halted.value.retryable
    assert client.status(client_order_id="halt-0")["order_id"] == placed["order_id"]
    assert client.cancel(client_order_id="halt-0")["status"] == "canceled"
    assert client.resume()["state"] == "ready"
    assert client.submit(market_buy(amount="0.001"))["status"] == "filled"
