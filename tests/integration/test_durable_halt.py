"""Halts last across restarts until `resume`; a daemon still recovering says `starting`."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orderd import ReliableOrderExecutor
from protocol.errors import ProtocolError
from tests.helpers import DaemonProcess, market_buy, wait_until
from tests.recon_support import ledger_order, seed_ledger


def refused(client_call: Callable[[], Any]) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        client_call()
    return caught.value


def test_a_halt_lasts_across_restarts_until_resume(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path).start()
    client = daemon.client()
    assert client.halt("maintenance window")["state"] == "halted"
    assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL  # no clean stop to lean on

    daemon.start(states=("halted",))
    client = daemon.client()
    health = client.health()
    assert health["state"] == "halted" and health["reason"] == "maintenance window"
    error = refused(lambda: client.submit(market_buy(client_order_id="after-halt")))
    assert error.code == "halted" and error.retryable
    assert client.resume()["state"] == "ready"
    assert daemon.stop() == 0

    daemon.start()  # the resume is recorded too
    client = daemon.client()
    assert client.submit(market_buy(client_order_id="after-resume"))["status"] == "filled"
    assert daemon.stop() == 0


def test_start_halted_starts_halted_until_resume(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path)
    text = daemon.config.read_text()
    daemon.config.write_text(text.replace("[orders]\n", "[orders]\nstart_halted = true\n"))
    daemon.start(states=("halted",))
    client = daemon.client()
    assert "start_halted" in (client.health()["reason"] or "")
    error = refused(lambda: client.submit(market_buy(client_order_id="held")))
    assert error.code == "halted"
    assert client.resume()["state"] == "ready"
    assert client.submit(market_buy(client_order_id="let-go"))["status"] == "filled"
    assert daemon.stop() == 0


def test_a_recovering_daemon_answers_starting_not_halted(tmp_path: Path) -> None:
    # an order recorded but never sent: proving it absent takes the resolution window
    seed_ledger(tmp_path / "state" / "ledger.sqlite",
                [ledger_order("left-over", status="pending_submit", created_at=time.time())])
    daemon = DaemonProcess(tmp_path, extra="[resolution]\nwindow_s = 30.0\n")
    daemon.start(states=("starting",))
    client = daemon.client()
    assert client.ping()["state"] == "starting"
    error = refused(lambda: client.submit(market_buy(client_order_id="too-early")))
    assert error.code == "starting" and error.retryable
    assert error.retry_after_s is not None and error.retry_after_s > 0
    # reads work meanwhile; the early submit left nothing behind
    assert client.status(client_order_id="left-over")["status"] in ("pending_submit", "unknown")
    missing = refused(lambda: client.status(client_order_id="too-early"))
    assert missing.code == "not_found"
    assert daemon.stop() == 0


def test_a_halt_made_while_starting_holds_once_recovered(tmp_path: Path) -> None:
    seed_ledger(tmp_path / "state" / "ledger.sqlite",
                [ledger_order("slow", status="pending_submit", created_at=time.time())])
    daemon = DaemonProcess(tmp_path, extra="[resolution]\nwindow_s = 1.0\n")
    daemon.start(states=("starting",))
    client = daemon.client()
    assert client.halt("not today")["state"] == "starting"
    wait_until(lambda: client.ping()["state"] == "halted", "recovery to end, halted",
               attempts=6000)
    assert client.health()["reason"] == "not today"
    assert daemon.stop() == 0


def test_the_library_keeps_and_ends_a_halt_like_the_daemon(tmp_path: Path) -> None:
    config = {"state_dir": str(tmp_path), "exchange": {"name": "paper"}}

    async def scenario() -> None:
        async with ReliableOrderExecutor(config) as executor:
            assert await executor.halt("end of day") == "halted"
        async with ReliableOrderExecutor(config) as executor:
            with pytest.raises(ProtocolError) as caught:
                await executor.execute_order(market_buy(client_order_id="lib-held"))
            assert caught.value.code == "halted" and "end of day" in caught.value.message
            assert await executor.resume() == "ready"
            placed = await executor.execute_order(market_buy(client_order_id="lib-go"),
                                                  return_order=True)
            assert placed["status"] == "filled"

    asyncio.run(scenario())
