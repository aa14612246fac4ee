"""The ledger is the ledger: a ledger file removed under a running daemon halts it,
and a start on an empty ledger while the exchange holds our orders starts halted."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from protocol.errors import ProtocolError
from tests.helpers import DaemonProcess, market_buy, resting_limit_buy, wait_until


def rescued_ids(state_dir: Path) -> set[str]:
    copies = list(state_dir.glob("ledger-rescued-*.sqlite"))
    assert len(copies) == 1
    db = sqlite3.connect(f"file:{copies[0]}?mode=ro", uri=True)
    try:
        return {row[0] for row in db.execute("SELECT client_order_id FROM orders")}
    finally:
        db.close()


def test_a_removed_ledger_halts_and_a_restart_waits_for_the_operator(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path).start()
    client = daemon.client()
    resting = [client.submit(resting_limit_buy())["client_order_id"] for _ in range(2)]
    assert all(cid.startswith("od-") for cid in resting)

    (daemon.state_dir / "ledger.sqlite").unlink()
    wait_until(lambda: client.ping()["state"] == "halted", "the daemon to notice")
    health = client.health()
    assert "ledger_replaced" in health["conditions"]
    assert "was removed or replaced" in health["reason"]
    with pytest.raises(ProtocolError) as caught:
        client.submit(market_buy(client_order_id="into-the-void"))
    assert caught.value.code == "halted"
    assert client.resume()["state"] == "halted", "resume does not make the file come back"
    assert "ALERT ledger_replaced [critical]" in daemon.log.read_text()
    assert daemon.stop() == 0
    assert set(resting) <= rescued_ids(daemon.state_dir), "nothing acknowledged is lost"

    # the ledger at the path is gone while the exchange holds our open orders
    daemon.start(states=("halted",))
    client = daemon.client()
    reason = client.health()["reason"]
    assert "the ledger is empty" in reason and "2 open orders" in reason
    with pytest.raises(ProtocolError) as caught:
        client.submit(market_buy(client_order_id="not-yet"))
    assert caught.value.code == "halted"
    report = client.reconcile()["report"]
    adopted = {r["client_order_id"] for r in report["exchanges"]["paper"]["repairs"]
               if r["applied"]}
    assert adopted == set(resting)
    assert client.resume()["state"] == "ready"
    assert client.status(client_order_id=resting[0])["status"] == "open"
    assert client.submit(market_buy(client_order_id="after"))["status"] == "filled"
    assert daemon.stop() == 0
