"""A daemon whose ledger holds live orders of an exchange entry renamed or removed while
it was down: it starts, serves the exchanges it has and leaves those orders alone."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from protocol.errors import ProtocolError
from tests.alert_support import scrape
from tests.helpers import DaemonProcess, free_port, market_buy, resting_limit_buy
from tests.recon_support import ledger_order, seed_ledger

GONE = "oldex"


def test_a_daemon_starts_and_serves_with_orders_of_a_removed_exchange(tmp_path: Path) -> None:
    """One order of each status start-up would resolve (the pending_cancel one stopped the
    order actor's start), and an open one cancel_all would have stopped at."""
    daemon = DaemonProcess(tmp_path)
    daemon.state_dir.mkdir()
    seed_ledger(daemon.state_dir / "ledger.sqlite", [
        ledger_order("gone-1", status="pending_submit", exchange=GONE),
        ledger_order("gone-2", status="unknown", exchange=GONE),
        ledger_order("gone-3", status="pending_cancel", order_id="8", exchange=GONE),
        ledger_order("gone-4", status="open", order_id="9", exchange=GONE)])
    daemon.start()  # ready: nothing of oldex is waited for
    try:
        client = daemon.client()
        assert client.submit(market_buy(client_order_id="after-1"))["status"] == "filled"
        resting = client.submit(resting_limit_buy(client_order_id="after-2"))
        assert resting["status"] == "open"

        with pytest.raises(ProtocolError) as refused:
            client.cancel(client_order_id="gone-4")
        assert refused.value.code == "unknown_exchange"
        assert refused.value.details == {"client_order_id": "gone-4", "exchange": GONE}

        canceled = client.cancel_all()["orders"]
        assert [o["client_order_id"] for o in canceled] == ["after-2"]
        listed = client.list(exchange=GONE)["orders"]
        assert [(o["client_order_id"], o["status"]) for o in listed] == [
            ("gone-1", "pending_submit"), ("gone-2", "unknown"),
            ("gone-3", "pending_cancel"), ("gone-4", "open")]
        log = daemon.wait_for_log("ALERT orders_of_unknown_exchange")
        assert "4 live orders of exchange 'oldex'" in log
        assert "KeyError" not in log
    finally:
        assert daemon.stop(signal.SIGTERM) == 0


def test_the_metrics_count_the_orders_set_aside_per_exchange(tmp_path: Path) -> None:
    """`health` and `stats` answer as the contract has them (no key for these orders): the
    gauge is where an operator sees them, for as long as they are left alone."""
    port = free_port()
    daemon = DaemonProcess(tmp_path, extra=f'[metrics]\nlisten = "127.0.0.1:{port}"\n')
    daemon.state_dir.mkdir()
    seed_ledger(daemon.state_dir / "ledger.sqlite", [
        ledger_order("gone-1", status="unknown", exchange=GONE),
        ledger_order("gone-2", status="open", order_id="9", exchange=GONE),
        ledger_order("gone-3", status="pending_cancel", order_id="8", exchange=GONE),
        ledger_order("older-1", status="open", order_id="7", exchange="older"),
        ledger_order("older-2", status="filled", order_id="6", exchange="older"),
        ledger_order("here-1", status="open", order_id="1")])
    daemon.start()
    try:
        text = scrape(f"http://127.0.0.1:{port}/metrics").decode()
        set_aside = {s.labels["exchange"]: s.value
                     for family in text_string_to_metric_families(text)
                     for s in family.samples if s.name == "orderd_orders_set_aside"}
        assert set_aside == {GONE: 3, "older": 1}
    finally:
        assert daemon.stop(signal.SIGTERM) == 0
