"""API secrets never appear in anything the daemon writes or answers."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from protocol.errors import ProtocolError
from tests.helpers import market_buy, running_daemon

CANARY_KEY = "canary-key-7Hq2Zx9PwLm4"
CANARY_SECRET = "canary-secret-Vb3Nt8RkYe1J"


@pytest.mark.xfail(strict=False,
                   reason="needs exchange credentials from the binance driver branch")
def test_planted_secrets_appear_nowhere(tmp_path: Path) -> None:
    env = {"ORDERD_PAPER_API_KEY": CANARY_KEY, "ORDERD_PAPER_SECRET": CANARY_SECRET}
    answers = []
    with running_daemon(tmp_path, env=env) as daemon:
        client = daemon.client()
        for cmd in ("ping", "health", "stats", "reconcile"):
            answers.append(client.request(cmd))
        answers.append({"order": client.submit(market_buy(amount="0.001"))})
        with pytest.raises(ProtocolError) as error:
            client.submit(market_buy(symbol="NOPE/USD"))
        answers.append(error.value.to_wire())
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGUSR1)  # stacks, locals not included
        daemon.wait_for_log("thread MainThread")
        daemon.process.send_signal(signal.SIGHUP)
        daemon.wait_for_log("reloaded")
        assert daemon.stop() == 0
    # the credential plumbing must have read them, or this test proves nothing
    assert _credentials_loaded(daemon.log)
    written = b"".join(path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()
                       and path.name != "orderd.toml")
    for canary in (CANARY_KEY, CANARY_SECRET):
        assert canary.encode() not in written
        assert canary not in json.dumps(answers)


def _credentials_loaded(log: Path) -> bool:
    """The driver says it loaded credentials (never the values); adjust to its wording."""
    return "credentials" in log.read_text()
