"""API secrets never appear in anything the daemon writes or answers."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from protocol.errors import ProtocolError
from tests.helpers import VenueProcess, market_buy, resting_limit_buy, running_daemon

CANARY_KEY = "canary-key-7Hq2Zx9PwLm4"
CANARY_SECRET = "canary-secret-Vb3Nt8RkYe1J"


def test_planted_secrets_appear_nowhere(tmp_path: Path) -> None:
    """The key comes from the environment, the secret from a file (as a systemd
    credential would); the daemon trades, fails, reports, reloads and dumps its
    stacks, and neither value shows up in any file it wrote or any answer."""
    venue = VenueProcess(tmp_path / "venue", "--api-key", CANARY_KEY, "--secret", CANARY_SECRET)
    secret_file = tmp_path / "credentials" / "orderd_bx_secret"
    secret_file.parent.mkdir()
    secret_file.write_text(CANARY_SECRET + "\n")
    exchanges = (f'[[exchanges]]\nname = "bx"\ndriver = "binance"\napi_url = "{venue.url}"\n'
                 f'secret_file = "{secret_file}"\n')
    answers = []
    workdir = tmp_path / "orderd"
    workdir.mkdir()
    try:
        with running_daemon(workdir, exchanges=exchanges,
                            env={"ORDERD_BX_API_KEY": CANARY_KEY}) as daemon:
            client = daemon.client()
            answers.append({"order": client.submit(market_buy("0.001"))})
            placed = client.submit(resting_limit_buy())
            answers.append({"order": client.cancel(client_order_id=placed["client_order_id"])})
            answers.append({"order": client.submit(market_buy("500"))})  # refused: funds
            for cmd in ("ping", "health", "stats", "reconcile"):
                answers.append(client.request(cmd))
            with pytest.raises(ProtocolError) as error:
                client.submit(market_buy(symbol="NOPE/USD"))
            answers.append(error.value.to_wire())
            assert daemon.process is not None
            daemon.process.send_signal(signal.SIGUSR1)  # stacks, locals not included
            daemon.wait_for_log("thread MainThread")
            daemon.process.send_signal(signal.SIGHUP)
            daemon.wait_for_log("reloaded")
            assert daemon.stop() == 0
    finally:
        venue.stop()
    assert answers[2]["order"]["status"] == "rejected", "a failure path was taken too"
    # the credential plumbing must have read them, or this test proves nothing
    assert "bx: binance driver, credentials loaded" in daemon.log.read_text()
    written = b"".join(path.read_bytes() for path in workdir.rglob("*")
                       if path.is_file() and path.name != "orderd.toml")
    for canary in (CANARY_KEY, CANARY_SECRET):
        assert canary.encode() not in written
        assert canary not in json.dumps(answers, default=str)
