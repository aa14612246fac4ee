"""The daemon halts itself when an exchange refuses the account."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol.errors import ProtocolError
from tests.helpers import VenueProcess, market_buy, running_daemon


def test_refused_credentials_halt_submits(tmp_path: Path) -> None:
    venue = VenueProcess(tmp_path / "venue")
    exchanges = (f'[[exchanges]]\nname = "bx"\ndriver = "binance"\napi_url = "{venue.url}"\n'
                 'api_key = "not-the-key"\nsecret = "not-the-secret"\n')
    workdir = tmp_path / "orderd"
    workdir.mkdir()
    try:
        with running_daemon(workdir, exchanges=exchanges) as daemon:
            client = daemon.client()
            refused = client.submit(market_buy("0.01", client_order_id="auth-1"))
            assert refused["status"] == "rejected"
            assert refused["last_error"]["code"] == "authentication_failed"
            assert client.ping()["state"] == "halted"
            with pytest.raises(ProtocolError) as caught:
                client.submit(market_buy("0.01", client_order_id="auth-2"))
            assert caught.value.code == "halted" and caught.value.retryable
            assert client.status(client_order_id="auth-1")["status"] == "rejected"
            assert client.resume()["state"] == "ready"
            assert "halting: bx refused the account" in daemon.log.read_text()
    finally:
        venue.stop()
