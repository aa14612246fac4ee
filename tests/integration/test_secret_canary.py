"""API secrets never appear in anything the daemon writes or answers."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest

from actors.metrics.alert_sinks import CHILD_ENV
from protocol.errors import ProtocolError
from tests.alert_support import lines, scrape
from tests.helpers import (
    VenueProcess,
    free_port,
    market_buy,
    resting_limit_buy,
    running_daemon,
    wait_until,
)

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


ENV_KEY, ENV_SECRET = "canary-envkey-Qw8Lr2Tz5Mn1", "canary-envsecret-Jd4Ks7Pb9Xc3"
FILE_KEY, FILE_SECRET = "canary-filekey-Hy6Vg3Nf8Ra2", "canary-filesecret-Ue5Wm1Zq7Sd4"


def env_dumping_sink(folder: Path) -> tuple[Path, Path]:
    """(an executable writing its environment as one JSON line per alert, that file)."""
    out = folder / "exec-env.jsonl"
    script = folder / "dump-env.py"
    script.write_text(f"#!{sys.executable}\nimport json, os, sys\nsys.stdin.read()\n"
                      f"with open({str(out)!r}, 'a') as f:\n"
                      "    f.write(json.dumps(dict(os.environ)) + '\\n')\n")
    os.chmod(script, 0o755)
    return script, out


def test_credentials_stay_secret_at_debug_level(tmp_path: Path) -> None:
    """At log_level DEBUG, with one account's credentials in the environment and
    another's in files, the daemon trades on both, halts (an alert to a file and to an
    exec sink that dumps its environment), reloads and dumps its stacks: no credential
    shows in its log, files, metrics or answers, nor in the exec sink's environment."""
    by_env = VenueProcess(tmp_path / "venue-env", "--api-key", ENV_KEY, "--secret", ENV_SECRET)
    by_file = VenueProcess(tmp_path / "venue-file", "--api-key", FILE_KEY,
                           "--secret", FILE_SECRET)
    workdir = tmp_path / "orderd"
    workdir.mkdir()
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "key").write_text(FILE_KEY + "\n")
    (credentials / "secret").write_text(FILE_SECRET + "\n")
    script, env_dump = env_dumping_sink(workdir)
    port = free_port()
    extra = (f'log_level = "DEBUG"\n[metrics]\nlisten = "127.0.0.1:{port}"\n'
             f'[alerts]\nfile = "alerts.jsonl"\nexec = "{script}"\n')
    exchanges = (f'[[exchanges]]\nname = "bx"\ndriver = "binance"\napi_url = "{by_env.url}"\n'
                 f'[[exchanges]]\nname = "by"\ndriver = "binance"\napi_url = "{by_file.url}"\n'
                 f'api_key_file = "{credentials / "key"}"\n'
                 f'secret_file = "{credentials / "secret"}"\n')
    env = {"ORDERD_BX_API_KEY": ENV_KEY, "ORDERD_BX_SECRET": ENV_SECRET}
    answers = []
    try:
        with running_daemon(workdir, extra=extra, exchanges=exchanges, env=env) as daemon:
            client = daemon.client()
            for exchange in ("bx", "by"):
                answers.append(client.submit(market_buy("0.001", exchange=exchange)))
                placed = client.submit(resting_limit_buy(exchange=exchange))
                answers.append(client.cancel(client_order_id=placed["client_order_id"]))
                answers.append(client.submit(market_buy("500", exchange=exchange)))
                answers.append(client.reconcile(exchange))
            answers.append(client.halt("canary check"))
            wait_until(lambda: lines(env_dump), "the exec sink to run")
            answers.append(client.resume())
            for cmd in ("ping", "health", "stats"):
                answers.append(client.request(cmd))
            metrics = scrape(f"http://127.0.0.1:{port}/metrics").decode()
            assert daemon.process is not None
            daemon.process.send_signal(signal.SIGUSR1)
            daemon.wait_for_log("thread MainThread")
            daemon.process.send_signal(signal.SIGHUP)
            daemon.wait_for_log("reloaded")
            assert daemon.stop() == 0
        assert len(by_env.requests()) > 0 and len(by_file.requests()) > 0
    finally:
        by_env.stop()
        by_file.stop()
    log = daemon.log.read_text()
    # the test proves something only if both credentials were used, at DEBUG
    assert "bx: binance driver, credentials loaded" in log
    assert "by: binance driver, credentials loaded" in log
    assert " DEBUG " in log
    statuses = [answer.get("status") for answer in answers[:8]]
    assert statuses[0::4] == ["filled", "filled"] and statuses[2::4] == ["rejected"] * 2
    assert "X-MBX-APIKEY" not in log  # ccxt's request lines are not logged at all
    [child_env, *_] = lines(env_dump)
    assert "PATH" in child_env
    assert all(name in CHILD_ENV or name.startswith("LC_") for name in child_env), child_env
    written = b"".join(path.read_bytes() for path in workdir.rglob("*")
                       if path.is_file() and path.name != "orderd.toml")
    assert b"daemon_halted" in written  # the alert file is among them
    for canary in (ENV_KEY, ENV_SECRET, FILE_KEY, FILE_SECRET):
        assert canary.encode() not in written
        assert canary not in metrics
        assert canary not in json.dumps(answers, default=str)
