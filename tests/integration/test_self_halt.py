"""The daemon halts itself when an exchange refuses the account."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol.errors import ProtocolError
from tests.alert_support import lines, scrape
from tests.helpers import VenueProcess, free_port, market_buy, running_daemon, wait_until
from tests.integration.test_metrics import sample


def test_refused_credentials_halt_submits(tmp_path: Path) -> None:
    venue = VenueProcess(tmp_path / "venue")
    exchanges = (f'[[exchanges]]\nname = "bx"\ndriver = "binance"\napi_url = "{venue.url}"\n'
                 'api_key = "not-the-key"\nsecret = "not-the-secret"\n')
    workdir = tmp_path / "orderd"
    workdir.mkdir()
    port = free_port()
    extra = f'[metrics]\nlisten = "127.0.0.1:{port}"\n[alerts]\nfile = "alerts.jsonl"\n'
    try:
        with running_daemon(workdir, exchanges=exchanges, extra=extra) as daemon:
            client = daemon.client()
            refused = client.submit(market_buy("0.01", client_order_id="auth-1"))
            assert refused["status"] == "rejected"
            assert refused["last_error"]["code"] == "authentication_failed"
            assert client.ping()["state"] == "halted"
            with pytest.raises(ProtocolError) as caught:
                client.submit(market_buy("0.01", client_order_id="auth-2"))
            assert caught.value.code == "halted" and caught.value.retryable
            assert client.status(client_order_id="auth-1")["status"] == "rejected"
            # the daemon's own halt pages; an operator's halt on top does not hide it
            client.call("halt", {"reason": "looking into it"})
            text = scrape(f"http://127.0.0.1:{port}/metrics").decode()
            assert sample(text, "orderd_daemon_halted", by="automatic") == 1
            assert sample(text, "orderd_daemon_halted", by="operator") == 0
            halted = wait_until(lambda: [a for a in lines(workdir / "alerts.jsonl")
                                         if a["name"] == "daemon_halted"], "the halt alert")
            assert [a["severity"] for a in halted] == ["critical"]
            assert client.resume()["state"] == "ready"
            text = scrape(f"http://127.0.0.1:{port}/metrics").decode()
            assert sample(text, "orderd_daemon_halted", by="automatic") == 0
            assert "halting: bx refused the account" in daemon.log.read_text()
    finally:
        venue.stop()
